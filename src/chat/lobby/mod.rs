//! One actor per room: it owns the room's state, its timers and its storage futures, and nothing else.
//!
//! A command changes the pure [`Room`]; what happened is published to the broker and fanned out to
//! the members connected here, as is whatever the broker delivers from the room's other lobbies. A
//! message is published first and handed to storage after, so storage never delays delivery.
//!
//! In shared mode ([`shared`]) storage numbers messages instead, before anyone hears of them, and
//! presence in Redis decides names and membership across instances.

mod moderation;
mod shared;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFuture, ActorFutureExt, Addr, AsyncContext, Context, Handler,
    Message, ResponseActFuture, ResponseFuture, WeakAddr, WrapFuture,
};

use super::fanout::{Due, Fanout, PRESENCE_WINDOW};
use super::history::Stored;
use super::ids::{ConnId, ResumeSecret};
use super::messages::{
    ApiPost, Close, Describe, Join, Leave, Outbox, Post, PostError, ReadHistory, Rename, Shutdown,
    ToSession, Typing,
};
use super::ordering::Reorder;
use super::protocol::{error_frame, welcome_frame, CloseCode};
use super::room::{Arrival, Refusal, Room, RoomState, MAX_REPLAY};
use super::settings::RoomSettings;
use crate::accounts::Hasher;
use crate::broker::{Broker, Channel, Delivery, Presence};
use crate::domain::{
    ChatMessage, DisplayName, ErrorCode, Invalid, RoomCode, RoomEvent, Timestamp, User, UserId,
};
use crate::instruments;
use crate::storage::{Keep, Storage, StorageError};

/// The idle check runs this many times per idle timeout, so an empty room stops within 1.25 × the timeout.
const IDLE_CHECKS_PER_TIMEOUT: u32 = 4;

/// Called once, as an idle lobby stops, to take it out of the rooms in memory.
pub type Unload = Box<dyn FnOnce()>;

/// What a lobby needs besides its room: where it stores, where it publishes, how it leaves.
pub struct Wiring {
    pub settings: Arc<RoomSettings>,
    pub storage: Storage,
    pub broker: Broker,
    /// Hashes a room password a moderator sets, off the lobby's thread.
    pub hasher: Hasher,
    pub unload: Unload,
}

pub struct Lobby {
    room: Room,
    fanout: Fanout,
    /// Where this lobby sends itself a [`Flush`]; weak, so it does not keep its own mailbox open.
    me: WeakAddr<Self>,
    channel: Channel,
    /// Raised by the storage writer to the highest seq it has stored (or given up on); the lobby
    /// stays in memory until it reaches the last seq, so a room never reloads without its newest messages.
    settled: Arc<AtomicU64>,
    empty_since: Option<Instant>,
    settings: Arc<RoomSettings>,
    unload: Option<Unload>,
    storage: Storage,
    hasher: Hasher,
    /// Shared mode's presence of this room across instances; `None` in one process.
    presence: Option<Presence>,
    /// Shared mode: messages that arrived ahead of a hole in their seqs.
    reorder: Reorder,
    /// Shared mode: a read from storage is filling a hole or catching up.
    catching_up: bool,
    /// Shared mode: a check against presence and storage is under way.
    checking: bool,
    /// Shared mode: the room's members on other instances have been read from presence once.
    placed: bool,
    /// Looked up once: `counter!` finds its counter in the recorder's registry (hashing the key under
    /// a lock) on every call, which was 0.3 % of the server's CPU in scenario (a) at one call per message.
    received: metrics::Counter,
    delivered: metrics::Counter,
}

impl Lobby {
    /// Starts the lobby of a room as storage last saw it, subscribed to the room's events.
    pub fn start(code: RoomCode, state: RoomState, wiring: Wiring) -> Addr<Self> {
        Lobby::create(move |ctx| {
            let channel = wiring.broker.subscribe(&code, ctx.address().recipient());
            Self {
                presence: channel.presence(),
                reorder: Reorder::default(),
                catching_up: false,
                checking: false,
                placed: false,
                settled: Arc::new(AtomicU64::new(state.last_seq)),
                room: Room::new(code, state, &wiring.settings),
                fanout: Fanout::default(),
                me: ctx.address().downgrade(),
                channel,
                empty_since: Some(Instant::now()),
                settings: wiring.settings,
                unload: Some(wiring.unload),
                storage: wiring.storage,
                hasher: wiring.hasher,
                received: metrics::counter!(instruments::MESSAGES_RECEIVED),
                delivered: metrics::counter!(instruments::MESSAGES_DELIVERED),
            }
        })
    }

    /// Sends an event of this room to its other lobbies and to the members here.
    fn publish(&mut self, event: RoomEvent) {
        let own = self.channel.publish(event);
        self.fan_out(own);
    }

    /// Tells every member here about `event`, in one envelope with the rest of this turn's events
    /// (presence alone: of a short window's).
    fn fan_out(&mut self, event: RoomEvent) {
        match self.fanout.deliver(&event) {
            // Behind the messages already in the mailbox, so the turn's events go out together.
            Some(Due::Now) => {
                if let Some(me) = self.me.upgrade() {
                    me.do_send(Flush);
                }
            }
            Some(Due::Soon) => {
                let me = self.me.clone();
                actix::spawn(async move {
                    actix::clock::sleep(PRESENCE_WINDOW).await;
                    if let Some(me) = me.upgrade() {
                        me.do_send(Flush);
                    }
                });
            }
            None => {}
        }
    }

    /// Sends the events waiting in the fan-out. A member too slow to take them is evicted, and its
    /// `left` goes out the same way, which may find more slow members; each goes once.
    fn flush(&mut self) {
        loop {
            let delivered = self.fanout.flush();
            self.delivered.increment(delivered.messages);
            if delivered.too_slow.is_empty() {
                return;
            }
            for (conn, session) in delivered.too_slow {
                tracing::info!(room = %self.room.code(), %conn, "disconnecting a slow consumer");
                session.do_send(ToSession::Close(Close::new(
                    CloseCode::TooSlow,
                    "too slow: the connection fell too far behind",
                )));
                if let Some(left) = self.depart(conn) {
                    // Sent by the next round of this loop.
                    self.fanout.deliver(&left);
                }
            }
        }
    }

    /// Holds the room's other messages back until `work` is done, having sent the events already
    /// delivered: a read from storage should not delay them.
    fn hold_back(
        &mut self,
        work: impl ActorFuture<Self, Output = ()> + 'static,
        ctx: &mut Context<Self>,
    ) {
        self.flush();
        ctx.wait(work);
    }

    /// Admits a newcomer or a returning member, or tells them why not. Answers who came in, under
    /// which secret, for shared mode's presence.
    fn admit(
        &mut self,
        arrival: Arrival,
        outbox: Outbox,
        older: Stored<'_>,
    ) -> Option<(User, ResumeSecret)> {
        let conn = arrival.conn;
        let admission = match self.room.join(arrival, older, Timestamp::now()) {
            Ok(admission) => admission,
            Err(refusal) => {
                let code = match refusal {
                    Refusal::RoomFull(_) => CloseCode::RoomFull,
                    Refusal::Kicked(_) | Refusal::Banned => CloseCode::Kicked,
                    Refusal::Locked => CloseCode::Locked,
                    Refusal::PasswordRequired | Refusal::PassRefused => CloseCode::PasswordRequired,
                    Refusal::AccountsOnly => CloseCode::SignedOut,
                    _ => CloseCode::NameTaken,
                };
                outbox
                    .session
                    .do_send(ToSession::Close(Close::new(code, refusal.to_string())));
                return None;
            }
        };
        // The welcome bypasses the backlog bound: it is the first frame and the session's mailbox is empty.
        outbox
            .session
            .do_send(ToSession::Frame(welcome_frame(&admission.welcome)));
        let admitted = (
            admission.welcome.you.clone(),
            admission.welcome.resume.clone(),
        );
        let user = admitted.0.id;
        let (joined, replaced, renamed) = (admission.joined, admission.replaced, admission.renamed);
        if let Some(old) = replaced {
            self.close_replaced(old);
        }
        self.publish_renamed(renamed);
        if let Some(joined) = joined.and_then(|joined| self.publish_membership(joined)) {
            self.fan_out(joined);
        }
        // Added after its own `joined` went out, so everyone but the newcomer hears it; the welcome
        // covered everything before.
        self.fanout.add(conn, outbox, user);
        self.empty_since = None;
        tracing::debug!(room = %self.room.code(), %conn, %user, "member joined");
        Some(admitted)
    }

    /// Publishes the renames of guests who made way for an account; in shared mode, presence
    /// gives each guest's name up for the new one.
    fn publish_renamed(&mut self, renamed: Vec<RoomEvent>) {
        for renamed in renamed {
            if let (RoomEvent::Renamed { user, old_name, .. }, Some(presence)) =
                (&renamed, &self.presence)
            {
                let since = self.room.local_members().find(|m| m.user.id == user.id);
                let since = since.map_or_else(Timestamp::now, |m| m.since);
                shared::reclaim(
                    presence,
                    presence.entry(user.clone(), since),
                    old_name.key(),
                );
            }
            self.publish(renamed);
        }
    }

    /// Admits, and in shared mode tells presence who the secret stands for.
    fn admitted(
        &mut self,
        arrival: Arrival,
        outbox: Outbox,
        older: Stored<'_>,
        claimed: Option<User>,
    ) {
        let admitted = self.admit(arrival, outbox, older);
        self.remember_admitted(admitted, claimed);
    }

    /// Closes a connection whose identity a newer connection took over, here or on another
    /// instance; the room has already let it go.
    fn close_replaced(&mut self, conn: ConnId) {
        if let Some(old) = self.fanout.remove(conn) {
            old.do_send(ToSession::Close(Close::new(
                CloseCode::Replaced,
                "replaced by a newer connection",
            )));
        }
        self.note_if_empty();
    }

    /// Starts the idle clock when the last member connected here has gone.
    fn note_if_empty(&mut self) {
        if self.room.is_empty() && self.empty_since.is_none() {
            self.empty_since = Some(Instant::now());
        }
    }

    /// A member is gone: closed, or evicted as too slow. Publishes their `left`, once, and
    /// returns it for the members here to hear.
    fn depart(&mut self, conn: ConnId) -> Option<RoomEvent> {
        self.fanout.remove(conn);
        let left = self.room.depart(conn, Timestamp::now());
        self.note_if_empty();
        let left = left?;
        if let (RoomEvent::Left { user, .. }, Some(presence)) = (&left, &self.presence) {
            shared::forget(presence, user.clone(), presence.instance().clone());
        }
        self.publish_membership(left)
    }

    /// Publishes a member's `joined` or `left` to the room's other lobbies, and returns it for the
    /// members here unless it is no news to them: the account is in the room on another instance
    /// as well, and was listed all along.
    fn publish_membership(&mut self, event: RoomEvent) -> Option<RoomEvent> {
        let event = self.channel.publish(event);
        match &event {
            RoomEvent::Joined { user, .. } | RoomEvent::Left { user, .. }
                if self.room.is_elsewhere(user) =>
            {
                None
            }
            _ => Some(event),
        }
    }

    /// Publishes a message and hands it to storage.
    fn announce(&mut self, message: ChatMessage) {
        self.received.increment(1);
        self.publish(RoomEvent::Message(message.clone()));
        self.storage.persist(message, Arc::clone(&self.settled));
    }

    /// Drops expired messages from memory and storage and tells the room which are gone.
    fn expire(&mut self, ctx: &mut Context<Self>) {
        let now = Timestamp::now();
        let Some(cutoff) = self.room.expiry_cutoff(now) else {
            return;
        };
        if let Some(expired) = self.room.expire(now) {
            self.publish(expired);
        }
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let delete = async move { storage.expire(&code, cutoff).await };
        ctx.spawn(delete.into_actor(self).map(|deleted, lobby, _| match deleted {
            Ok(Some(through)) => {
                if let Some(expired) = lobby.room.expired(through) {
                    lobby.publish(expired);
                }
            }
            Ok(None) => {}
            // Reads filter by age, so nothing expired is served meanwhile; the next round retries.
            Err(err) => tracing::warn!(room = %lobby.room.code(), error = %err, "cannot delete expired messages"),
        }));
    }

    /// Queues the record that this room closed cleanly, numbered through its last seq, so the next
    /// process to open it carries on from there. Shared mode's numbering is the database's own.
    fn close_in_storage(&self) {
        if self.presence.is_none() {
            self.storage
                .close_room(self.room.code().clone(), self.room.last_seq());
        }
    }

    fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = self
            .empty_since
            .is_some_and(|since| since.elapsed() >= self.settings.idle_timeout);
        let stored = self.settled.load(Ordering::Acquire) >= self.room.last_seq();
        if idle && stored {
            tracing::info!(room = %self.room.code(), "room idle, unloading it from memory");
            self.close_in_storage();
            if let Some(unload) = self.unload.take() {
                unload();
            }
            ctx.stop();
        }
    }
}

impl Actor for Lobby {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let period = self.settings.idle_timeout / IDLE_CHECKS_PER_TIMEOUT;
        ctx.run_interval(period, Self::stop_if_idle);
        if let Some(lifetime) = self.room.lifetime() {
            // Ten checks per lifetime: a message outlives its time by at most a tenth of it (or a minute).
            let every = (lifetime.duration() / 10)
                .clamp(Duration::from_millis(100), Duration::from_secs(60));
            ctx.run_interval(every, Self::expire);
        }
    }
}

/// The end of a lobby's turn: what its handlers delivered goes to the members.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for Lobby {
    type Result = ();

    fn handle(&mut self, _: Flush, _ctx: &mut Context<Self>) {
        self.flush();
    }
}

impl Handler<Delivery> for Lobby {
    type Result = ();

    /// An event from another lobby of this room, which every member here hears, or (shared mode)
    /// a reminder to check the room against presence and storage.
    fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        match delivery {
            Delivery::Event { from, event } => self.receive(from, event, ctx),
            Delivery::Check(live) => self.check(live, ctx),
        }
    }
}

impl Handler<Join> for Lobby {
    type Result = ();

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) {
        let arrival = Arrival {
            conn: join.conn,
            name: join.name,
            // An account's identity is its session, never a secret.
            resume: join.resume.filter(|_| join.account.is_none()),
            since: join.since,
            known: None,
            fresh_id: join.account.unwrap_or_else(UserId::random),
            account: join.account.is_some(),
            address: join.address,
            pass: join.pass,
        };
        let outbox = join.outbox;
        if let Some(presence) = self.presence.clone() {
            return self.join_shared(arrival, outbox, presence, ctx);
        }
        self.replay_and_admit(arrival, outbox, None, ctx);
    }
}

impl Lobby {
    /// Admits at once when memory holds everything after `since`; otherwise reads the rest from
    /// storage first, holding the room's other events back so the welcome still comes first.
    /// `claimed` is the identity shared mode's presence admitted, given back if the room refuses.
    fn replay_and_admit(
        &mut self,
        arrival: Arrival,
        outbox: Outbox,
        claimed: Option<User>,
        ctx: &mut Context<Self>,
    ) {
        let Some(range) = self.room.replay_from_storage(arrival.since) else {
            return self.admitted(arrival, outbox, Stored::NOTHING, claimed);
        };
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let cutoff = self.room.expiry_cutoff(Timestamp::now());
        let read = async move {
            let messages = storage
                .messages(&code, range, cutoff, MAX_REPLAY, Keep::Newest)
                .await?;
            let deleted = storage.deleted(&code, range).await?;
            Ok::<_, StorageError>((messages, deleted))
        };
        let admit = read.into_actor(self).map(move |older, lobby, _| {
            let (messages, deleted) = older.unwrap_or_else(|err| {
                // The welcome will say `truncated`: an honest gap rather than a silent one.
                tracing::warn!(room = %lobby.room.code(), error = %err, "cannot replay stored history");
                (Vec::new(), Vec::new())
            });
            let older = Stored {
                messages: &messages,
                deleted: &deleted,
            };
            lobby.admitted(arrival, outbox, older, claimed);
        });
        self.hold_back(admit, ctx);
    }
}

impl Handler<Shutdown> for Lobby {
    type Result = ();

    /// Closes every connection without announcing leaves: everyone is leaving, and coming back.
    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) {
        self.close_in_storage();
        self.room.close();
        for session in self.fanout.drain() {
            session.do_send(ToSession::Close(Close::new(
                CloseCode::ServiceRestart,
                "service restart",
            )));
        }
    }
}

impl Handler<Leave> for Lobby {
    type Result = ();

    fn handle(&mut self, leave: Leave, _ctx: &mut Context<Self>) {
        if let Some(left) = self.depart(leave.conn) {
            self.fan_out(left);
        }
    }
}

impl Handler<Post> for Lobby {
    type Result = ();

    fn handle(&mut self, post: Post, ctx: &mut Context<Self>) {
        if self.room.is_muted(post.conn) {
            let invalid = Invalid::new(
                ErrorCode::Muted,
                "a moderator has muted you: your messages are not delivered",
            );
            let reference = post.reference.as_ref().map(|r| r.as_str());
            let frame = error_frame(&invalid, reference);
            return self.fanout.tell(post.conn, ToSession::Frame(frame));
        }
        if self.presence.is_some() {
            return self.post_shared(post.conn, post.text, post.reference, ctx);
        }
        let stored = self.settled.load(Ordering::Acquire);
        // A post from a connection that is not a member (refused, replaced) has no one to speak for.
        if let Some(message) = self.room.post(
            post.conn,
            post.text,
            post.reference,
            Timestamp::now(),
            stored,
        ) {
            let message = message.clone();
            self.announce(message);
        }
    }
}

impl Handler<Rename> for Lobby {
    type Result = ();

    fn handle(&mut self, rename: Rename, ctx: &mut Context<Self>) {
        match self.presence.clone() {
            Some(presence) => self.rename_shared(rename.conn, rename.name, presence, ctx),
            None => self.rename_here(rename.conn, rename.name),
        }
    }
}

impl Lobby {
    /// Renames a member as far as this room knows, or tells them why not.
    fn rename_here(&mut self, conn: ConnId, name: DisplayName) {
        match self.room.rename(conn, name, Timestamp::now()) {
            Ok(Some(renamed)) => {
                // Shared mode: a resume on another instance comes back under the new name.
                if let (RoomEvent::Renamed { user, .. }, Some(_)) = (&renamed, &self.presence) {
                    let member = self.room.local_members().find(|m| m.conn == conn);
                    let identity = member.map(|m| (user.clone(), m.resume.clone()));
                    self.remember_admitted(identity, None);
                }
                self.publish(renamed);
            }
            Ok(None) => {}
            Err(refusal) => {
                let code = match refusal {
                    Refusal::NameLocked => ErrorCode::NameLocked,
                    _ => ErrorCode::NameTaken,
                };
                let invalid = Invalid::new(code, refusal.to_string());
                self.fanout
                    .tell(conn, ToSession::Frame(error_frame(&invalid, None)));
            }
        }
    }
}

impl Handler<Typing> for Lobby {
    type Result = ();

    fn handle(&mut self, typing: Typing, _ctx: &mut Context<Self>) {
        if let Some(typing) = self.room.typing(typing.conn) {
            self.publish(typing);
        }
    }
}

impl Handler<ApiPost> for Lobby {
    type Result = ResponseActFuture<Self, Result<ChatMessage, PostError>>;

    fn handle(&mut self, post: ApiPost, _ctx: &mut Context<Self>) -> Self::Result {
        let now = Timestamp::now();
        if self.presence.is_none() {
            let stored = self.settled.load(Ordering::Acquire);
            let posted = self
                .room
                .post_as(post.name, post.text, now, stored)
                .cloned()
                .map_err(PostError::from);
            if let Ok(message) = &posted {
                self.announce(message.clone());
            }
            return Box::pin(actix::fut::ready(posted));
        }
        let draft = match self.room.draft_as(post.name, post.text, now) {
            Ok(draft) => draft,
            Err(refusal) => return Box::pin(actix::fut::ready(Err(refusal.into()))),
        };
        let storage = self.storage.clone();
        let append = async move { storage.append(draft).await };
        Box::pin(append.into_actor(self).map(|appended, lobby, ctx| {
            let message = appended?;
            lobby.announce_numbered(message.clone(), ctx);
            Ok(message)
        }))
    }
}

impl Handler<Describe> for Lobby {
    type Result = actix::MessageResult<Describe>;

    fn handle(&mut self, _: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.room.describe())
    }
}

impl Handler<ReadHistory> for Lobby {
    type Result = ResponseFuture<Result<Vec<ChatMessage>, StorageError>>;

    /// Reads storage, then lays the in-memory messages over it: the newest may not be stored yet.
    fn handle(&mut self, read: ReadHistory, _ctx: &mut Context<Self>) -> Self::Result {
        let now = Timestamp::now();
        let cutoff = self.room.expiry_cutoff(now);
        let in_memory = self.room.in_memory(read.after, read.before, now);
        let deleted = self.room.deleted_between(read.after, read.before);
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        Box::pin(async move {
            let range = (read.after, read.before);
            let stored = storage
                .messages(&code, range, cutoff, read.limit, read.keep)
                .await?;
            let merged: BTreeMap<u64, ChatMessage> = stored
                .into_iter()
                .filter(|m| deleted.binary_search(&m.seq).is_err())
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
