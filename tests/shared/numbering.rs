//! One order of messages per room across instances, with no hole and no duplicate.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{check_room, stored_in, Cluster, Heard};
use crate::helpers::Client;

/// Sends `count` messages and, at the same time, reads until `total` messages have arrived.
async fn talk(client: Client, own: String, count: usize, total: usize) -> Heard {
    let (mut sink, mut stream) = client.socket.split();
    let sender = own.clone();
    let send = async move {
        for n in 0..count {
            let frame =
                json!({ "type": "message", "text": format!("{sender} {n}"), "ref": n.to_string() });
            sink.send(Message::text(frame.to_string()))
                .await
                .expect("a message is sent");
        }
        sink
    };
    let listen = async move {
        let mut heard = Heard::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while heard.messages.len() < total && heard.errors.is_empty() {
            let frame = tokio::time::timeout_at(deadline, stream.next())
                .await
                .unwrap_or_else(|_| panic!("{own}: heard {} of {total}", heard.messages.len()))
                .expect("the connection stays open")
                .expect("frames are well-formed");
            if let Message::Text(text) = frame {
                let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                heard.take(&frame, &own);
            }
        }
        heard
    };
    let (_sink, heard) = tokio::join!(send, listen);
    heard
}

/// `per_instance` clients on each instance of each room, all sending `count` messages at once;
/// then every room is checked against storage and every client.
async fn flood(cluster: &Cluster, rooms: usize, per_instance: usize, count: usize) {
    let instances = cluster.instances.len();
    let mut codes = Vec::new();
    for r in 0..rooms {
        codes.push(cluster.create_room(r % instances).await);
    }
    let mut talkers = Vec::new();
    for code in &codes {
        let mut clients = Vec::new();
        for i in 0..instances * per_instance {
            let name = format!("c{i}");
            clients.push((name.clone(), cluster.join(i % instances, code, &name).await));
        }
        let total = clients.len() * count;
        for (name, client) in clients {
            talkers.push((code.clone(), tokio::spawn(talk(client, name, count, total))));
        }
    }
    let mut heard: Vec<(String, Heard)> = Vec::new();
    for (code, talker) in talkers {
        heard.push((code, talker.await.expect("a client's task ends")));
    }
    for code in &codes {
        let room: Vec<Heard> = heard
            .iter_mut()
            .filter(|(c, _)| c == code)
            .map(|(_, h)| std::mem::take(h))
            .collect();
        assert!(
            room.iter().all(|h| h.acknowledged.len() == count),
            "{code}: every send acknowledged"
        );
        check_room(&cluster.database, code, &room).await;
        assert_eq!(
            stored_in(&cluster.database, code).await.len(),
            room.len() * count,
            "{code}: every message stored once"
        );
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn thirty_clients_over_three_instances_hear_one_order() {
    let cluster = Cluster::start(3).await;
    flood(&cluster, 1, 10, 100).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn three_instances_flooding_several_rooms_at_once_number_each_without_a_hole() {
    let cluster = Cluster::start(3).await;
    flood(&cluster, 4, 2, 150).await;
}
