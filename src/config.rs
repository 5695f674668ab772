//! The server's configuration: command-line flags, each with an environment fallback and a default.

use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use anyhow::ensure;
use clap::Parser;
use governor::clock::DefaultClock;
use governor::Quota;

use crate::chat::settings::{RoomSettings, SessionSettings};
use crate::origin::{AllowedOrigins, Authority};
use crate::telemetry::LogFormat;

/// Hubbub: a self-hosted realtime chat-room server.
#[derive(Debug, Clone, Parser)]
#[command(name = "hubbub", version, about)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on; 0.0.0.0 accepts connections from other machines.
    #[arg(long, env = "HUBBUB_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (PORT is what hosting platforms set); 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// HTTP worker threads [default: one per CPU].
    #[arg(long, env = "HUBBUB_WORKERS")]
    pub workers: Option<NonZeroUsize>,

    /// Where rooms and messages are kept: a SQLite file (sqlite:hubbub.db), sqlite::memory: for a
    /// throwaway run, or PostgreSQL (postgres://user:password@host/database).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:hubbub.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Shared mode: several instances serve the same rooms through this Redis
    /// (redis://host:6379/0), which carries their events and presence. Needs a PostgreSQL
    /// --database-url, which numbers every room's messages for all of them.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Shared mode: an instance that stops refreshing its liveness for this long is taken for
    /// dead, and its members leave every room within about 1.7 times this (14 s by default).
    #[arg(long, env = "HUBBUB_INSTANCE_TIMEOUT", default_value = "8s", value_parser = humantime::parse_duration)]
    pub instance_timeout: Duration,

    /// Stored rooms unused for this long are deleted with their messages; 0 keeps them forever.
    #[arg(long, env = "HUBBUB_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// Messages held for writing while the database is failing; past this the oldest are dropped.
    #[arg(long, env = "HUBBUB_STORAGE_BUFFER", default_value_t = 10_000)]
    pub storage_buffer: usize,

    /// Messages each room keeps in memory for history and for clients that resume.
    #[arg(long, env = "HUBBUB_HISTORY_SIZE", default_value_t = NonZeroUsize::new(500).expect("500 is not zero"))]
    pub history_size: NonZeroUsize,

    /// Recent messages a client gets on joining without `since`.
    #[arg(long, env = "HUBBUB_HISTORY_ON_JOIN", default_value_t = 50)]
    pub history_on_join: usize,

    /// How long a room with no one in it stays in memory (it stays in storage).
    #[arg(long, env = "HUBBUB_ROOM_IDLE_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub room_idle_timeout: Duration,

    /// How often the server pings each client; keeps tunnels and proxies from closing quiet connections.
    #[arg(long, env = "HUBBUB_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// A client silent this long (no frame, no pong) is disconnected.
    #[arg(long, env = "HUBBUB_CLIENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub client_timeout: Duration,

    /// Messages (and renames) per second each connection may send, sustained.
    #[arg(long, env = "HUBBUB_RATE_LIMIT", default_value_t = NonZeroU32::new(10).expect("10 is not zero"))]
    pub rate_limit: NonZeroU32,

    /// Messages a connection may send in a burst above the sustained rate.
    #[arg(long, env = "HUBBUB_RATE_BURST", default_value_t = NonZeroU32::new(20).expect("20 is not zero"))]
    pub rate_burst: NonZeroU32,

    /// Frames that may wait for a slow client before it is disconnected.
    #[arg(long, env = "HUBBUB_MAX_BACKLOG", default_value_t = 256)]
    pub max_backlog: usize,

    /// Other origins whose pages may open WebSockets here, comma-separated (the server's own host always may).
    #[arg(long, env = "HUBBUB_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = Authority::parse_allowed)]
    pub allowed_origins: Vec<Authority>,

    /// How long a stopping server gives its connections to close and its storage to finish writing.
    #[arg(long, env = "HUBBUB_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// WebSocket connections one client address may hold at once.
    #[arg(
        long,
        env = "HUBBUB_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 100
    )]
    pub max_connections_per_address: usize,

    /// People one room admits at once.
    #[arg(long, env = "HUBBUB_MAX_MEMBERS_PER_ROOM", default_value_t = 1_000)]
    pub max_members_per_room: usize,

    /// How long someone a moderator kicks out of a room may not come back.
    #[arg(long, env = "HUBBUB_KICK_DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub kick_duration: Duration,

    /// Rooms in memory at once; past it no new room is created (stored rooms still open).
    #[arg(long, env = "HUBBUB_MAX_ROOMS", default_value_t = 10_000)]
    pub max_rooms: usize,

    /// The largest HTTP request body accepted, in bytes.
    #[arg(long, env = "HUBBUB_MAX_BODY_SIZE", default_value_t = 64 * 1024)]
    pub max_body_size: usize,

    /// Believe X-Forwarded-For, -Proto and -Host from a proxy in front (ngrok, Caddy, nginx) for
    /// client addresses, limits and the Origin check. Leave off unless a proxy sets them: they are spoofable.
    #[arg(long, env = "HUBBUB_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// The public address invite links use (https://chat.example.com); by default, the one each visitor used.
    #[arg(long, env = "HUBBUB_PUBLIC_URL")]
    pub public_url: Option<url::Url>,

    /// How long a sign-in lasts: the session cookie's lifetime, and its record's on the server.
    #[arg(long, env = "HUBBUB_SESSION_LIFETIME", default_value = "30days", value_parser = humantime::parse_duration)]
    pub session_lifetime: Duration,

    /// How log lines are written: text for people, json for log collectors.
    #[arg(long, env = "HUBBUB_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter: a level (info, debug) or tracing directives (hubbub=debug,actix_web=info).
    #[arg(long, env = "HUBBUB_LOG", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Asks the server on --port (PORT) for /healthz and exits 0 if it answers 200, 1 otherwise:
    /// a container health check that needs no curl in the image.
    Healthcheck,
}

impl Config {
    /// Checks what clap cannot: relations between settings.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.client_timeout > self.heartbeat_interval,
            "--client-timeout ({:?}) must be longer than --heartbeat-interval ({:?}), or every client would time out",
            self.client_timeout,
            self.heartbeat_interval
        );
        ensure!(
            !self.heartbeat_interval.is_zero(),
            "--heartbeat-interval must be above zero"
        );
        ensure!(
            !self.room_idle_timeout.is_zero(),
            "--room-idle-timeout must be above zero"
        );
        ensure!(
            self.session_lifetime >= std::time::Duration::from_secs(60),
            "--session-lifetime must be at least a minute"
        );
        ensure!(self.max_backlog > 0, "--max-backlog must be above zero");
        ensure!(
            self.storage_buffer > 0,
            "--storage-buffer must be above zero"
        );
        crate::storage::check_url(&self.database_url)?;
        if let Some(redis) = &self.redis_url {
            ensure!(
                !self.database_url.starts_with("sqlite:"),
                "--redis-url turns on shared mode, where every instance numbers messages through one \
                 PostgreSQL database: set --database-url to postgres://… (it is {})",
                crate::storage::redact(&self.database_url)
            );
            crate::broker::check_url(redis)?;
            ensure!(
                self.instance_timeout >= std::time::Duration::from_secs(1),
                "--instance-timeout must be at least 1s"
            );
        }
        Ok(())
    }

    pub fn room_settings(&self) -> RoomSettings {
        RoomSettings {
            history_size: self.history_size,
            history_on_join: self.history_on_join,
            idle_timeout: self.room_idle_timeout,
            max_members: self.max_members_per_room,
            max_rooms: self.max_rooms,
            kick_for: self.kick_duration,
        }
    }

    pub fn session_settings(&self) -> SessionSettings {
        SessionSettings {
            heartbeat_interval: self.heartbeat_interval,
            client_timeout: self.client_timeout,
            flood: Quota::per_second(self.rate_limit).allow_burst(self.rate_burst),
            flood_clock: DefaultClock::default(),
            max_backlog: self.max_backlog,
        }
    }

    pub fn allowed_origins(&self) -> AllowedOrigins {
        AllowedOrigins::new(self.allowed_origins.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_listen_on_localhost_8080() {
        let config = Config::parse_from(["hubbub"]);
        config.validate().unwrap();
        assert_eq!(config.host.to_string(), "127.0.0.1");
        if std::env::var_os("DATABASE_URL").is_none() {
            assert_eq!(config.database_url, "sqlite:hubbub.db");
        }
        assert_eq!(config.retention, Duration::from_secs(30 * 24 * 3600));
        if std::env::var_os("PORT").is_none() {
            assert_eq!(config.port, 8080);
        }
    }

    #[test]
    fn durations_read_as_human_text() {
        let config = Config::parse_from([
            "hubbub",
            "--heartbeat-interval",
            "250ms",
            "--client-timeout",
            "1s",
        ]);
        assert_eq!(config.heartbeat_interval, Duration::from_millis(250));
        config.validate().unwrap();
    }

    #[test]
    fn a_client_timeout_shorter_than_the_heartbeat_is_refused() {
        let config = Config::parse_from([
            "hubbub",
            "--heartbeat-interval",
            "10s",
            "--client-timeout",
            "5s",
        ]);
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_database_url_of_another_kind_is_refused() {
        let config = Config::parse_from(["hubbub", "--database-url", "mysql://localhost/db"]);
        assert!(config.validate().is_err());
    }

    #[test]
    fn shared_mode_needs_postgresql_and_a_redis_url() {
        for database in ["sqlite:hubbub.db", "sqlite::memory:"] {
            let config = Config::parse_from([
                "hubbub",
                "--redis-url",
                "redis://127.0.0.1:6379/0",
                "--database-url",
                database,
            ]);
            let refusal = config.validate().unwrap_err().to_string();
            assert!(refusal.contains("postgres://"), "{refusal}");
        }
        let shared = |redis: &str| {
            Config::parse_from([
                "hubbub",
                "--redis-url",
                redis,
                "--database-url",
                "postgres://localhost/hubbub",
            ])
        };
        shared("redis://127.0.0.1:6379/0").validate().unwrap();
        assert!(shared("http://127.0.0.1:6379").validate().is_err());
    }

    #[test]
    fn a_retention_of_zero_keeps_rooms_forever() {
        assert!(Config::parse_from(["hubbub", "--retention", "0"])
            .retention
            .is_zero());
    }

    #[test]
    fn allowed_origins_are_comma_separated_and_checked() {
        let config = Config::parse_from([
            "hubbub",
            "--allowed-origins",
            "https://a.example,b.example:8443",
        ]);
        assert_eq!(config.allowed_origins.len(), 2);
        assert!(Config::try_parse_from(["hubbub", "--allowed-origins", "not a host"]).is_err());
    }
}
