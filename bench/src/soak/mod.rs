//! The soak: an hour (or ten minutes) of people coming and going, chatting at a human pace,
//! losing their connections and resuming, with rooms created and left to unload. Every ten seconds
//! it samples the server; at the end it judges whether memory (anonymous: what a leak grows) and
//! descriptors stayed flat and
//! whether every acknowledged message was heard by everyone present and is in storage.

mod person;
mod plot;
mod rooms;
mod samples;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use clap::Args;
use serde::Serialize;
use tokio::time::Instant;

use crate::servers::{Server, Target};
use person::{Acknowledged, Ledger, Person};
use rooms::Rooms;
use samples::{flatness, Flatness, Sample, Sampler};

/// A quick soak's length.
const QUICK: Duration = Duration::from_secs(600);
/// Rooms unload this long after their last visitor leaves: short, so that the soak sees many.
const SOAK_FLAGS: [&str; 2] = ["--room-idle-timeout", "30s"];
/// People start over this long, not all at once.
const RAMP: Duration = Duration::from_secs(30);
/// How long the connections may take to close once everyone has left.
const SETTLE: Duration = Duration::from_secs(60);
/// A page of stored messages, as the API serves them at most.
const PAGE: usize = 500;

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// How long people come and go.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Ten minutes, whatever `--duration` says.
    #[arg(long)]
    quick: bool,
    /// Shared mode: two instances on a Redis the bench starts and a fresh database on the
    /// PostgreSQL server `HUBBUB_BENCH_POSTGRES` names; people connect to either.
    #[arg(long)]
    shared: bool,
    /// People in the rooms at once; each sends a message every 5 to 15 s.
    #[arg(long, default_value_t = 200)]
    people: usize,
    /// Rooms in use at once.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// How often the oldest room is retired and a new one created.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    rotate_every: Duration,
    /// How often the server is sampled.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    sample_every: Duration,
    /// Samples before this are not judged; a sixth of the soak unless given.
    #[arg(long, value_parser = humantime::parse_duration)]
    warm_up: Option<Duration>,
    /// The CPUs (taskset list) the servers run on.
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// Where the plot goes.
    #[arg(long, default_value = "target/bench/soak.png")]
    plot: PathBuf,
    /// Where the samples and the verdict go, as one JSON object.
    #[arg(long, default_value = "target/bench/soak.json")]
    record: PathBuf,
}

/// What the people found, and what storage holds of it.
#[derive(Debug, Serialize)]
struct Delivery {
    visits: u64,
    resumes: u64,
    sent: u64,
    acknowledged: usize,
    heard: u64,
    gaps: u64,
    duplicates: u64,
    truncated: u64,
    unacknowledged: u64,
    missing_from_storage: usize,
    errors: std::collections::BTreeMap<String, u64>,
}

impl Delivery {
    fn whole(&self) -> bool {
        self.gaps == 0
            && self.duplicates == 0
            && self.truncated == 0
            && self.missing_from_storage == 0
            && self.errors.is_empty()
            && self.acknowledged > 0
    }
}

#[derive(Serialize)]
struct Record<'a> {
    date: String,
    mode: &'static str,
    seconds: f64,
    warm_up_seconds: f64,
    people: usize,
    rooms_at_once: usize,
    rooms_created: usize,
    passed: bool,
    flatness: &'a Flatness,
    delivery: &'a Delivery,
    /// Once everyone had left and their connections closed.
    at_rest: &'a Sample,
    samples: &'a [Sample],
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let duration = if args.quick { QUICK } else { args.duration };
    let warm_up = args.warm_up.unwrap_or(duration / 6);
    let (target, mode) = if args.shared {
        (
            Target::HubbubShared,
            "shared (2 instances, Redis, PostgreSQL)",
        )
    } else {
        (Target::Hubbub, "single instance (SQLite)")
    };
    let server = Server::start(target, &args.server_cpu, None, &SOAK_FLAGS)?;
    let urls = Arc::new(server.urls.clone());
    let http = reqwest::Client::new();
    let rooms = Arc::new(Rooms::default());
    for i in 0..args.rooms {
        rooms.create(&http, &urls[i % urls.len()]).await?;
    }

    let started = Instant::now();
    let until = started + duration;
    let ledger = Arc::new(Ledger::default());
    let people: Vec<_> = (0..args.people)
        .map(|number| {
            let person = Person {
                number,
                urls: Arc::clone(&urls),
                rooms: Arc::clone(&rooms),
                ledger: Arc::clone(&ledger),
                until,
                rng: fastrand::Rng::with_seed(number as u64),
            };
            let start = started + RAMP.mul_f64(number as f64 / args.people as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(start).await;
                person.live().await;
            })
        })
        .collect();
    let rotation = tokio::spawn(rotate(
        Arc::clone(&rooms),
        Arc::clone(&urls),
        args.rotate_every,
        until,
    ));

    let sampler = Sampler::new(&server, started)?;
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(args.sample_every);
    loop {
        ticks.tick().await;
        // A sample as the soak ends would catch everyone leaving at once.
        if Instant::now() >= until {
            break;
        }
        let sample = sampler.sample().await?;
        eprintln!(
            "{:>5.0} s  rss {:>6.1} MiB  anon {:>6.1} MiB  fds {:>5}  connections {:>4}  rooms {:>3}  storage {:>6.1} MiB  pending {}",
            sample.seconds,
            sample.rss_bytes as f64 / 1048576.0,
            sample.anon_bytes as f64 / 1048576.0,
            sample.fds,
            sample.connections,
            sample.rooms,
            sample.storage_bytes as f64 / 1048576.0,
            sample.storage_pending,
        );
        samples.push(sample);
    }
    for person in people {
        person.await.context("a person's task failed")?;
    }
    rotation.await.context("the rotation failed")??;
    let at_rest = settle(&sampler).await?;

    let acknowledged = ledger.acknowledged();
    let missing_from_storage = missing(&http, &urls[0], &rooms.created(), &acknowledged).await?;
    let delivery = Delivery {
        visits: ledger.visits.load(Ordering::Relaxed),
        resumes: ledger.resumes.load(Ordering::Relaxed),
        sent: ledger.sent.load(Ordering::Relaxed),
        acknowledged: acknowledged.len(),
        heard: ledger.heard.load(Ordering::Relaxed),
        gaps: ledger.gaps.load(Ordering::Relaxed),
        duplicates: ledger.duplicates.load(Ordering::Relaxed),
        truncated: ledger.truncated.load(Ordering::Relaxed),
        unacknowledged: ledger.unacknowledged.load(Ordering::Relaxed),
        missing_from_storage,
        errors: ledger.errors(),
    };
    let flatness = flatness(&samples, warm_up)?;
    let dropped = at_rest.storage_dropped;
    let passed = flatness.flat && delivery.whole() && dropped == 0;
    let record = Record {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        mode,
        seconds: duration.as_secs_f64(),
        warm_up_seconds: warm_up.as_secs_f64(),
        people: args.people,
        rooms_at_once: args.rooms,
        rooms_created: rooms.created().len(),
        passed,
        flatness: &flatness,
        delivery: &delivery,
        at_rest: &at_rest,
        samples: &samples,
    };
    if let Some(parent) = args.record.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.record, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("cannot write {}", args.record.display()))?;
    let title = title(mode, args.people, duration.as_secs_f64(), &record.date);
    plot::draw(&args.plot, &title, &samples, warm_up.as_secs_f64() / 60.0)?;
    print_summary(&record);
    ensure!(passed, "the soak failed: see the summary above");
    Ok(())
}

/// Draws a soak's plot again from its record, as the current bench draws it.
#[derive(Debug, Args)]
pub struct ReplotArgs {
    /// The record a soak wrote.
    #[arg(long)]
    record: PathBuf,
    /// Where the plot goes.
    #[arg(long)]
    plot: PathBuf,
}

pub fn replot(args: ReplotArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.record)
        .with_context(|| format!("cannot read {}", args.record.display()))?;
    let record: serde_json::Value = serde_json::from_str(&text).context("a record is JSON")?;
    let samples: Vec<Sample> =
        serde_json::from_value(record["samples"].clone()).context("a record without samples")?;
    let seconds = record["seconds"]
        .as_f64()
        .context("a record without seconds")?;
    // Records written before the warm-up was kept in them used the default, a sixth.
    let warm_up = record["warm_up_seconds"].as_f64().unwrap_or(seconds / 6.0);
    let title = title(
        record["mode"].as_str().unwrap_or("?"),
        record["people"].as_u64().unwrap_or(0) as usize,
        seconds,
        record["date"].as_str().unwrap_or("?"),
    );
    plot::draw(&args.plot, &title, &samples, warm_up / 60.0)
}

fn title(mode: &str, people: usize, seconds: f64, date: &str) -> String {
    format!(
        "hubbub-bench soak: {mode}, {people} people, {:.0} min, {date}",
        seconds / 60.0
    )
}

/// Every `every`, until `until`: the oldest room goes out of use and a new one comes in.
async fn rotate(
    rooms: Arc<Rooms>,
    urls: Arc<Vec<String>>,
    every: Duration,
    until: Instant,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut created = 0;
    loop {
        let next = Instant::now() + every;
        if next >= until {
            return Ok(());
        }
        tokio::time::sleep_until(next).await;
        rooms.retire_oldest();
        created += 1;
        rooms.create(&http, &urls[created % urls.len()]).await?;
    }
}

/// Waits until every connection has closed, and samples the server at rest.
async fn settle(sampler: &Sampler<'_>) -> anyhow::Result<Sample> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let sample = sampler.sample().await?;
        if sample.connections == 0 && sample.storage_pending == 0 {
            return Ok(sample);
        }
        ensure!(
            Instant::now() < deadline,
            "{} connections still open a minute after everyone left",
            sample.connections
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many acknowledged messages storage does not hold with their text, read back through the API.
async fn missing(
    http: &reqwest::Client,
    url: &str,
    rooms: &[String],
    acknowledged: &[Acknowledged],
) -> anyhow::Result<usize> {
    let mut stored: HashMap<(&str, u64), String> = HashMap::new();
    for room in rooms {
        let mut after = 0;
        loop {
            let page: serde_json::Value = http
                .get(format!(
                    "{url}/api/rooms/{room}/messages?after={after}&limit={PAGE}"
                ))
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("cannot read {room}'s messages"))?
                .json()
                .await?;
            let messages = page["messages"]
                .as_array()
                .context("a page without messages")?;
            for message in messages {
                let seq = message["seq"].as_u64().context("a message without seq")?;
                let text = message["text"].as_str().unwrap_or_default().to_owned();
                stored.insert((room.as_str(), seq), text);
                after = seq;
            }
            if messages.len() < PAGE {
                break;
            }
        }
    }
    Ok(acknowledged
        .iter()
        .filter(|a| stored.get(&(a.room.as_str(), a.seq)) != Some(&a.text))
        .count())
}

fn print_summary(record: &Record<'_>) {
    let (f, d) = (record.flatness, record.delivery);
    println!(
        "\n## Soak: {}, {} people, {:.0} min, {}\n",
        record.mode,
        record.people,
        record.seconds / 60.0,
        record.date
    );
    println!("| figure | value |\n| --- | --- |");
    println!(
        "| anonymous memory after warm-up, first third → last third | {:.1} → {:.1} MiB ({:+.2} %) |",
        f.anon.first_mib, f.anon.last_mib, f.anon.percent
    );
    println!(
        "| RSS after warm-up, first third → last third | {:.1} → {:.1} MiB ({:+.2} %) |",
        f.rss.first_mib, f.rss.last_mib, f.rss.percent
    );
    println!(
        "| descriptors besides connections, max first third → last third | {} → {} |",
        f.other_fds_first_max, f.other_fds_last_max
    );
    println!(
        "| at rest: RSS, descriptors, rooms in memory | {:.1} MiB, {}, {} |",
        record.at_rest.rss_bytes as f64 / 1048576.0,
        record.at_rest.fds,
        record.at_rest.rooms
    );
    println!(
        "| rooms created | {} ({} in use at once) |",
        record.rooms_created, record.rooms_at_once
    );
    println!("| visits, resumes | {}, {} |", d.visits, d.resumes);
    println!(
        "| sent, acknowledged, heard | {}, {}, {} |",
        d.sent, d.acknowledged, d.heard
    );
    println!(
        "| gaps, duplicates, truncated resumes | {}, {}, {} |",
        d.gaps, d.duplicates, d.truncated
    );
    println!(
        "| acknowledged but missing from storage | {} |",
        d.missing_from_storage
    );
    println!(
        "| sent as a connection went (never acknowledged) | {} |",
        d.unacknowledged
    );
    println!(
        "| dropped by storage | {} |",
        record.at_rest.storage_dropped
    );
    println!("| errors | {:?} |", d.errors);
    println!(
        "| verdict | {} |",
        if record.passed { "pass" } else { "FAIL" }
    );
}
