//! A rolling restart: every instance in turn gets SIGTERM under traffic and comes back. Its
//! clients are closed with 1012, resume on another instance, and miss nothing.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{check_room, hear, Cluster, Heard};
use crate::helpers::Client;

/// A member that follows the room across restarts.
struct Listener {
    name: String,
    client: Client,
    on: usize,
    heard: Heard,
}

impl Listener {
    /// Reads until the server closes the connection, and returns the close code.
    async fn until_closed(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.client.socket.next())
                .await
                .expect("the restart closes the connection in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    self.heard.take(&frame, &self.name);
                }
                Some(Ok(Message::Close(close))) => {
                    return close.map_or(1005, |close| u16::from(close.code));
                }
                Some(Ok(_)) => {}
                other => panic!(
                    "{}: the connection ended without a close: {other:?}",
                    self.name
                ),
            }
        }
    }
}

/// Posts `count` messages over the API, each to the next instance that answers; returns how many.
async fn post_around(urls: Vec<String>, round: usize, count: usize) -> usize {
    let http = reqwest::Client::new();
    let mut posted = 0;
    let mut next = 0;
    while posted < count {
        let url = &urls[next % urls.len()];
        next += 1;
        let response = http
            .post(url)
            .json(&json!({ "name": "api", "text": format!("api {round}.{posted}") }))
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == 201) {
            posted += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    posted
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_rolling_restart_of_every_instance_under_traffic_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let code = cluster.create_room(0).await;
    let mut listeners = Vec::new();
    for on in 0..3 {
        let name = format!("l{on}");
        let client = cluster.join(on, &code, &name).await;
        listeners.push(Listener {
            name,
            client,
            on,
            heard: Heard::default(),
        });
    }
    for restarting in 0..3 {
        // Posts go to every instance but the one about to stop, whose port is gone after.
        let urls = (0..3)
            .filter(|on| *on != restarting)
            .map(|on| format!("{}/api/rooms/{code}/messages", cluster.instance(on).url))
            .collect();
        let posting = tokio::spawn(post_around(urls, restarting, 40));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = cluster.instances[restarting].take().expect("running");
        let stopped = tokio::task::spawn_blocking(move || stopping.terminate());
        let back_on = (restarting + 1) % 3;
        for listener in listeners.iter_mut().filter(|l| l.on == restarting) {
            assert_eq!(listener.until_closed().await, 1012, "{}", listener.name);
            let since = listener.heard.order.last().copied().unwrap_or(0);
            let secret = listener.client.resume_secret().to_owned();
            let query = format!("name={}&resume={secret}&since={since}", listener.name);
            let client = cluster.join_with(back_on, &code, &query).await;
            for message in client.welcome["history"].as_array().expect("history") {
                let mut frame = message.clone();
                frame["type"] = "message".into();
                listener.heard.take(&frame, &listener.name);
            }
            listener.client = client;
            listener.on = back_on;
        }
        assert!(stopped.await.expect("terminates").status.success());
        assert_eq!(posting.await.expect("posting ends"), 40);
        cluster.instances[restarting] = Some(cluster.launch().await);
    }
    let heard: Vec<Heard> = {
        let mut heard = Vec::new();
        for mut listener in listeners {
            hear(
                &mut listener.client,
                &mut listener.heard,
                &listener.name,
                120,
                Duration::from_secs(20),
            )
            .await;
            heard.push(listener.heard);
        }
        heard
    };
    for (index, listener) in heard.iter().enumerate() {
        assert_eq!(
            listener.order.first(),
            Some(&1),
            "listener {index} heard from the start"
        );
    }
    check_room(&cluster.database, &code, &heard).await;
}
