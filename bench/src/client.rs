//! One simulated client: it joins, optionally sends on a fixed period, and times every message it receives.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Socket = WebSocketStream<TcpStream>;

/// Where the run is; every client watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Sending,
    /// Senders have stopped; readers still take messages in flight.
    Draining,
    Done,
}

/// What one client does.
pub struct ClientPlan {
    pub url: String,
    pub server: SocketAddr,
    /// The local address to connect from: spreading clients over 127.0.0.x keeps one address's
    /// ephemeral ports from running out.
    pub source: IpAddr,
    pub sends: bool,
    pub period: Duration,
    /// When in each period this client sends: people in different rooms do not type in step.
    pub offset: Duration,
    pub text_bytes: usize,
}

/// Totals shared by every client.
#[derive(Default)]
pub struct Counters {
    pub connect_failures: AtomicU64,
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub disconnects: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
}

pub struct Client {
    reader: JoinHandle<Option<Histogram<u64>>>,
    sender: Option<JoinHandle<SplitSink<Socket, Message>>>,
}

/// Bytes read from a socket at a time: tungstenite's default of 128 KiB per client would cost the
/// load generator 2.4 GB at 19,000 clients.
const READ_BUFFER: usize = 4 * 1024;

/// Latencies are recorded in microseconds up to one minute, to three significant figures.
const MAX_LATENCY_MICROS: u64 = 60_000_000;

impl Client {
    /// Connects, waits for the welcome, and starts the client's reader (and sender, if it sends).
    pub async fn connect(
        plan: ClientPlan,
        counters: Arc<Counters>,
        epoch: Instant,
        phase: watch::Receiver<Phase>,
    ) -> anyhow::Result<Self> {
        let socket = open(&plan).await.inspect_err(|_| {
            counters.connect_failures.fetch_add(1, Ordering::Relaxed);
        })?;
        let (mut sink, mut stream) = socket.split();
        match stream.next().await {
            Some(Ok(Message::Text(text))) if text.contains(r#""type":"welcome""#) => {}
            other => {
                counters.connect_failures.fetch_add(1, Ordering::Relaxed);
                anyhow::bail!("expected a welcome, got {other:?}");
            }
        }

        let reader_counters = Arc::clone(&counters);
        let mut reader_phase = phase.clone();
        let reader = tokio::spawn(async move {
            let mut latencies: Option<Histogram<u64>> = None;
            let done = reader_phase.wait_for(|phase| *phase == Phase::Done);
            tokio::pin!(done);
            loop {
                tokio::select! {
                    // Reading also answers the server's pings, so idle clients stay connected.
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => record(&text, epoch, &reader_counters, &mut latencies),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            reader_counters.disconnects.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    },
                    _ = &mut done => break,
                }
            }
            latencies
        });

        let sender = plan.sends.then(|| {
            let mut phase = phase;
            let padding = "x".repeat(plan.text_bytes);
            tokio::spawn(async move {
                if phase
                    .wait_for(|phase| *phase != Phase::Connecting)
                    .await
                    .is_err()
                {
                    return sink;
                }
                let start = tokio::time::Instant::now() + plan.offset;
                let mut ticks = tokio::time::interval_at(start, plan.period);
                // Catch up after a stall, so the total sent matches the rate asked for.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                while *phase.borrow() == Phase::Sending {
                    ticks.tick().await;
                    let sent_at = epoch.elapsed().as_micros();
                    let frame = format!(r#"{{"type":"message","text":"{sent_at} {padding}"}}"#);
                    if sink.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                // The socket stays open: closing it now would lose the echo of the last message.
                sink
            })
        });
        Ok(Self { reader, sender })
    }

    /// Waits for the client to stop (the phase must be `Done`) and returns its latency histogram,
    /// if it received any message.
    pub async fn finish(self) -> Option<Histogram<u64>> {
        let sink = match self.sender {
            Some(sender) => sender.await.ok(),
            None => None,
        };
        let latencies = self.reader.await.ok().flatten();
        drop(sink);
        latencies
    }
}

/// Connects from the plan's source address and performs the WebSocket handshake.
async fn open(plan: &ClientPlan) -> anyhow::Result<Socket> {
    let tcp = match plan.source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A port picked by bind() must be free of every earlier connection, even one in TIME_WAIT toward
    // another server; address reuse lets it share with those, as connect()'s own pick would. Without
    // it, scenarios run one after another slowed to a crawl searching for ports.
    tcp.set_reuseaddr(true)?;
    tcp.bind(SocketAddr::new(plan.source, 0))?;
    let stream = tcp.connect(plan.server).await?;
    // The server sets no-delay too; without it the sender's frames would wait on Nagle's algorithm.
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(plan.url.as_str(), stream, Some(config))
            .await?;
    Ok(socket)
}

/// The fields of a received frame the bench reads; borrowed, and the rest skipped, so that reading
/// frames costs the load generator as little as it can.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    /// A `Cow`, as a text with escapes cannot be borrowed.
    #[serde(borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<&'a str>,
}

/// Counts a received frame; for a message, its latency comes from the send time in its text.
fn record(text: &str, epoch: Instant, counters: &Counters, latencies: &mut Option<Histogram<u64>>) {
    let Ok(frame) = serde_json::from_str::<Frame>(text) else {
        return;
    };
    match frame.kind {
        "message" => {
            counters.delivered.fetch_add(1, Ordering::Relaxed);
            let sent_at = frame
                .text
                .and_then(|t| t.split(' ').next()?.parse::<u64>().ok());
            if let Some(sent_at) = sent_at {
                let now = epoch.elapsed().as_micros() as u64;
                let histogram = latencies.get_or_insert_with(|| {
                    Histogram::new_with_max(MAX_LATENCY_MICROS, 3).expect("valid histogram bounds")
                });
                histogram.saturating_record(now.saturating_sub(sent_at));
            }
        }
        "error" => {
            let code = frame.code.unwrap_or("unknown").to_owned();
            let mut errors = counters
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *errors.entry(code).or_default() += 1;
        }
        _ => {}
    }
}
