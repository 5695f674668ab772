//! The baseline: the smallest fan-out server that can be written, the practical limit of this machine.
//!
//! Tokio, tokio-tungstenite and one broadcast channel per room: a text frame from any member goes to
//! every member as it is, the sender included. No JSON, no storage, no limits, no heartbeat. It speaks
//! just enough of Hubbub's protocol for the load generator: `/ws/ROOM` and a first frame that says
//! `"type":"welcome"`. Every Hubbub figure is reported as a ratio to this one, measured in the same run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Frames a room's channel holds for its slowest member: Hubbub's default bound on a connection's
/// backlog. A member further behind skips frames, and the load generator counts them as undelivered,
/// so a baseline that cannot keep up shows it.
const ROOM_BACKLOG: usize = 256;

/// Bytes read from a socket at a time. Tungstenite's default, 128 KiB, would make the baseline's
/// memory per connection mostly buffer; Hubbub's reads are 8 KiB at most.
const READ_BUFFER: usize = 4 * 1024;

const WELCOME: &str = r#"{"type":"welcome"}"#;

type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>;

/// Serves on 127.0.0.1:`port` until the process is killed.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let rooms = Rooms::default();
    loop {
        let (stream, _) = listener.accept().await.context("accept failed")?;
        // As Hubbub does, so that small frames leave at once in both.
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        tokio::spawn(connection(stream, Arc::clone(&rooms)));
    }
}

// The handshake callback's error type is tungstenite's own, large or not.
#[allow(clippy::result_large_err)]
async fn connection(stream: TcpStream, rooms: Rooms) {
    let mut path = String::new();
    let remember_path = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let accepted =
        tokio_tungstenite::accept_hdr_async_with_config(stream, remember_path, Some(config)).await;
    let Ok(socket) = accepted else {
        return;
    };
    let room = path.trim_start_matches("/ws/").to_owned();
    let channel = rooms
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(room)
        .or_insert_with(|| broadcast::channel(ROOM_BACKLOG).0)
        .clone();
    let mut events = channel.subscribe();
    let (mut sink, mut frames) = socket.split();
    if sink.send(Message::text(WELCOME)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(text @ Message::Text(_))) => {
                    // Cannot fail: this connection is itself subscribed.
                    let _ = channel.send(text);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            event = events.recv() => match event {
                Ok(text) => {
                    // Everything already waiting goes out in the same write, as Hubbub's do.
                    let mut batch = vec![text];
                    batch.extend(std::iter::from_fn(|| events.try_recv().ok()));
                    let mut batch = futures_util::stream::iter(batch.into_iter().map(Ok));
                    if sink.send_all(&mut batch).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
