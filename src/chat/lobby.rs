//! One actor per room: its members, its recent history, and the fan-out of every event.
//!
//! Seams for later: `post` is where a message would also go to storage, and `broadcast` is where a
//! cross-instance broker would publish; the rest of the lobby does not need to change for either.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::SendError;
use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler};
use bytestring::ByteString;
use indexmap::IndexMap;
use uuid::Uuid;

use super::history::{History, Since};
use super::messages::{
    ApiPost, Close, ConnId, Describe, Join, Leave, NameTaken, Post, ReadHistory, Rename, RoomEvent,
    RoomInfo, Typing,
};
use super::protocol::{ServerFrame, CLOSE_NAME_TAKEN, CLOSE_REPLACED, CLOSE_TOO_SLOW};
use super::registry::Registry;
use super::session::Session;
use crate::domain::{
    ChatMessage, DisplayName, Invalid, MessageRef, MessageText, NameKey, RoomCode, Timestamp, User,
};

/// How a room behaves; the same for every room, set from the configuration.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Messages kept for history and resume.
    pub history_size: usize,
    /// Messages in the welcome of a client that gives no `since`.
    pub history_on_join: usize,
    /// How long an empty room lives before its lobby stops and its memory is freed.
    pub idle_timeout: Duration,
}

/// Identities of members who left, kept so they can resume; bounded so a busy room cannot grow it forever.
const MAX_DEPARTED: usize = 1_024;

/// The idle check runs this many times per idle timeout, so an empty room stops within 1.25 × the timeout.
const IDLE_CHECKS_PER_TIMEOUT: u32 = 4;

pub struct Lobby {
    code: RoomCode,
    created_at: Timestamp,
    /// In join order, so member lists read the same to everyone.
    members: IndexMap<ConnId, Member>,
    /// Resume secret → identity of members whose connection has gone, oldest first.
    departed: IndexMap<String, User>,
    history: History,
    next_seq: u64,
    empty_since: Option<Instant>,
    settings: Arc<RoomSettings>,
    registry: Registry,
}

struct Member {
    user: User,
    /// Cached `user.name.key()`, compared on every join and rename.
    key: NameKey,
    resume: String,
    session: Addr<Session>,
}

impl Lobby {
    pub fn new(code: RoomCode, registry: Registry, settings: Arc<RoomSettings>) -> Self {
        Self {
            code,
            created_at: Timestamp::now(),
            members: IndexMap::new(),
            departed: IndexMap::new(),
            history: History::new(settings.history_size),
            next_seq: 1,
            empty_since: Some(Instant::now()),
            settings,
            registry,
        }
    }

    fn is_taken(&self, key: &NameKey, except: Option<ConnId>) -> bool {
        self.members
            .iter()
            .any(|(conn, member)| &member.key == key && Some(*conn) != except)
    }

    /// Sends the welcome, tells everyone else (unless this is the same person on a new socket), and adds the member.
    fn admit(&mut self, conn: ConnId, member: Member, since: Option<u64>, announce: bool) {
        let history = match since {
            Some(seq) => self.history.after(seq, self.settings.history_size),
            None => Since {
                messages: self.history.latest(self.settings.history_on_join),
                truncated: false,
            },
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
            history: history.messages,
            truncated: history.truncated,
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
        self.broadcast(&ServerFrame::Message(&message).encode(), None);
        self.history.push(message)
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
        if self
            .empty_since
            .is_some_and(|since| since.elapsed() >= self.settings.idle_timeout)
        {
            tracing::info!(room = %self.code, "room idle, closing");
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
    }
}

impl Handler<Join> for Lobby {
    type Result = ();

    fn handle(&mut self, join: Join, _ctx: &mut Context<Self>) {
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
            return self.admit(join.conn, member, join.since, false);
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
        self.admit(join.conn, member, join.since, true);
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
        })
    }
}

impl Handler<ReadHistory> for Lobby {
    type Result = actix::MessageResult<ReadHistory>;

    fn handle(&mut self, read: ReadHistory, _ctx: &mut Context<Self>) -> Self::Result {
        let since = self.history.after(read.after, read.limit);
        actix::MessageResult(since.messages.into_iter().cloned().collect())
    }
}
