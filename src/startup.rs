//! The application: binds its listener, wires rooms and routes together, and serves until told to stop.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use governor::RateLimiter;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::accounts::{Accounts, Hasher};
use crate::assets;
use crate::broker::{Broker, RedisBroker};
use crate::chat::connections::ConnectionLimit;
use crate::chat::registry::Registry;
use crate::chat::sign_ins::SignIns;
use crate::config::Config;
use crate::domain::Timestamp;
use crate::instruments;
use crate::routes::{self, ApiFlood, Proxying, Upgrades};
use crate::storage::{redact, Storage};
use crate::telemetry;

/// How often the API flood limiter forgets addresses that have gone quiet, so it does not grow forever.
const FLOOD_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How often the metrics recorder folds buffered histogram samples, so they do not pile up unscraped.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How often the sessions that connections are signed in with are checked: one that ended on
/// another instance (logout, a password change) or expired closes its connections here within this.
const SIGN_IN_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Expired sessions are refused at once; their rows are deleted this often.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// The retention sweep runs this often, or four times per retention period if that is shorter.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Connections the kernel queues for accepting. std's `TcpListener::bind` asks for 128, and a burst
/// of clients (every browser reconnecting after a restart) overflowed it: the kernel dropped SYNs and
/// those clients retried a second later. In the bench's connect phases (200 connects in flight) one
/// run in five took a second longer to connect 1,000 clients. 1,024 is actix-web's own default for
/// addresses it binds; the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 1_024;

/// Binds `address` with a backlog of `LISTEN_BACKLOG` (and SO_REUSEADDR, as std does on Unix, so a
/// restart need not wait for the old connections' TIME_WAIT).
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Lets the kernel abort a connection whose peer has accepted no data for `timeout`.
///
/// A client that stops reading freezes its session actor (actix stops polling a response body
/// whose socket is not writable), so no timer of ours can close it. With TCP_USER_TIMEOUT the kernel
/// gives up on a peer that keeps its receive window shut for that long, and the socket is freed.
fn limit_unacknowledged_time(connection: &dyn std::any::Any, timeout: Duration) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(err) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(timeout)) {
            tracing::warn!(%err, "cannot set TCP_USER_TIMEOUT; stalled clients are dropped only when they read again");
        }
    }
}

pub struct Application {
    server: Server,
    port: u16,
    flood: Arc<ApiFlood>,
    accounts: Arc<Accounts>,
    sign_ins: SignIns,
    storage: Storage,
    registry: Registry,
    retention: Duration,
    shutdown_grace: Duration,
    metrics: PrometheusHandle,
}

impl Application {
    /// Opens storage, binds the configured address (port 0 picks a free one) and prepares the server.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        // First: storage and every lobby take their metrics' handles once, from the recorder.
        let metrics_handle = instruments::recorder()?;
        let storage = Storage::open(&config.database_url, config.storage_buffer).await?;
        tracing::info!(database = %redact(&config.database_url), "storage opened");
        let listener = listen(SocketAddr::new(config.host, config.port))
            .with_context(|| format!("failed to listen on {}:{}", config.host, config.port))?;
        let port = listener
            .local_addr()
            .context("failed to read the bound address")?
            .port();

        let templates = web::Data::new(assets::templates()?);
        let metrics = web::Data::new(metrics_handle.clone());
        // The one place that chooses how rooms reach their other copies.
        let broker = match &config.redis_url {
            Some(url) => Broker::Redis(RedisBroker::start(url, config.instance_timeout)?),
            None => Broker::local(),
        };
        let app_broker = web::Data::new(broker.clone());
        let hasher = Hasher::new()?;
        let registry = Registry::new(
            config.room_settings(),
            storage.clone(),
            broker,
            hasher.clone(),
        );
        let app_registry = web::Data::new(registry.clone());
        let app_storage = web::Data::new(storage.clone());
        let accounts = Arc::new(Accounts::new(
            storage.clone(),
            config.session_lifetime,
            hasher,
        ));
        let app_accounts = web::Data::from(Arc::clone(&accounts));
        let proxying = Proxying {
            trust_proxy: config.trust_proxy,
            public_url: config.public_url.clone(),
        };
        let sessions = config.session_settings();
        let sign_ins = SignIns::default();
        let app_sign_ins = web::Data::new(sign_ins.clone());
        // The API's per-address flood limit is the same quota a connection gets.
        let flood = Arc::new(RateLimiter::keyed(sessions.flood));
        let upgrades = web::Data::new(Upgrades {
            proxying: proxying.clone(),
            origins: config.allowed_origins(),
            connections: ConnectionLimit::new(config.max_connections_per_address),
            sessions: Arc::new(sessions),
            sign_ins: sign_ins.clone(),
        });
        let app_proxying = web::Data::new(proxying);
        let api_flood = web::Data::from(Arc::clone(&flood));

        let client_timeout = config.client_timeout;
        let max_body = config.max_body_size;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(routes::error_pages())
                .wrap(routes::security_headers())
                .app_data(templates.clone())
                .app_data(metrics.clone())
                .app_data(app_registry.clone())
                .app_data(app_storage.clone())
                .app_data(app_accounts.clone())
                .app_data(app_sign_ins.clone())
                .app_data(app_broker.clone())
                .app_data(upgrades.clone())
                .app_data(app_proxying.clone())
                .app_data(api_flood.clone())
                .configure(|cfg| routes::configure(cfg, max_body))
        })
        .on_connect(move |connection, _| limit_unacknowledged_time(connection, client_timeout))
        // Chat frames are small and must leave at once: with Nagle's algorithm (the OS default) a
        // frame written while an earlier one is unacknowledged waits for the ACK. Measured in
        // scenario (a): p50 latency 5.2 ms with it, against 0.6 ms for the baseline.
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(config.shutdown_grace.as_secs().max(1));
        if let Some(workers) = config.workers {
            server = server.workers(workers.get());
        }
        let server = server
            .listen(listener)
            .context("failed to start the HTTP server")?
            .run();
        Ok(Self {
            server,
            port,
            flood,
            accounts,
            sign_ins,
            storage,
            registry,
            retention: config.retention,
            shutdown_grace: config.shutdown_grace,
            metrics: metrics_handle,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves (Ctrl-C, SIGTERM, or a test's trigger), then stops gracefully.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let registry = self.registry.clone();
        actix_web::rt::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: closing connections with 1012, then writing storage");
            // Clients told "service restart" reconnect and resume by themselves, elsewhere or here.
            registry.shut_down().await;
            handle.stop(true).await;
        });
        let (flood, metrics) = (self.flood, self.metrics);
        every(FLOOD_SWEEP_INTERVAL, move || flood.retain_recent());
        every(METRICS_UPKEEP_INTERVAL, move || metrics.run_upkeep());
        every(
            telemetry::NOISE_SUMMARY_PERIOD,
            telemetry::summarise_client_noise,
        );
        actix_web::rt::spawn(check_sign_ins(Arc::clone(&self.accounts), self.sign_ins));
        actix_web::rt::spawn(forget_expired_sessions(self.accounts));
        if !self.retention.is_zero() {
            actix_web::rt::spawn(sweep_inactive_rooms(self.registry, self.retention));
        }
        let served = self.server.await;
        if tokio::time::timeout(self.shutdown_grace, self.storage.flush())
            .await
            .is_err()
        {
            tracing::error!(
                pending = self.storage.health().pending,
                "storage did not finish writing before exit"
            );
        }
        // Closed while the runtime still runs: a pooled connection must not be dropped after it.
        self.storage.close().await;
        served
    }
}

/// Runs `chore` every `period` for as long as the server's runtime lives.
fn every(period: Duration, mut chore: impl FnMut() + 'static) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(period);
        loop {
            ticks.tick().await;
            chore();
        }
    });
}

/// Closes the connections of sessions that no longer exist (ended elsewhere, or expired).
async fn check_sign_ins(accounts: Arc<Accounts>, sign_ins: SignIns) {
    let mut check = actix_web::rt::time::interval(SIGN_IN_CHECK_INTERVAL);
    // Warned once per outage, not every few seconds through it.
    let mut failing = false;
    loop {
        check.tick().await;
        let open = sign_ins.sessions();
        if open.is_empty() {
            continue;
        }
        match accounts.live(&open).await {
            Ok(live) => {
                failing = false;
                let live: std::collections::HashSet<_> = live.into_iter().collect();
                for ended in open.iter().filter(|session| !live.contains(session)) {
                    sign_ins.end(ended);
                }
            }
            // The sessions' connections stay: the database will answer a later check.
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "cannot check sign-in sessions; their connections stay open");
            }
            Err(_) => {}
        }
    }
}

/// Deletes expired sign-in sessions (and quiet throttle entries) now and then.
async fn forget_expired_sessions(accounts: Arc<Accounts>) {
    let mut sweep = actix_web::rt::time::interval(SESSION_SWEEP_INTERVAL);
    loop {
        sweep.tick().await;
        if let Err(err) = accounts.forget_expired().await {
            tracing::warn!(error = %err, "deleting expired sessions failed; it will run again");
        }
    }
}

/// Deletes stored rooms nobody has used for the retention period, now and then.
async fn sweep_inactive_rooms(registry: Registry, retention: Duration) {
    let mut sweep = actix_web::rt::time::interval(
        (retention / 4).clamp(Duration::from_secs(1), MAX_SWEEP_INTERVAL),
    );
    loop {
        sweep.tick().await;
        match registry
            .delete_inactive(Timestamp::now().earlier_by(retention))
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted rooms past their retention"),
            Err(err) => {
                tracing::warn!(error = %err, "the retention sweep failed; it will run again")
            }
        }
    }
}
