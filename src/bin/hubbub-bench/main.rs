//! `hubbub-bench`: the project's load generator.
//!
//! Opens `--clients` WebSocket clients spread over `--rooms` rooms, lets `--senders-per-room` of each
//! room send at a fixed total `--rate` for `--duration`, and reports delivered messages per second,
//! latency percentiles, errors and, given `--server-pid`, the server's CPU and memory.

mod client;
mod report;
mod server_stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use futures_util::{stream, StreamExt};
use tokio::sync::watch;

use client::{Client, ClientPlan, Counters, Phase};
use report::Report;
use server_stats::ServerStats;

#[derive(Debug, Parser)]
#[command(
    name = "hubbub-bench",
    about = "Load generator for a running Hubbub server"
)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// WebSocket clients to open.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Rooms to spread them over, evenly.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Clients in each room that send; the rest only receive.
    #[arg(long, default_value_t = 1)]
    senders_per_room: usize,
    /// Messages per second sent in total by all senders; 0 holds the connections idle.
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// How long to send (or hold idle connections).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Bytes of text in each message, besides the timestamp the bench puts first.
    #[arg(long, default_value_t = 32)]
    text_bytes: usize,
    /// Connection attempts in flight at once while connecting.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// The server's process id, to measure its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also print the report as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// How long after the senders stop the bench waits for messages still in flight.
const DRAIN: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.rooms > 0 && args.clients >= args.rooms,
        "need at least one client per room"
    );
    ensure!(
        args.senders_per_room <= args.clients / args.rooms,
        "more senders per room than clients in a room"
    );
    let server = args.server_pid.map(ServerStats::new).transpose()?;
    let memory_before = server.as_ref().map(ServerStats::rss_bytes).transpose()?;

    let rooms = create_rooms(&args).await?;
    let counters = Arc::new(Counters::default());
    let epoch = Instant::now();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let send_period = send_period(&args);

    let connect_started = Instant::now();
    let plans = (0..args.clients).map(|i| ClientPlan {
        url: ws_url(&args.url, &rooms[i % args.rooms], i),
        sends: args.rate > 0 && i / args.rooms < args.senders_per_room,
        period: send_period,
        text_bytes: args.text_bytes,
    });
    let connected: Vec<Client> = stream::iter(plans)
        .map(|plan| Client::connect(plan, Arc::clone(&counters), epoch, phase_rx.clone()))
        .buffer_unordered(args.connect_concurrency)
        .filter_map(|client| async move { client.ok() })
        .collect()
        .await;
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    ensure!(
        !connected.is_empty(),
        "no client could connect to {}",
        args.url
    );
    let memory_connected = server.as_ref().map(ServerStats::rss_bytes).transpose()?;

    let cpu_before = server.as_ref().map(ServerStats::cpu_seconds).transpose()?;
    let sending = Instant::now();
    phase_tx.send_replace(Phase::Sending);
    tokio::time::sleep(args.duration).await;
    phase_tx.send_replace(Phase::Draining);
    let send_seconds = sending.elapsed().as_secs_f64();
    if args.rate > 0 {
        tokio::time::sleep(DRAIN).await;
    }
    let cpu_after = server.as_ref().map(ServerStats::cpu_seconds).transpose()?;
    phase_tx.send_replace(Phase::Done);

    let clients_open = connected.len();
    let histograms =
        futures_util::future::join_all(connected.into_iter().map(Client::finish)).await;
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
        server_cpu_seconds: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after - before),
        server_memory: server
            .as_ref()
            .map(ServerStats::peak_rss_bytes)
            .transpose()?,
        memory_before,
        memory_connected,
    });
    report.print(args.json);
    Ok(())
}

/// Each sender's interval, so that all senders together send `rate` messages a second.
fn send_period(args: &Args) -> Duration {
    let senders = (args.rooms * args.senders_per_room).max(1) as f64;
    Duration::from_secs_f64(senders / f64::from(args.rate.max(1)))
}

fn ws_url(base: &str, room: &str, client: usize) -> String {
    let base = base.replacen("http", "ws", 1);
    format!("{base}/ws/{room}?name=bench-{client}")
}

async fn create_rooms(args: &Args) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut codes = Vec::with_capacity(args.rooms);
    for _ in 0..args.rooms {
        let response = http
            .post(format!("{}/api/rooms", args.url))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", args.url))?;
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
        codes.push(code.to_owned());
    }
    Ok(codes)
}
