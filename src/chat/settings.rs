//! How rooms and connections behave: plain values the configuration builds and the actors read.

use std::num::NonZeroUsize;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::Quota;

/// How a room behaves; the same for every room, set from the configuration.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Messages kept for history and resume.
    pub history_size: NonZeroUsize,
    /// Messages in the welcome of a client that gives no `since`.
    pub history_on_join: usize,
    /// How long an empty room lives in memory before its lobby stops; it stays in storage.
    pub idle_timeout: Duration,
    /// Members a room admits at once.
    pub max_members: usize,
    /// Rooms the server creates while this many are live.
    pub max_rooms: usize,
    /// How long someone kicked out of a room may not come back.
    pub kick_for: Duration,
}

/// How every connection behaves; set from the configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// How often the server pings; keeps proxies and tunnels from closing a quiet connection.
    pub heartbeat_interval: Duration,
    /// A client silent (no frame, no pong) for this long is disconnected.
    pub client_timeout: Duration,
    /// Sustained rate and burst of messages and renames per connection.
    pub flood: Quota,
    /// The flood limiters' clock, made once and shared: making one probes the CPU (CPUID) to pick a
    /// time source, which was 7.6 % of the server's CPU in the connect storm (scenario (e)).
    pub flood_clock: DefaultClock,
    /// Frames that may wait for a connection before it is dropped as too slow.
    pub max_backlog: usize,
}
