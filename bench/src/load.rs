//! One load run against a server that is already running: connect, send, drain, report.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Args;
use futures_util::{stream, StreamExt};
use tokio::sync::watch;

use crate::client::{Client, ClientPlan, Counters, Phase};
use crate::report::{self, Report, StorageHealth};
use crate::server_stats::ServerStats;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// More instances of the same shared-mode deployment: each room's clients are spread over
    /// `--url` and these in turn, its sender on `--url`.
    #[arg(long)]
    pub also_url: Vec<String>,
    /// WebSocket clients to open.
    #[arg(long, default_value_t = 1_000)]
    pub clients: usize,
    /// Rooms to spread them over, evenly.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Clients in each room that send; the rest only receive.
    #[arg(long, default_value_t = 1)]
    pub senders_per_room: usize,
    /// Messages per second sent in total by all senders; 0 holds the connections idle.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u32,
    /// How long to send (or hold idle connections).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Bytes of text in each message, besides the timestamp the bench puts first.
    #[arg(long, default_value_t = 32)]
    pub text_bytes: usize,
    /// Connection attempts in flight at once while connecting.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Connect from this many loopback addresses, 127.0.0.1 upwards, so that many connections do
    /// not run out of one address's ephemeral ports.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub source_addresses: u8,
    /// Fill each room before the next, so that a room's members arrive together (a class following
    /// one invite link), instead of in turn with every other room's (a restart's reconnections).
    #[arg(long)]
    pub rooms_in_turn: bool,
    /// Join rooms named by the bench instead of creating them over the HTTP API (for the baseline,
    /// which has none).
    #[arg(long)]
    pub no_room_api: bool,
    /// The server's process ids, to measure their CPU time (each, and in all) and the first's memory.
    #[arg(long)]
    pub server_pid: Vec<u32>,
    /// Also print the report as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Clients with their number in the plan.
type Numbered = Vec<(usize, Client)>;

/// How long after the senders stop the bench waits for messages still in flight.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs the load once and prints its report.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    ensure!(
        args.rooms > 0 && args.clients >= args.rooms,
        "need at least one client per room"
    );
    ensure!(
        args.senders_per_room <= args.clients / args.rooms,
        "more senders per room than clients in a room"
    );
    let processes = args
        .server_pid
        .iter()
        .map(|pid| ServerStats::new(*pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let server = processes.first();
    let memory_before = server.map(ServerStats::rss_bytes).transpose()?;

    let urls: Vec<&str> = std::iter::once(args.url.as_str())
        .chain(args.also_url.iter().map(String::as_str))
        .collect();
    let addresses = urls
        .iter()
        .map(|url| socket_address(url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rooms = if args.no_room_api {
        (0..args.rooms).map(|room| format!("ROOM{room}")).collect()
    } else {
        create_rooms(&args).await?
    };
    let counters = Arc::new(Counters::default());
    let epoch = Instant::now();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let send_period = send_period(&args);

    let connect_started = Instant::now();
    // Client i is in room i % rooms, the (i / rooms)th there, unless rooms fill in turn; the
    // first of each room sends.
    let per_room = args.clients.div_ceil(args.rooms);
    let seat = |i: usize| {
        if args.rooms_in_turn {
            (i / per_room, i % per_room)
        } else {
            (i % args.rooms, i / args.rooms)
        }
    };
    let instance = |i: usize| seat(i).1 % urls.len();
    let plans = (0..args.clients).map(|i| ClientPlan {
        url: ws_url(urls[instance(i)], &rooms[seat(i).0], i),
        server: addresses[instance(i)],
        source: IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            1 + (i % usize::from(args.source_addresses)) as u8,
        )),
        sends: args.rate > 0 && seat(i).1 < args.senders_per_room,
        period: send_period,
        // Sender i of n sends at i/n of each period, so sends arrive evenly, not all in one instant.
        offset: send_period.mul_f64(
            (seat(i).1 * args.rooms + seat(i).0) as f64
                / (args.rooms * args.senders_per_room) as f64,
        ),
        text_bytes: args.text_bytes,
    });
    let connected: Numbered = stream::iter(plans.enumerate())
        .map(|(i, plan)| {
            let client = Client::connect(plan, Arc::clone(&counters), epoch, phase_rx.clone());
            async move { (i, client.await) }
        })
        .buffer_unordered(args.connect_concurrency)
        .filter_map(|(i, client)| async move { client.ok().map(|client| (i, client)) })
        .collect()
        .await;
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    ensure!(
        !connected.is_empty(),
        "no client could connect to {}",
        args.url
    );
    let memory_connected = server.map(ServerStats::rss_bytes).transpose()?;

    let cpu_of = |processes: &[ServerStats]| {
        processes
            .iter()
            .map(ServerStats::cpu_seconds)
            .collect::<anyhow::Result<Vec<f64>>>()
    };
    let storage_cpu_of = |processes: &[ServerStats]| -> anyhow::Result<Option<f64>> {
        let mut total = None;
        for process in processes {
            if let Some(cpu) = process.storage_cpu_seconds()? {
                *total.get_or_insert(0.0) += cpu;
            }
        }
        Ok(total)
    };
    let storage_cpu_before = storage_cpu_of(&processes)?;
    let cpu_before = cpu_of(&processes)?;
    let sending = Instant::now();
    phase_tx.send_replace(Phase::Sending);
    tokio::time::sleep(args.duration).await;
    phase_tx.send_replace(Phase::Draining);
    let send_seconds = sending.elapsed().as_secs_f64();
    if args.rate > 0 {
        tokio::time::sleep(DRAIN).await;
    }
    let cpu_after = cpu_of(&processes)?;
    let storage_cpu_seconds =
        storage_cpu_of(&processes)?.map(|after| after - storage_cpu_before.unwrap_or_default());
    let process_cpu_seconds: Vec<f64> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|(after, before)| after - before)
        .collect();
    phase_tx.send_replace(Phase::Done);
    let storage = if args.no_room_api {
        None
    } else {
        Some(storage_health(&args.url).await?)
    };

    let clients_open = connected.len();
    // Clients on another instance than their room's sender, and the rest.
    let (cross, local): (Numbered, Numbered) =
        connected.into_iter().partition(|(i, _)| instance(*i) != 0);
    let finish = |clients: Numbered| {
        futures_util::future::join_all(clients.into_iter().map(|(_, c)| c.finish()))
    };
    let cross_histograms = finish(cross).await;
    let mut histograms = finish(local).await;
    histograms.extend(cross_histograms.iter().cloned());
    let report = Report::new(report::Inputs {
        clients: args.clients,
        clients_open,
        rooms: args.rooms,
        senders: if args.rate > 0 {
            args.rooms * args.senders_per_room
        } else {
            0
        },
        rate: args.rate,
        connect_seconds,
        send_seconds,
        counters: &counters,
        histograms,
        cross_histograms,
        server_cpu_seconds: (!processes.is_empty()).then(|| process_cpu_seconds.iter().sum()),
        process_cpu_seconds: if processes.len() > 1 {
            process_cpu_seconds
        } else {
            Vec::new()
        },
        storage_cpu_seconds,
        server_memory: server.map(ServerStats::peak_rss_bytes).transpose()?,
        memory_before,
        memory_connected,
        storage,
    });
    report.print(args.json);
    Ok(())
}

/// Each sender's interval, so that all senders together send `rate` messages a second.
fn send_period(args: &LoadArgs) -> Duration {
    let senders = (args.rooms * args.senders_per_room).max(1) as f64;
    Duration::from_secs_f64(senders / f64::from(args.rate.max(1)))
}

/// The address a URL's host and port name; the bench connects to it directly, from a chosen source.
fn socket_address(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    parsed
        .socket_addrs(|| None)
        .with_context(|| format!("cannot resolve {url}"))?
        .into_iter()
        .next()
        .with_context(|| format!("{url} names no address"))
}

fn ws_url(base: &str, room: &str, client: usize) -> String {
    let base = base.replacen("http", "ws", 1);
    format!("{base}/ws/{room}?name=bench-{client}")
}

/// What Hubbub's `/healthz` says of its storage after a run: a server that kept up with delivery
/// only by dropping messages its storage could not write has not sustained the load.
async fn storage_health(url: &str) -> anyhow::Result<StorageHealth> {
    let response = reqwest::get(format!("{url}/healthz"))
        .await
        .with_context(|| format!("cannot reach {url}/healthz"))?;
    let mut body: serde_json::Value = response
        .json()
        .await
        .context("/healthz answered non-JSON")?;
    serde_json::from_value(body["storage"].take()).context("/healthz gave no storage figures")
}

async fn create_rooms(args: &LoadArgs) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut codes = Vec::with_capacity(args.rooms);
    for _ in 0..args.rooms {
        codes.push(create_room(&http, &args.url).await?);
    }
    Ok(codes)
}

/// Creates a room through the HTTP API of the server at `url` and returns its code.
pub async fn create_room(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = http
        .post(format!("{url}/api/rooms"))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    ensure!(
        response.status().is_success(),
        "creating a room failed: {}",
        response.status()
    );
    let body: serde_json::Value = response
        .json()
        .await
        .context("room creation answered non-JSON")?;
    let code = body["code"]
        .as_str()
        .context("room creation answered no code")?;
    Ok(code.to_owned())
}
