//! One actor per room: its members, its recent history, and the fan-out of every event.
//!
//! A message is broadcast first and handed to storage after, so storage never delays delivery.
//! `broadcast` is the seam where a cross-instance broker would publish.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::SendError;
use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseFuture,
    WrapFuture,
};
use bytestring::ByteString;
use indexmap::IndexMap;
use uuid::Uuid;

use super::history::{has_gap, History};
use super::messages::{
    ApiPost, Close, ConnId, Describe, Join, Leave, NameTaken, Post, ReadHistory, Rename, RoomEvent,
    RoomInfo, Shutdown, Typing,
};
use super::protocol::{
    ServerFrame, CLOSE_NAME_TAKEN, CLOSE_REPLACED, CLOSE_ROOM_FULL, CLOSE_SERVICE_RESTART,
    CLOSE_TOO_SLOW,
};
use super::registry::Registry;
use super::session::Session;
use crate::domain::{
    ChatMessage, DisplayName, Invalid, MessageLifetime, MessageRef, MessageText, NameKey, RoomCode,
    Timestamp, User,
};
use crate::instruments;
use crate::storage::{Keep, Storage, StorageError};

/// How a room behaves; the same for every room, set from the configuration.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Messages kept for history and resume.
    pub history_size: usize,
    /// Messages in the welcome of a client that gives no `since`.
    pub history_on_join: usize,
    /// How long an empty room lives in memory before its lobby stops; it stays in storage.
    pub idle_timeout: Duration,
    /// Members a room admits at once.
    pub max_members: usize,
    /// Rooms the server creates while this many are live.
    pub max_rooms: usize,
}

/// The most messages a reconnecting client is replayed; beyond that its welcome says `truncated`.
pub const MAX_REPLAY: usize = 1_000;

/// Identities of members who left, kept so they can resume; bounded so a busy room cannot grow it forever.
const MAX_DEPARTED: usize = 1_024;

/// The idle check runs this many times per idle timeout, so an empty room stops within 1.25 × the timeout.
const IDLE_CHECKS_PER_TIMEOUT: u32 = 4;

pub struct Lobby {
    code: RoomCode,
    created_at: Timestamp,
    /// How long messages live, in a room whose messages disappear.
    lifetime: Option<MessageLifetime>,
    /// The highest seq announced as expired.
    expired_through: u64,
    /// In join order, so member lists read the same to everyone.
    members: IndexMap<ConnId, Member>,
    /// Resume secret → identity of members whose connection has gone, oldest first.
    departed: IndexMap<String, User>,
    history: History,
    next_seq: u64,
    /// Raised by the storage writer to the highest seq it has stored (or given up on); the lobby
    /// stays in memory until it reaches `next_seq - 1`, so a room never reloads without its newest messages.
    settled: Arc<AtomicU64>,
    empty_since: Option<Instant>,
    settings: Arc<RoomSettings>,
    registry: Registry,
    storage: Storage,
    /// Looked up once: `counter!` finds its counter in the recorder's registry (hashing the key under
    /// a lock) on every call, which was 0.3 % of the server's CPU in scenario (a) at one call per message.
    received: metrics::Counter,
    delivered: metrics::Counter,
}

/// A room as it starts: new, or as storage last saw it.
pub struct RoomState {
    pub created_at: Timestamp,
    /// Its newest messages, oldest first.
    pub recent: Vec<ChatMessage>,
    pub last_seq: u64,
    pub lifetime: Option<MessageLifetime>,
}

impl RoomState {
    pub fn new(lifetime: Option<MessageLifetime>) -> Self {
        Self {
            created_at: Timestamp::now(),
            recent: Vec::new(),
            last_seq: 0,
            lifetime,
        }
    }
}

struct Member {
    user: User,
    /// Cached `user.name.key()`, compared on every join and rename.
    key: NameKey,
    resume: String,
    session: Addr<Session>,
}

impl Lobby {
    /// A lobby for a room as storage last saw it: its creation time, its newest messages and last seq.
    pub fn new(code: RoomCode, state: RoomState, registry: Registry, storage: Storage) -> Self {
        let settings = registry.settings();
        Self {
            code,
            created_at: state.created_at,
            lifetime: state.lifetime,
            members: IndexMap::new(),
            departed: IndexMap::new(),
            history: History::new(settings.history_size, state.recent),
            next_seq: state.last_seq + 1,
            settled: Arc::new(AtomicU64::new(state.last_seq)),
            expired_through: 0,
            empty_since: Some(Instant::now()),
            settings,
            registry,
            storage,
            received: metrics::counter!(instruments::MESSAGES_RECEIVED),
            delivered: metrics::counter!(instruments::MESSAGES_DELIVERED),
        }
    }

    /// Messages sent before this have expired, for a room whose messages disappear.
    fn expiry_cutoff(&self) -> Option<Timestamp> {
        self.lifetime
            .map(|lifetime| Timestamp::now().earlier_by(lifetime.duration()))
    }

    /// Drops expired messages from memory and storage and tells the room which are gone.
    fn expire(&mut self, ctx: &mut Context<Self>) {
        let Some(cutoff) = self.expiry_cutoff() else {
            return;
        };
        if let Some(through) = self.history.expire_before(cutoff) {
            self.announce_expired(through);
        }
        let (storage, code) = (self.storage.clone(), self.code.clone());
        let delete = async move { storage.expire(&code, cutoff).await };
        ctx.spawn(delete.into_actor(self).map(|deleted, lobby, _| match deleted {
            Ok(Some(through)) => lobby.announce_expired(through),
            Ok(None) => {}
            // Reads filter by age, so nothing expired is served meanwhile; the next round retries.
            Err(err) => tracing::warn!(room = %lobby.code, error = %err, "cannot delete expired messages"),
        }));
    }

    fn announce_expired(&mut self, through: u64) {
        if through > self.expired_through {
            self.expired_through = through;
            let frame = ServerFrame::Expired {
                through_seq: through,
            }
            .encode();
            self.broadcast(&frame, None);
        }
    }

    fn is_taken(&self, key: &NameKey, except: Option<ConnId>) -> bool {
        self.members
            .iter()
            .any(|(conn, member)| &member.key == key && Some(*conn) != except)
    }

    /// Sends the welcome, tells everyone else (unless this is the same person on a new socket), and adds the member.
    ///
    /// `older` holds stored messages after `since` that are no longer in memory.
    fn admit(
        &mut self,
        conn: ConnId,
        member: Member,
        since: Option<u64>,
        older: &[ChatMessage],
        announce: bool,
    ) {
        let cutoff = self.expiry_cutoff();
        let live = |message: &&ChatMessage| cutoff.is_none_or(|cutoff| message.ts >= cutoff);
        let (history, truncated): (Vec<&ChatMessage>, bool) = match since {
            None => {
                let latest = self.history.latest(self.settings.history_on_join);
                (latest.into_iter().filter(live).collect(), false)
            }
            Some(since) => {
                let all: Vec<&ChatMessage> = older
                    .iter()
                    .chain(self.history.after(since))
                    .filter(live)
                    .collect();
                let replay = all[all.len().saturating_sub(MAX_REPLAY)..].to_vec();
                // Expired messages are gone on purpose: only what is missing after them is a gap.
                let truncated =
                    has_gap(since.max(self.expired_through), &replay, self.next_seq - 1);
                (replay, truncated)
            }
        };
        let welcome = ServerFrame::Welcome {
            room: &self.code,
            you: &member.user,
            resume: &member.resume,
            members: self
                .members
                .values()
                .map(|m| &m.user)
                .chain([&member.user])
                .collect(),
            history,
            truncated,
            expire_after_seconds: self.lifetime.map(MessageLifetime::as_secs),
        }
        .encode();
        // The welcome bypasses the backlog bound: it is the first frame and the session's mailbox is empty.
        member.session.do_send(RoomEvent(welcome));
        if announce {
            let joined = ServerFrame::Joined {
                user: &member.user,
                ts: Timestamp::now(),
            };
            // Sent before the insert, so everyone but the newcomer hears it.
            self.broadcast(&joined.encode(), None);
        }
        tracing::debug!(room = %self.code, %conn, user = %member.user.id, "member joined");
        self.members.insert(conn, member);
        self.empty_since = None;
    }

    /// Admits at once when memory holds everything after `since`; otherwise reads the rest from
    /// storage first, holding the room's other events back so the welcome still comes first.
    fn admit_after_replay(
        &mut self,
        conn: ConnId,
        member: Member,
        since: Option<u64>,
        announce: bool,
        ctx: &mut Context<Self>,
    ) {
        let first_in_memory = self.history.oldest_seq().unwrap_or(self.next_seq);
        let Some(since) = since.filter(|since| since + 1 < first_in_memory) else {
            return self.admit(conn, member, since, &[], announce);
        };
        let (storage, code, cutoff) = (
            self.storage.clone(),
            self.code.clone(),
            self.expiry_cutoff(),
        );
        let read = async move {
            storage
                .messages(
                    &code,
                    (since, first_in_memory),
                    cutoff,
                    MAX_REPLAY,
                    Keep::Newest,
                )
                .await
        };
        ctx.wait(read.into_actor(self).map(move |older, lobby, _| {
            let older = older.unwrap_or_else(|err| {
                // The welcome will say `truncated`: an honest gap rather than a silent one.
                tracing::warn!(room = %lobby.code, error = %err, "cannot replay stored history");
                Vec::new()
            });
            lobby.admit(conn, member, Some(since), &older, announce);
        }));
    }

    /// Gives a message its seq, delivers it to every member, and keeps it in history.
    fn post(
        &mut self,
        from: User,
        text: MessageText,
        reference: Option<MessageRef>,
    ) -> &ChatMessage {
        let message = ChatMessage {
            id: Uuid::new_v4(),
            seq: self.next_seq,
            room: self.code.clone(),
            from,
            text,
            ts: Timestamp::now(),
            reference,
        };
        self.next_seq += 1;
        self.received.increment(1);
        self.delivered.increment(self.members.len() as u64);
        self.broadcast(&ServerFrame::Message(&message).encode(), None);
        self.storage
            .persist(message.clone(), Arc::clone(&self.settled));
        self.history
            .push(message, self.settled.load(Ordering::Acquire))
    }

    /// Sends one encoded frame to every member but `except`, evicting members whose backlog is full.
    ///
    /// The frame is encoded once by the caller and its bytes shared: a clone is a reference-count bump.
    fn broadcast(&mut self, frame: &ByteString, except: Option<ConnId>) {
        let mut too_slow = self.send_to_members(frame, except);
        // Each eviction tells the room, which may find more slow members; each is removed once.
        while let Some(conn) = too_slow.pop() {
            if let Some(member) = self.members.shift_remove(&conn) {
                tracing::info!(room = %self.code, %conn, "disconnecting a slow consumer");
                member.session.do_send(Close::new(
                    CLOSE_TOO_SLOW,
                    "too slow: the connection fell too far behind",
                ));
                let left = self.depart(member);
                too_slow.extend(self.send_to_members(&left, None));
            }
        }
    }

    /// Returns the members whose mailbox was full; they would otherwise hold an unbounded backlog.
    fn send_to_members(&self, frame: &ByteString, except: Option<ConnId>) -> Vec<ConnId> {
        let mut too_slow = Vec::new();
        for (conn, member) in &self.members {
            if Some(*conn) == except {
                continue;
            }
            // `try_send` respects the session's mailbox capacity, the per-connection backlog bound.
            // `Closed` needs nothing: that session is stopping and its `Leave` is on the way.
            if let Err(SendError::Full(_)) = member.session.try_send(RoomEvent(frame.clone())) {
                too_slow.push(*conn);
            }
        }
        too_slow
    }

    /// Remembers a departed member's identity for resume and returns the `left` frame to broadcast.
    fn depart(&mut self, member: Member) -> ByteString {
        let left = ServerFrame::Left {
            user: &member.user,
            ts: Timestamp::now(),
        }
        .encode();
        if self.departed.len() == MAX_DEPARTED {
            self.departed.shift_remove_index(0);
        }
        self.departed.insert(member.resume, member.user);
        if self.members.is_empty() {
            self.empty_since = Some(Instant::now());
        }
        left
    }

    fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = self
            .empty_since
            .is_some_and(|since| since.elapsed() >= self.settings.idle_timeout);
        let stored = self.settled.load(Ordering::Acquire) + 1 >= self.next_seq;
        if idle && stored {
            tracing::info!(room = %self.code, "room idle, unloading it from memory");
            self.registry.remove(&self.code);
            ctx.stop();
        }
    }
}

impl Actor for Lobby {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let period = self.settings.idle_timeout / IDLE_CHECKS_PER_TIMEOUT;
        ctx.run_interval(period, Self::stop_if_idle);
        if let Some(lifetime) = self.lifetime {
            // Ten checks per lifetime: a message outlives its time by at most a tenth of it (or a minute).
            let every = (lifetime.duration() / 10)
                .clamp(Duration::from_millis(100), Duration::from_secs(60));
            ctx.run_interval(every, Self::expire);
        }
    }
}

impl Handler<Join> for Lobby {
    type Result = ();

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) {
        let secret = join.resume.as_deref();
        let live = secret
            .and_then(|secret| self.members.values().position(|m| m.resume == secret))
            .and_then(|index| self.members.shift_remove_index(index));
        if let Some((_, old)) = live {
            // The same person on a new socket: swap the connection, tell no one, close the old socket.
            old.session
                .do_send(Close::new(CLOSE_REPLACED, "replaced by a newer connection"));
            let member = Member {
                session: join.session,
                ..old
            };
            return self.admit_after_replay(join.conn, member, join.since, false, ctx);
        }

        // A departed identity comes back under its own id and name; an unknown secret is a fresh join.
        let (user, resume) = match secret.and_then(|s| self.departed.shift_remove_entry(s)) {
            Some((resume, user)) => (user, resume),
            None => (
                User {
                    id: Uuid::new_v4(),
                    name: join.name,
                },
                Uuid::new_v4().simple().to_string(),
            ),
        };
        if self.members.len() >= self.settings.max_members {
            let reason = format!(
                "this room is full: it holds at most {} people",
                self.settings.max_members
            );
            return join.session.do_send(Close::new(CLOSE_ROOM_FULL, reason));
        }
        let key = user.name.key();
        if self.is_taken(&key, None) {
            let reason = format!("the name {} is already taken in this room", user.name);
            return join.session.do_send(Close::new(CLOSE_NAME_TAKEN, reason));
        }
        let member = Member {
            user,
            key,
            resume,
            session: join.session,
        };
        self.admit_after_replay(join.conn, member, join.since, true, ctx);
    }
}

impl Handler<Shutdown> for Lobby {
    type Result = ();

    /// Closes every connection without announcing leaves: everyone is leaving, and coming back.
    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) {
        for (_, member) in self.members.drain(..) {
            member
                .session
                .do_send(Close::new(CLOSE_SERVICE_RESTART, "service restart"));
        }
    }
}

impl Handler<Leave> for Lobby {
    type Result = ();

    fn handle(&mut self, leave: Leave, _ctx: &mut Context<Self>) {
        // Nothing to do when the connection was replaced by a resume or evicted as too slow.
        if let Some(member) = self.members.shift_remove(&leave.conn) {
            let left = self.depart(member);
            self.broadcast(&left, None);
        }
    }
}

impl Handler<Post> for Lobby {
    type Result = ();

    fn handle(&mut self, post: Post, _ctx: &mut Context<Self>) {
        // A post from a connection that is not a member (refused, replaced) has no one to speak for.
        if let Some(member) = self.members.get(&post.conn) {
            let from = member.user.clone();
            self.post(from, post.text, post.reference);
        }
    }
}

impl Handler<Rename> for Lobby {
    type Result = ();

    fn handle(&mut self, rename: Rename, _ctx: &mut Context<Self>) {
        let key = rename.name.key();
        let taken = self.is_taken(&key, Some(rename.conn));
        let Some(member) = self.members.get_mut(&rename.conn) else {
            return;
        };
        if taken {
            let invalid = Invalid::new(
                "name_taken",
                format!("the name {} is already taken in this room", rename.name),
            );
            return member
                .session
                .do_send(RoomEvent(ServerFrame::error(&invalid, None)));
        }
        if member.user.name == rename.name {
            return;
        }
        let old_name = std::mem::replace(&mut member.user.name, rename.name);
        member.key = key;
        let renamed = ServerFrame::Renamed {
            user: &member.user,
            old_name: &old_name,
            ts: Timestamp::now(),
        }
        .encode();
        self.broadcast(&renamed, None);
    }
}

impl Handler<Typing> for Lobby {
    type Result = ();

    fn handle(&mut self, typing: Typing, _ctx: &mut Context<Self>) {
        if let Some(member) = self.members.get(&typing.conn) {
            let frame = ServerFrame::Typing { user: &member.user }.encode();
            self.broadcast(&frame, Some(typing.conn));
        }
    }
}

impl Handler<ApiPost> for Lobby {
    type Result = Result<ChatMessage, NameTaken>;

    fn handle(&mut self, post: ApiPost, _ctx: &mut Context<Self>) -> Self::Result {
        if self.is_taken(&post.name.key(), None) {
            return Err(NameTaken(post.name));
        }
        Ok(self
            .post(api_user(&self.code, post.name), post.text, None)
            .clone())
    }
}

/// A poster without a connection gets a stable id per room and name, so a bot's messages group together.
fn api_user(room: &RoomCode, name: DisplayName) -> User {
    let seed = format!("hubbub:{room}:{}", name.key().as_str());
    User {
        id: Uuid::new_v5(&Uuid::NAMESPACE_URL, seed.as_bytes()),
        name,
    }
}

impl Handler<Describe> for Lobby {
    type Result = actix::MessageResult<Describe>;

    fn handle(&mut self, _: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(RoomInfo {
            code: self.code.clone(),
            members: self.members.values().map(|m| m.user.clone()).collect(),
            created_at: self.created_at,
            expire_after_seconds: self.lifetime.map(MessageLifetime::as_secs),
        })
    }
}

impl Handler<ReadHistory> for Lobby {
    type Result = ResponseFuture<Result<Vec<ChatMessage>, StorageError>>;

    /// Reads storage, then lays the in-memory messages over it: the newest may not be stored yet.
    fn handle(&mut self, read: ReadHistory, _ctx: &mut Context<Self>) -> Self::Result {
        let cutoff = self.expiry_cutoff();
        let in_memory: Vec<ChatMessage> = self
            .history
            .after(read.after)
            .filter(|m| m.seq < read.before && cutoff.is_none_or(|cutoff| m.ts >= cutoff))
            .cloned()
            .collect();
        let (storage, code) = (self.storage.clone(), self.code.clone());
        Box::pin(async move {
            let range = (read.after, read.before);
            let stored = storage
                .messages(&code, range, cutoff, read.limit, read.keep)
                .await?;
            let merged: BTreeMap<u64, ChatMessage> = stored
                .into_iter()
                .chain(in_memory)
                .map(|m| (m.seq, m))
                .collect();
            let all: Vec<ChatMessage> = merged.into_values().collect();
            let keep = all.len().saturating_sub(read.limit);
            Ok(match read.keep {
                Keep::Oldest => all.into_iter().take(read.limit).collect(),
                Keep::Newest => all.into_iter().skip(keep).collect(),
            })
        })
    }
}
