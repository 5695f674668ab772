//! One room's state as a plain value: who is in it, who may come back, what was said, what expired.
//!
//! No actor, no socket, no clock: each command is handed the time it needs and returns what happened
//! as typed [`RoomEvent`]s, or a [`Refusal`] that changed nothing. The lobby actor wraps it.

use std::collections::HashMap;
use std::net::IpAddr;

use indexmap::IndexMap;
use serde::Serialize;

use super::history::{has_gap, History, Stored};
use super::ids::{ConnId, ResumeSecret};
use super::moderation::{Authority, Claim};
use super::settings::RoomSettings;
use crate::domain::{
    AccountKey, Ban, ChatMessage, DisplayName, InstanceId, MessageLifetime, MessageRef,
    MessageText, NameKey, Ownership, PasswordHash, Role, RoomCode, RoomEvent, RoomRules, Rule,
    Sanction, Timestamp, TokenDigest, User, UserId, MAX_NAME_CHARS,
};

/// The most messages a reconnecting client is replayed; beyond that its welcome says `truncated`.
pub const MAX_REPLAY: usize = 1_000;

/// Identities of members who left, kept so they can resume; bounded so a busy room cannot grow it forever.
const MAX_DEPARTED: usize = 1_024;

pub struct Room {
    code: RoomCode,
    created_at: Timestamp,
    /// How long messages live, in a room whose messages disappear.
    lifetime: Option<MessageLifetime>,
    /// The highest seq announced as expired.
    expired_through: u64,
    /// In join order, so member lists read the same to everyone. Keyed by the member's first
    /// connection; an account's other devices are its `companions`.
    members: IndexMap<ConnId, Member>,
    /// The further connections of an account member (one person on several devices) → the
    /// connection its entry in `members` is keyed by.
    companions: HashMap<ConnId, ConnId>,
    /// Members connected to the room's other instances (shared mode), as presence last said.
    remote: IndexMap<UserId, RemoteMember>,
    /// Resume secret → identity of members whose connection has gone, oldest first.
    departed: IndexMap<ResumeSecret, User>,
    history: History,
    next_seq: u64,
    history_on_join: usize,
    max_members: usize,
    authority: Authority,
    /// Accounts that have been members here, who count as coming back to a locked room.
    been_here: indexmap::IndexSet<UserId>,
}

struct Member {
    user: User,
    /// Cached `user.name.key()`, compared on every join and rename.
    key: NameKey,
    resume: ResumeSecret,
    /// When they joined here: presence settles a name two instances gave out apart by it.
    since: Timestamp,
    /// Where their connection comes from, for a ban to cover.
    address: Option<IpAddr>,
    /// The other instances this account is also connected to (shared mode): one person on
    /// devices served by several instances is one member.
    elsewhere: Vec<Sighting>,
}

impl Member {
    fn new(user: User, key: NameKey, resume: ResumeSecret, door: &Door<'_>) -> Self {
        Self {
            user,
            key,
            resume,
            since: door.now,
            address: door.address,
            elsewhere: Vec::new(),
        }
    }
}

/// How someone comes in: on which connection, having seen what, with what storage had of it, when.
struct Door<'a> {
    conn: ConnId,
    since: Option<u64>,
    older: Stored<'a>,
    now: Timestamp,
    address: Option<IpAddr>,
}

impl<'a> Door<'a> {
    fn of(arrival: &Arrival, older: Stored<'a>, now: Timestamp) -> Self {
        Self {
            conn: arrival.conn,
            since: arrival.since,
            older,
            now,
            address: arrival.address,
        }
    }
}

/// What a join did beside the welcome; see [`Admission`].
#[derive(Default)]
struct Effects {
    joined: Option<RoomEvent>,
    replaced: Option<ConnId>,
    renamed: Vec<RoomEvent>,
}

/// A member connected to other instances of the room, and not to this one.
struct RemoteMember {
    user: User,
    key: NameKey,
    /// One instance for a guest; an account may be on several.
    on: Vec<Sighting>,
}

/// An instance a member is connected to, as presence said.
struct Sighting {
    instance: InstanceId,
    /// When this room last heard of them there: a presence read begun before that does not know
    /// them yet.
    seen: Timestamp,
}

/// Records that a member is on `instance`, as of `now`.
fn sight(sightings: &mut Vec<Sighting>, instance: InstanceId, now: Timestamp) {
    match sightings.iter_mut().find(|s| s.instance == instance) {
        Some(sighting) => sighting.seen = now,
        None => sightings.push(Sighting {
            instance,
            seen: now,
        }),
    }
}

/// Forgets that a member is on `instance`; `false` if the room did not have them there.
fn unsight(sightings: &mut Vec<Sighting>, instance: &InstanceId) -> bool {
    let before = sightings.len();
    sightings.retain(|s| s.instance != *instance);
    sightings.len() < before
}

/// A room as it starts: new, or as storage last saw it.
pub struct RoomState {
    pub created_at: Timestamp,
    /// Its newest messages, oldest first.
    pub recent: Vec<ChatMessage>,
    /// The seqs of deleted messages among and after `recent`'s, which replays skip.
    pub deleted: Vec<u64>,
    pub last_seq: u64,
    pub lifetime: Option<MessageLifetime>,
    pub ownership: Ownership,
}

/// Someone asking to become a member.
pub struct Arrival {
    pub conn: ConnId,
    pub name: DisplayName,
    /// The secret from an earlier welcome, to come back as that identity.
    pub resume: Option<ResumeSecret>,
    /// The last seq the client saw; the welcome then holds everything after it.
    pub since: Option<u64>,
    /// The identity another instance gave `resume` (shared mode), if this room does not know it.
    pub known: Option<User>,
    /// The id a newcomer gets: chosen before the join, so presence can claim the name for it first.
    /// For an account, the account's id.
    pub fresh_id: UserId,
    /// Signed in: `fresh_id` and `name` are the account's, and `resume` is not looked at, since
    /// the session cookie is the identity.
    pub account: bool,
    /// Where the connection comes from, which a guest's ban also covers.
    pub address: Option<IpAddr>,
    /// A pass into a room with a password (from `POST /api/rooms/{code}/pass`).
    pub pass: Option<String>,
}

/// What a join did.
pub struct Admission<'a> {
    pub welcome: Welcome<'a>,
    /// Announced to the others; `None` when the same person took over their own live connection.
    pub joined: Option<RoomEvent>,
    /// The connection this one took over, to be closed.
    pub replaced: Option<ConnId>,
    /// Guests renamed to make way for the account holder whose name they had, announced first.
    pub renamed: Vec<RoomEvent>,
}

/// The first thing a member is told: who they are, who is here, and what they missed.
pub struct Welcome<'a> {
    pub room: &'a RoomCode,
    pub you: &'a User,
    pub resume: &'a ResumeSecret,
    /// Everyone in the room, the newcomer last.
    pub members: Vec<&'a User>,
    pub history: Vec<&'a ChatMessage>,
    /// True when some messages after the requested `since` are not included.
    pub truncated: bool,
    pub expire_after_seconds: Option<u64>,
    pub role: Role,
    /// The members ranked above member.
    pub ranked: Vec<(UserId, Role)>,
    /// The members who are muted.
    pub muted: Vec<UserId>,
    pub rules: RoomRules,
}

/// Why the room said no. A refusal changes nothing: the identity a join tried to resume stays resumable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this room is full: it holds at most {0} people")]
    RoomFull(usize),
    #[error("the name {0} is already taken in this room")]
    NameTaken(DisplayName),
    #[error("a signed-in member goes by their username; change it in the account")]
    NameLocked,
    #[error("you were sent out of this room; you may come back after {0}")]
    Kicked(Timestamp),
    #[error("you are banned from this room")]
    Banned,
    #[error("nobody with that id is banned here")]
    NotBanned,
    #[error("this room has a password: get a pass with it to join")]
    PasswordRequired,
    #[error("that pass is not this room's, or it has expired: get a new one")]
    PassRefused,
    #[error("this room is locked: nobody new may join")]
    Locked,
    #[error("this room admits only signed-in members: sign in to join")]
    AccountsOnly,
    #[error("only someone who outranks them may do that")]
    Forbidden,
    #[error("that owner token is not this room's")]
    NotTheOwnerToken,
    #[error("nobody with that id is in this room")]
    NotInRoom,
    #[error("only signed-in members can be moderators")]
    GuestsCannotModerate,
    #[error("no message with that seq is among the room's recent messages")]
    NoSuchMessage,
    #[error("only its author may edit a message")]
    NotYourMessage,
    #[error("only its author, or a moderator who outranks them, may delete a message")]
    NotYoursToDelete,
}

/// A room as the API describes it.
#[derive(Debug, Serialize)]
pub struct RoomInfo {
    pub code: RoomCode,
    pub members: Vec<User>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after_seconds: Option<u64>,
}

impl Room {
    pub fn new(code: RoomCode, state: RoomState, settings: &RoomSettings) -> Self {
        Self {
            code,
            created_at: state.created_at,
            lifetime: state.lifetime,
            authority: Authority::new(state.ownership),
            been_here: indexmap::IndexSet::new(),
            expired_through: 0,
            members: IndexMap::new(),
            companions: HashMap::new(),
            remote: IndexMap::new(),
            departed: IndexMap::new(),
            history: History::new(settings.history_size, state.recent, state.deleted),
            next_seq: state.last_seq + 1,
            history_on_join: settings.history_on_join,
            max_members: settings.max_members,
        }
    }

    pub fn code(&self) -> &RoomCode {
        &self.code
    }

    pub fn lifetime(&self) -> Option<MessageLifetime> {
        self.lifetime
    }

    /// The seq of the newest message, 0 before the first.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// No member is connected here (members on other instances do not keep a lobby in memory).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Messages sent before this have expired, for a room whose messages disappear.
    pub fn expiry_cutoff(&self, now: Timestamp) -> Option<Timestamp> {
        self.lifetime
            .map(|lifetime| now.earlier_by(lifetime.duration()))
    }

    /// The seqs `(after, before)` a join with `since` needs from storage: those no longer in memory.
    pub fn replay_from_storage(&self, since: Option<u64>) -> Option<(u64, u64)> {
        let first_in_memory = self.history.oldest_seq().unwrap_or(self.next_seq);
        since
            .filter(|since| since + 1 < first_in_memory)
            .map(|since| (since, first_in_memory))
    }

    /// Admits someone, new or coming back; `older` holds what storage had of `replay_from_storage`.
    ///
    /// Everything that can refuse is checked before anything changes.
    pub fn join<'a>(
        &'a mut self,
        arrival: Arrival,
        older: Stored<'a>,
        now: Timestamp,
    ) -> Result<Admission<'a>, Refusal> {
        if arrival.account {
            return self.join_account(arrival, older, now);
        }
        // A guest never resumes an account's identity: only its session cookie stands for it.
        let mut arrival = arrival;
        arrival.known = arrival.known.filter(|user| !user.account);
        let door = Door::of(&arrival, older, now);
        let live = arrival.resume.as_ref().and_then(|secret| {
            self.members
                .values()
                .position(|m| &m.resume == secret && !m.user.account)
        });
        if let Some(index) = live {
            // The same person on a new socket: swap the connection and tell no one.
            let (old, member) = self
                .members
                .shift_remove_index(index)
                .expect("the index was just found");
            self.members.insert(arrival.conn, member);
            let effects = Effects {
                replaced: Some(old),
                ..Effects::default()
            };
            return Ok(self.admitted(door, effects));
        }

        // A departed identity comes back under its own id and name, here or (shared mode) from
        // another instance; an unknown secret is a fresh join.
        if self.authority.rules().accounts_only {
            return Err(Refusal::AccountsOnly);
        }
        let returning = self.returning(&arrival);
        let id = returning.map_or(arrival.fresh_id, |user| user.id);
        if self.authority.is_banned(id, false, arrival.address) {
            return Err(Refusal::Banned);
        }
        if let Some(until) = returning.and_then(|user| self.authority.kicked_until(user.id, now)) {
            return Err(Refusal::Kicked(until));
        }
        if returning.is_none() && self.authority.rules().locked {
            return Err(Refusal::Locked);
        }
        if returning.is_none() {
            self.check_pass(arrival.pass.as_deref(), now)?;
        }
        let name = returning.map_or(&arrival.name, |user| &user.name);
        // Someone connected elsewhere who moves here is no newcomer to the room's count.
        let moving = returning.is_some_and(|user| self.remote.contains_key(&user.id));
        if !moving && self.member_count() >= self.max_members {
            return Err(Refusal::RoomFull(self.max_members));
        }
        let key = name.key();
        if self.is_taken(&key, None, returning.map(|user| user.id)) {
            return Err(Refusal::NameTaken(name.clone()));
        }
        let resumed = arrival.resume.and_then(|secret| {
            let user = self.departed.shift_remove(&secret).or(arrival.known)?;
            Some((secret, user))
        });
        let (resume, user) = resumed.unwrap_or_else(|| {
            (
                ResumeSecret::generate(),
                User::guest(arrival.fresh_id, arrival.name),
            )
        });
        let member = Member::new(user, key, resume, &door);
        Ok(self.enter(door, member, Vec::new()))
    }

    /// Admits a signed-in member: a further device of someone here already, or a newcomer for
    /// whom any guest here by that name (or one that looks like it) is renamed `name-guest`.
    fn join_account<'a>(
        &'a mut self,
        arrival: Arrival,
        older: Stored<'a>,
        now: Timestamp,
    ) -> Result<Admission<'a>, Refusal> {
        let door = Door::of(&arrival, older, now);
        let user = User {
            id: arrival.fresh_id,
            name: arrival.name,
            account: true,
        };
        if self.authority.is_banned(user.id, true, None) {
            return Err(Refusal::Banned);
        }
        if let Some(until) = self.authority.kicked_until(user.id, now) {
            return Err(Refusal::Kicked(until));
        }
        if let Some(first) = self.conn_of(user.id) {
            self.companions.insert(arrival.conn, first);
            return Ok(self.admitted(door, Effects::default()));
        }
        let moving = self.remote.contains_key(&user.id);
        let returning = moving || self.been_here.contains(&user.id);
        let newcomer = !returning && self.authority.role_of(&user).is_member();
        if self.authority.rules().locked && newcomer {
            return Err(Refusal::Locked);
        }
        if newcomer {
            self.check_pass(arrival.pass.as_deref(), now)?;
        }
        if !moving && self.member_count() >= self.max_members {
            return Err(Refusal::RoomFull(self.max_members));
        }
        let key = user.name.key();
        let account_key = AccountKey::of(user.name.as_str());
        let clashes = |name: &DisplayName, name_key: &NameKey| {
            name_key == &key || AccountKey::of(name.as_str()) == account_key
        };
        // Another account by that name elsewhere (shared mode) is no guest to rename. A guest on
        // another instance is renamed there, when it hears this account joined.
        if self
            .remote
            .values()
            .any(|m| m.user.account && m.user.id != user.id && clashes(&m.user.name, &m.key))
        {
            return Err(Refusal::NameTaken(user.name));
        }
        let renamed = self.make_way_for(&user, now);
        if self.been_here.len() == MAX_DEPARTED {
            self.been_here.shift_remove_index(0);
        }
        self.been_here.insert(user.id);
        let member = Member::new(user, key, ResumeSecret::generate(), &door);
        Ok(self.enter(door, member, renamed))
    }

    /// Renames `name-guest` every guest connected here whose name is the account's username or
    /// looks like it, so the account can have it; answers a `renamed` for each.
    pub fn make_way_for(&mut self, account: &User, now: Timestamp) -> Vec<RoomEvent> {
        let key = account.name.key();
        let account_key = AccountKey::of(account.name.as_str());
        let guests: Vec<ConnId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                !m.user.account
                    && (m.key == key || AccountKey::of(m.user.name.as_str()) == account_key)
            })
            .map(|(conn, _)| *conn)
            .collect();
        let mut renamed = Vec::with_capacity(guests.len());
        for conn in guests {
            let name = self.guest_name(&self.members[&conn].user.name, &account_key);
            let member = &mut self.members[&conn];
            member.key = name.key();
            let old_name = std::mem::replace(&mut member.user.name, name);
            renamed.push(RoomEvent::Renamed {
                user: member.user.clone(),
                old_name,
                ts: now,
            });
        }
        renamed
    }

    /// A newcomer to a room with a password needs a pass that its password issued.
    fn check_pass(&self, pass: Option<&str>, now: Timestamp) -> Result<(), Refusal> {
        if self.authority.admits(pass, &self.code, now) {
            return Ok(());
        }
        Err(match pass {
            None => Refusal::PasswordRequired,
            Some(_) => Refusal::PassRefused,
        })
    }

    /// A name for a guest who must give theirs up: `ann-guest`, else `ann-guest2`, … within the
    /// length limit, taken by nobody and passing for no account.
    fn guest_name(&self, name: &DisplayName, account: &AccountKey) -> DisplayName {
        let base: String = name.as_str().chars().take(MAX_NAME_CHARS - 8).collect();
        (1..100)
            .filter_map(|n| {
                let suffix = if n == 1 { String::new() } else { n.to_string() };
                DisplayName::parse(&format!("{base}-guest{suffix}")).ok()
            })
            .find(|candidate| {
                !self.is_taken(&candidate.key(), None, None)
                    && AccountKey::of(candidate.as_str()) != *account
            })
            .unwrap_or_else(|| {
                let tag = &ResumeSecret::generate().fingerprint()[..8];
                DisplayName::parse(&format!("guest-{tag}")).expect("a valid name")
            })
    }

    /// Makes `member` a member under the door's connection and welcomes them; everyone else
    /// hears `joined`, after `renamed`.
    fn enter<'a>(
        &'a mut self,
        door: Door<'a>,
        mut member: Member,
        renamed: Vec<RoomEvent>,
    ) -> Admission<'a> {
        // A guest connected elsewhere until now has moved here; an account stays there too.
        if let Some(remote) = self.remote.shift_remove(&member.user.id) {
            if member.user.account {
                member.elsewhere = remote.on;
            }
        }
        let joined = RoomEvent::Joined {
            user: member.user.clone(),
            ts: door.now,
        };
        self.members.insert(door.conn, member);
        let effects = Effects {
            joined: Some(joined),
            replaced: None,
            renamed,
        };
        self.admitted(door, effects)
    }

    /// The identity `arrival` resumes, if this room (or, in shared mode, presence) knows it.
    fn returning<'a>(&'a self, arrival: &'a Arrival) -> Option<&'a User> {
        let secret = arrival.resume.as_ref()?;
        self.departed.get(secret).or(arrival.known.as_ref())
    }

    /// The welcome of the member just admitted through `door`.
    fn admitted<'a>(&'a self, door: Door<'a>, effects: Effects) -> Admission<'a> {
        let Door {
            conn,
            since,
            older,
            now,
            ..
        } = door;
        let member = self.member(conn).expect("the member was just admitted");
        let cutoff = self.expiry_cutoff(now);
        let live = |message: &&ChatMessage| cutoff.is_none_or(|cutoff| message.ts >= cutoff);
        let (history, truncated) = match since {
            None => {
                let latest = self.history.latest(self.history_on_join);
                (latest.into_iter().filter(live).collect(), false)
            }
            Some(since) => {
                // Storage answers the tombstones in seq order.
                let deleted =
                    |seq| older.deleted.binary_search(&seq).is_ok() || self.history.is_deleted(seq);
                let all: Vec<&ChatMessage> = older
                    .messages
                    .iter()
                    .filter(|m| !deleted(m.seq))
                    .chain(self.history.after(since))
                    .filter(live)
                    .collect();
                let replay = all[all.len().saturating_sub(MAX_REPLAY)..].to_vec();
                // Expired and deleted messages are gone on purpose: only what else is missing is a gap.
                let since = since.max(self.expired_through);
                let truncated = has_gap(since, &replay, self.last_seq(), deleted);
                (replay, truncated)
            }
        };
        Admission {
            welcome: Welcome {
                room: &self.code,
                you: &member.user,
                resume: &member.resume,
                members: self.users().collect(),
                history,
                truncated,
                expire_after_seconds: self.lifetime.map(MessageLifetime::as_secs),
                role: self.authority.role_of(&member.user),
                ranked: self.ranked(),
                muted: self
                    .users()
                    .map(|user| user.id)
                    .filter(|id| self.authority.is_muted(*id))
                    .collect(),
                rules: self.authority.rules(),
            },
            joined: effects.joined,
            replaced: effects.replaced,
            renamed: effects.renamed,
        }
    }

    /// Who the member on `conn` is, on any of their devices.
    pub fn user_on(&self, conn: ConnId) -> Option<&User> {
        self.member(conn).map(|member| &member.user)
    }

    /// The member a connection speaks for: its own entry, or the account it is a further device of.
    fn member(&self, conn: ConnId) -> Option<&Member> {
        self.members.get(&conn).or_else(|| {
            let first = self.companions.get(&conn)?;
            self.members.get(first)
        })
    }

    /// A connection has gone (closed, or evicted as too slow): its identity is kept for resume.
    /// `None` if it was no member (refused, or replaced by a resume).
    pub fn depart(&mut self, conn: ConnId, now: Timestamp) -> Option<RoomEvent> {
        // One of an account's further devices: the member is still here.
        if self.companions.remove(&conn).is_some() {
            return None;
        }
        let index = self.members.get_index_of(&conn)?;
        let (_, member) = self.members.shift_remove_index(index)?;
        let next = self
            .companions
            .iter()
            .find(|(_, first)| **first == conn)
            .map(|(companion, _)| *companion);
        if let Some(next) = next {
            // Another device carries on, in the same place in the member list.
            self.companions.remove(&next);
            for first in self.companions.values_mut().filter(|first| **first == conn) {
                *first = next;
            }
            self.members.shift_insert(index, next, member);
            return None;
        }
        let left = RoomEvent::Left {
            user: member.user.clone(),
            ts: now,
        };
        if !member.elsewhere.is_empty() {
            // An account still connected on another instance is still in the room: only the
            // other instances need to hear that it has left this one.
            self.remote.insert(
                member.user.id,
                RemoteMember {
                    user: member.user,
                    key: member.key,
                    on: member.elsewhere,
                },
            );
            return Some(left);
        }
        // An account comes back by its cookie, never by a secret someone else might hold.
        if !member.user.account {
            if self.departed.len() == MAX_DEPARTED {
                self.departed.shift_remove_index(0);
            }
            self.departed.insert(member.resume, member.user);
        }
        Some(left)
    }

    /// Everyone leaves at once without a word, as the server stops: they will come back.
    pub fn close(&mut self) -> Vec<ConnId> {
        let companions = self.companions.drain().map(|(conn, _)| conn);
        self.members
            .drain(..)
            .map(|(conn, _)| conn)
            .chain(companions)
            .collect()
    }

    /// A member's message, given the next seq. `stored_through` is the highest seq storage holds:
    /// memory keeps what it does not, past the history's size. `None` from a connection that is no member.
    pub fn post(
        &mut self,
        conn: ConnId,
        text: MessageText,
        reference: Option<MessageRef>,
        now: Timestamp,
        stored_through: u64,
    ) -> Option<&ChatMessage> {
        let from = self.member(conn)?.user.clone();
        Some(self.append(from, text, reference, now, stored_through))
    }

    /// A message from someone without a connection (the HTTP API), under a name nobody here uses.
    pub fn post_as(
        &mut self,
        name: DisplayName,
        text: MessageText,
        now: Timestamp,
        stored_through: u64,
    ) -> Result<&ChatMessage, Refusal> {
        let from = self.api_poster(name)?;
        Ok(self.append(from, text, None, now, stored_through))
    }

    /// A poster without a connection gets a stable id per room and name, so a bot's messages group
    /// together, under a name nobody here uses.
    fn api_poster(&self, name: DisplayName) -> Result<User, Refusal> {
        if self.is_taken(&name.key(), None, None) {
            return Err(Refusal::NameTaken(name));
        }
        let id = UserId::derived_from(&format!("hubbub:{}:{}", self.code, name.key().as_str()));
        Ok(User::guest(id, name))
    }

    /// A member's message before it has a seq (shared mode, where storage numbers it); `None` from
    /// a connection that is no member.
    pub fn draft(
        &self,
        conn: ConnId,
        text: MessageText,
        reference: Option<MessageRef>,
        now: Timestamp,
    ) -> Option<ChatMessage> {
        let from = self.member(conn)?.user.clone();
        Some(self.message(from, text, reference, now, 0))
    }

    /// An API poster's message before it has a seq (shared mode).
    pub fn draft_as(
        &self,
        name: DisplayName,
        text: MessageText,
        now: Timestamp,
    ) -> Result<ChatMessage, Refusal> {
        let from = self.api_poster(name)?;
        Ok(self.message(from, text, None, now, 0))
    }

    /// A message numbered elsewhere (shared mode), which must be the next: the lobby orders them.
    pub fn record(&mut self, message: ChatMessage) -> &ChatMessage {
        debug_assert_eq!(message.seq, self.next_seq, "messages are recorded in order");
        self.next_seq = message.seq + 1;
        // Numbered by storage, so already stored: memory need not hold it past the history's size.
        self.history.push(message, u64::MAX)
    }

    fn message(
        &self,
        from: User,
        text: MessageText,
        reference: Option<MessageRef>,
        now: Timestamp,
        seq: u64,
    ) -> ChatMessage {
        ChatMessage {
            id: uuid::Uuid::new_v4(),
            seq,
            room: self.code.clone(),
            from,
            text,
            ts: now,
            reference,
            edited_at: None,
        }
    }

    fn append(
        &mut self,
        from: User,
        text: MessageText,
        reference: Option<MessageRef>,
        now: Timestamp,
        stored_through: u64,
    ) -> &ChatMessage {
        let message = self.message(from, text, reference, now, self.next_seq);
        self.next_seq += 1;
        self.history.push(message, stored_through)
    }

    /// A member takes another name. `Ok(None)`: no member, or the same name again.
    pub fn rename(
        &mut self,
        conn: ConnId,
        name: DisplayName,
        now: Timestamp,
    ) -> Result<Option<RoomEvent>, Refusal> {
        let key = name.key();
        match self.member(conn) {
            None => return Ok(None),
            Some(member) if member.user.account => return Err(Refusal::NameLocked),
            Some(_) => {}
        }
        if self.is_taken(&key, Some(conn), None) {
            return Err(Refusal::NameTaken(name));
        }
        let member = &mut self.members[&conn];
        if member.user.name == name {
            return Ok(None);
        }
        let old_name = std::mem::replace(&mut member.user.name, name);
        member.key = key;
        Ok(Some(RoomEvent::Renamed {
            user: member.user.clone(),
            old_name,
            ts: now,
        }))
    }

    /// A member is typing; `None` from a connection that is no member.
    pub fn typing(&self, conn: ConnId) -> Option<RoomEvent> {
        let user = self.member(conn)?.user.clone();
        Some(RoomEvent::Typing { user })
    }

    /// Forgets the messages in memory that have outlived the room's lifetime; `Expired` if any went.
    pub fn expire(&mut self, now: Timestamp) -> Option<RoomEvent> {
        let through = self.history.expire_before(self.expiry_cutoff(now)?)?;
        self.expired(through)
    }

    /// Storage deleted messages through `through`; `Expired` unless that was announced already.
    pub fn expired(&mut self, through: u64) -> Option<RoomEvent> {
        (through > self.expired_through).then(|| {
            self.expired_through = through;
            RoomEvent::Expired {
                through_seq: through,
            }
        })
    }

    /// Messages in memory with `after < seq < before` that have not expired, oldest first.
    pub fn in_memory(&self, after: u64, before: u64, now: Timestamp) -> Vec<ChatMessage> {
        let cutoff = self.expiry_cutoff(now);
        self.history
            .after(after)
            .filter(|m| m.seq < before && cutoff.is_none_or(|cutoff| m.ts >= cutoff))
            .cloned()
            .collect()
    }

    /// The seqs deleted lately with `after < seq < before`: storage may not have blanked them yet.
    pub fn deleted_between(&self, after: u64, before: u64) -> Vec<u64> {
        self.history.deleted_between(after, before)
    }

    /// Whether the member on `conn` is muted: their messages are refused.
    pub fn is_muted(&self, conn: ConnId) -> bool {
        self.member(conn)
            .is_some_and(|member| self.authority.is_muted(member.user.id))
    }

    /// The author of message `seq` changes its text. Only messages still in the room's memory (its
    /// recent history) can be edited: their author is known without a read.
    pub fn edit(
        &mut self,
        conn: ConnId,
        seq: u64,
        text: MessageText,
        now: Timestamp,
    ) -> Result<RoomEvent, Refusal> {
        let author = self.member(conn).ok_or(Refusal::NotInRoom)?.user.id;
        let message = self.history.get_mut(seq).ok_or(Refusal::NoSuchMessage)?;
        if message.from.id != author {
            return Err(Refusal::NotYourMessage);
        }
        message.text = text.clone();
        message.edited_at = Some(now);
        Ok(RoomEvent::Edited {
            seq,
            text,
            edited_at: now,
        })
    }

    /// Deletes message `seq`: its author may, and so may anyone who outranks the author. Only
    /// messages still in the room's memory can be deleted, as for edits. The answer names the
    /// author, for the moderation log when it was someone else's.
    pub fn delete(&mut self, conn: ConnId, seq: u64) -> Result<Deletion, Refusal> {
        let by = self.member(conn).ok_or(Refusal::NotInRoom)?.user.clone();
        let author = &self.history.get(seq).ok_or(Refusal::NoSuchMessage)?.from;
        let own = author.id == by.id;
        if !own && !self.role(&by).outranks(self.role(author)) {
            return Err(Refusal::NotYoursToDelete);
        }
        let author = author.clone();
        self.history.delete(seq);
        Ok(Deletion {
            event: RoomEvent::Deleted { seq },
            by,
            author,
        })
    }

    /// A message was deleted on another instance (shared mode).
    pub fn deleted(&mut self, seq: u64) {
        self.history.delete(seq);
    }

    /// A message was edited on another instance (shared mode).
    pub fn edited(&mut self, seq: u64, text: &MessageText, edited_at: Timestamp) {
        if let Some(message) = self.history.get_mut(seq) {
            message.text = text.clone();
            message.edited_at = Some(edited_at);
        }
    }

    /// A member's rank here.
    pub fn role(&self, user: &User) -> Role {
        self.authority.role_of(user)
    }

    pub fn rules(&self) -> RoomRules {
        self.authority.rules()
    }

    /// The members of a rank above member, for the welcome.
    pub fn ranked(&self) -> Vec<(UserId, Role)> {
        self.users()
            .map(|user| (user.id, self.authority.role_of(user)))
            .filter(|(_, role)| !role.is_member())
            .collect()
    }

    /// A member proves they own the room with its owner token (its digest). `bind`, from a
    /// signed-in member, makes their account the owner for good: the answer then names it, to store.
    pub fn claim(
        &mut self,
        conn: ConnId,
        token: &TokenDigest,
        bind: bool,
    ) -> Result<Claimed, Refusal> {
        let user = self.member(conn).ok_or(Refusal::NotInRoom)?.user.clone();
        let before = self.authority.role_of(&user);
        if self.authority.claim(&user, token) == Claim::Refused {
            return Err(Refusal::NotTheOwnerToken);
        }
        let bound = (bind && user.account).then_some(user.id);
        if let Some(account) = bound {
            self.authority.bind(account);
        }
        let event = (before != Role::Owner).then_some(RoomEvent::RoleChanged {
            user,
            role: Role::Owner,
        });
        Ok(Claimed { event, bound })
    }

    /// The owner names a signed-in member moderator, or makes a moderator a member again.
    pub fn set_role(
        &mut self,
        conn: ConnId,
        target: UserId,
        role: Role,
    ) -> Result<Option<RoomEvent>, Refusal> {
        let by = self.member(conn).ok_or(Refusal::NotInRoom)?;
        if self.authority.role_of(&by.user) != Role::Owner || role == Role::Owner {
            return Err(Refusal::Forbidden);
        }
        let user = self.user(target).ok_or(Refusal::NotInRoom)?.clone();
        if !user.account {
            return Err(Refusal::GuestsCannotModerate);
        }
        if self.authority.role_of(&user) == Role::Owner {
            return Err(Refusal::Forbidden);
        }
        let changed = self
            .authority
            .set_moderator(user.id, role == Role::Moderator);
        Ok(changed.then_some(RoomEvent::RoleChanged { user, role }))
    }

    /// The owner hands the room to another signed-in member, and becomes a moderator (signed in)
    /// or a member (a guest owner). Events in order: the new owner's, then the old one's rank.
    pub fn hand_over(&mut self, conn: ConnId, target: UserId) -> Result<HandOver, Refusal> {
        let by = self.member(conn).ok_or(Refusal::NotInRoom)?.user.clone();
        if self.authority.role_of(&by) != Role::Owner || by.id == target {
            return Err(Refusal::Forbidden);
        }
        let to = self.user(target).ok_or(Refusal::NotInRoom)?.clone();
        if !to.account {
            return Err(Refusal::GuestsCannotModerate);
        }
        self.authority.hand_over(to.id);
        let from_role = if by.account {
            self.authority.set_moderator(by.id, true);
            Role::Moderator
        } else {
            Role::Member
        };
        Ok(HandOver {
            events: [
                RoomEvent::OwnerChanged { to: to.clone() },
                RoomEvent::RoleChanged {
                    user: by.clone(),
                    role: from_role,
                },
            ],
            to,
            from: by,
        })
    }

    /// The room was handed over on another instance (shared mode).
    pub fn owner_changed(&mut self, to: &User) {
        self.authority.hand_over(to.id);
    }

    /// Someone's rank changed elsewhere (shared mode): an owner proved the token, or the owner
    /// named or unnamed a moderator.
    pub fn role_changed(&mut self, user: &User, role: Role) {
        match role {
            Role::Owner => self.authority.note_owner(user.id),
            Role::Moderator => {
                self.authority.set_moderator(user.id, true);
            }
            Role::Member => {
                self.authority.set_moderator(user.id, false);
            }
        }
    }

    /// A moderator acts on `target`: sends them out until `until` (a kick) or for good (a ban),
    /// mutes them, or lifts a mute or a ban. Only someone who outranks the target may; a mute of
    /// the muted is no news (`Ok(None)`). Someone banned is gone: an unban finds them in the bans.
    pub fn moderate(
        &mut self,
        conn: ConnId,
        target: UserId,
        sanction: Sanction,
        reason: Option<MessageText>,
        (now, until): (Timestamp, Timestamp),
    ) -> Result<Option<Sanctioned>, Refusal> {
        let by = self.member(conn).ok_or(Refusal::NotInRoom)?.user.clone();
        let user = match sanction {
            Sanction::Unban => self
                .authority
                .ban_of(target)
                .ok_or(Refusal::NotBanned)?
                .user
                .clone(),
            _ => self.user(target).ok_or(Refusal::NotInRoom)?.clone(),
        };
        if !self
            .authority
            .role_of(&by)
            .outranks(self.authority.role_of(&user))
        {
            return Err(Refusal::Forbidden);
        }
        let news = match sanction {
            Sanction::Kick | Sanction::Ban | Sanction::Unban => true,
            Sanction::Mute => !self.authority.is_muted(user.id),
            Sanction::Unmute => self.authority.is_muted(user.id),
        };
        if !news {
            return Ok(None);
        }
        let event = RoomEvent::Moderated {
            sanction,
            user,
            by,
            reason,
            until: (sanction == Sanction::Kick).then_some(until),
        };
        Ok(Some(self.sanctioned(event, now)))
    }

    /// Applies a sanction, decided here or on another instance: the target's connections here
    /// close, and their `left` follows. A ban names the address it covers when the target was
    /// connected here, for storage to keep.
    pub fn sanctioned(&mut self, event: RoomEvent, now: Timestamp) -> Sanctioned {
        let mut banned = None;
        let (closed, left) = match &event {
            RoomEvent::Moderated {
                sanction: Sanction::Ban,
                user,
                ..
            } => {
                let address = self
                    .conn_of(user.id)
                    .and_then(|conn| self.members.get(&conn))
                    .and_then(|member| member.address);
                let ban = Ban {
                    user: user.clone(),
                    address,
                };
                self.authority.ban(ban);
                banned = self.authority.ban_of(user.id).cloned();
                self.send_out(user.id, now)
            }
            RoomEvent::Moderated {
                sanction: Sanction::Unban,
                user,
                ..
            } => {
                self.authority.unban(user.id);
                (Vec::new(), None)
            }
            RoomEvent::Moderated {
                sanction: Sanction::Kick,
                user,
                until,
                ..
            } => {
                self.authority.kick(user.id, until.unwrap_or(now));
                self.send_out(user.id, now)
            }
            RoomEvent::Moderated { sanction, user, .. } => {
                self.authority
                    .set_muted(user.id, *sanction == Sanction::Mute);
                (Vec::new(), None)
            }
            _ => (Vec::new(), None),
        };
        Sanctioned {
            event,
            closed,
            left,
            banned,
        }
    }

    /// Takes every connection of `user` here out of the room. A guest's identity is kept, so that
    /// coming back with it meets the kick rather than passing for someone new.
    fn send_out(&mut self, user: UserId, now: Timestamp) -> (Vec<ConnId>, Option<RoomEvent>) {
        let Some(first) = self.conn_of(user) else {
            return (Vec::new(), None);
        };
        let mut closed: Vec<ConnId> = self
            .companions
            .iter()
            .filter(|(_, of)| **of == first)
            .map(|(companion, _)| *companion)
            .collect();
        for companion in &closed {
            self.companions.remove(companion);
        }
        // The sanction reaches every instance, which sends out its own connections: the member
        // is out of the room, not merely gone from here.
        if let Some(member) = self.members.get_mut(&first) {
            member.elsewhere.clear();
        }
        closed.push(first);
        let left = self.depart(first, now);
        (closed, left)
    }

    /// A moderator sets one of the room's rules; `None` when it already was so.
    pub fn set_rule(&mut self, conn: ConnId, rule: Rule) -> Result<Option<RoomEvent>, Refusal> {
        self.may_set_rules(conn)?;
        let rules = self.authority.rules().with(rule);
        Ok(self
            .authority
            .set_rules(rules)
            .then_some(RoomEvent::RulesChanged { rules }))
    }

    /// Whether the member on `conn` may set the room's rules and password: a moderator or owner.
    pub fn may_set_rules(&self, conn: ConnId) -> Result<(), Refusal> {
        let by = self.member(conn).ok_or(Refusal::NotInRoom)?;
        if self.authority.role_of(&by.user).is_member() {
            return Err(Refusal::Forbidden);
        }
        Ok(())
    }

    /// A moderator sets the room's password (its hash), or removes it; `None` when nothing
    /// changed. Those inside stay: only newcomers need it.
    pub fn set_password(
        &mut self,
        conn: ConnId,
        password: Option<PasswordHash>,
    ) -> Result<Option<RoomEvent>, Refusal> {
        self.may_set_rules(conn)?;
        Ok(self
            .password_changed(password.clone())
            .then(|| RoomEvent::PasswordChanged {
                password,
                rules: self.authority.rules(),
            }))
    }

    /// The room's password changed elsewhere (shared mode); `true` if that is news here.
    pub fn password_changed(&mut self, password: Option<PasswordHash>) -> bool {
        self.authority.set_password(password)
    }

    /// The room's rules changed elsewhere (shared mode); `true` if that is news here.
    pub fn rules_changed(&mut self, rules: RoomRules) -> bool {
        self.authority.set_rules(rules)
    }

    /// Anyone in the room, here or on another instance.
    fn user(&self, id: UserId) -> Option<&User> {
        self.members
            .values()
            .map(|m| &m.user)
            .find(|user| user.id == id)
            .or_else(|| self.remote.get(&id).map(|m| &m.user))
    }

    pub fn describe(&self) -> RoomInfo {
        RoomInfo {
            code: self.code.clone(),
            members: self.users().cloned().collect(),
            created_at: self.created_at,
            expire_after_seconds: self.lifetime.map(MessageLifetime::as_secs),
        }
    }

    /// Whether someone other than `except_conn` or `except_user` goes by `key`, here or elsewhere.
    fn is_taken(
        &self,
        key: &NameKey,
        except_conn: Option<ConnId>,
        except_user: Option<UserId>,
    ) -> bool {
        let other = |id: UserId| Some(id) != except_user;
        self.members.iter().any(|(conn, member)| {
            &member.key == key && Some(*conn) != except_conn && other(member.user.id)
        }) || self
            .remote
            .values()
            .any(|member| &member.key == key && other(member.user.id))
    }

    /// Everyone in the room: those on other instances, then those here in join order.
    fn users(&self) -> impl Iterator<Item = &User> {
        self.remote
            .values()
            .map(|m| &m.user)
            .chain(self.members.values().map(|m| &m.user))
    }

    fn member_count(&self) -> usize {
        self.members.len() + self.remote.len()
    }

    /// The members connected here, with what presence needs of each.
    pub fn local_members(&self) -> impl Iterator<Item = LocalMember<'_>> {
        self.members.iter().map(|(conn, m)| LocalMember {
            conn: *conn,
            user: &m.user,
            key: &m.key,
            resume: &m.resume,
            since: m.since,
        })
    }

    /// Where presence placed members on other instances, accounts connected here as well
    /// included: each one's identity, instance and when this room last heard of them there.
    pub fn remote_members(&self) -> impl Iterator<Item = (&User, &InstanceId, Timestamp)> {
        let remote = self
            .remote
            .values()
            .flat_map(|m| m.on.iter().map(move |s| (&m.user, &s.instance, s.seen)));
        let here = self.members.values().flat_map(|m| {
            m.elsewhere
                .iter()
                .map(move |s| (&m.user, &s.instance, s.seen))
        });
        remote.chain(here)
    }

    /// Whether the room has `user`, as they are, on `instance`.
    pub fn knows_remote(&self, user: &User, instance: &InstanceId) -> bool {
        let on = |sightings: &[Sighting]| sightings.iter().any(|s| s.instance == *instance);
        match self.remote.get(&user.id) {
            Some(m) => m.user == *user && on(&m.on),
            None => {
                user.account
                    && self
                        .members
                        .values()
                        .any(|m| m.user == *user && on(&m.elsewhere))
            }
        }
    }

    /// Whether `user` is (still) in the room on another instance as well (shared mode): then
    /// their `joined` or `left` here is news to the other instances only.
    pub fn is_elsewhere(&self, user: &User) -> bool {
        user.account
            && (self.remote.contains_key(&user.id)
                || self
                    .members
                    .values()
                    .any(|m| m.user.id == user.id && !m.elsewhere.is_empty()))
    }

    /// Whether a member connected here holds `secret`: their return is a takeover, not a join.
    pub fn is_connected(&self, secret: &ResumeSecret) -> bool {
        self.members.values().any(|m| &m.resume == secret)
    }

    /// The identity of someone who left this room here holding `secret`.
    pub fn departed(&self, secret: &ResumeSecret) -> Option<&User> {
        self.departed.get(secret)
    }

    /// Messages before `seq` are gone from storage (expired, deleted): numbering goes on after them.
    pub fn skip_to(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    /// Someone is in the room on another instance. A stranger is announced; someone known gets the
    /// news's name and instance, silently. An account connected here as well stays one member.
    /// `Moved` when it is a guest connected here: they have resumed elsewhere, so the connection
    /// here goes, without a `left`.
    pub fn arrive_remote(&mut self, user: User, instance: InstanceId, now: Timestamp) -> Remote {
        // Someone the room has elsewhere is not connected here: the common case needs no scan.
        if let Some(known) = self.remote.get_mut(&user.id) {
            if user.account {
                sight(&mut known.on, instance, now);
            } else {
                known.on = vec![Sighting {
                    instance,
                    seen: now,
                }];
            }
            if known.user.name == user.name {
                known.user = user;
                return Remote::Known;
            }
            known.key = user.name.key();
            let old_name = std::mem::replace(&mut known.user, user.clone()).name;
            return Remote::Renamed(RoomEvent::Renamed {
                user,
                old_name,
                ts: now,
            });
        }
        if let Some(conn) = self.conn_of(user.id) {
            if user.account {
                if let Some(member) = self.members.get_mut(&conn) {
                    sight(&mut member.elsewhere, instance, now);
                }
                return Remote::Known;
            }
            if let Some(member) = self.members.shift_remove(&conn) {
                self.departed.insert(member.resume, member.user);
            }
            self.remote
                .insert(user.id, remote_member(user, instance, now));
            return Remote::Moved(conn);
        }
        self.remote
            .insert(user.id, remote_member(user.clone(), instance, now));
        Remote::Joined(RoomEvent::Joined { user, ts: now })
    }

    /// Someone on `instance` has left (or it died): `Left` if the room had them there and
    /// nowhere else.
    pub fn depart_remote(
        &mut self,
        user: UserId,
        instance: &InstanceId,
        now: Timestamp,
    ) -> Option<RoomEvent> {
        let Some(known) = self.remote.get_mut(&user) else {
            // An account connected here as well: still in the room.
            let conn = self.conn_of(user)?;
            unsight(&mut self.members.get_mut(&conn)?.elsewhere, instance);
            return None;
        };
        if !unsight(&mut known.on, instance) || !known.on.is_empty() {
            return None;
        }
        let member = self.remote.shift_remove(&user)?;
        Some(RoomEvent::Left {
            user: member.user,
            ts: now,
        })
    }

    /// A local member whose name presence gave to someone else: they leave without resume.
    pub fn evict(&mut self, conn: ConnId, now: Timestamp) -> Option<RoomEvent> {
        let member = self.members.shift_remove(&conn)?;
        Some(RoomEvent::Left {
            user: member.user,
            ts: now,
        })
    }

    fn conn_of(&self, user: UserId) -> Option<ConnId> {
        self.members
            .iter()
            .find(|(_, m)| m.user.id == user)
            .map(|(conn, _)| *conn)
    }
}

/// A claim that worked: the event telling everyone (unless they were owner already), and the
/// account to store as owner when the claimant bound it.
#[derive(Debug)]
pub struct Claimed {
    pub event: Option<RoomEvent>,
    pub bound: Option<UserId>,
}

/// A room handed over: the events for everyone, in order, and who gave it to whom.
#[derive(Debug)]
pub struct HandOver {
    pub events: [RoomEvent; 2],
    pub to: User,
    pub from: User,
}

/// A deletion made: the event for everyone, who deleted, and whose message it was.
#[derive(Debug)]
pub struct Deletion {
    pub event: RoomEvent,
    pub by: User,
    pub author: User,
}

/// A sanction applied: the event for everyone, the connections here to close, the target's
/// `left` if they were connected here, and for a ban, the ban as this room now holds it.
#[derive(Debug)]
pub struct Sanctioned {
    pub event: RoomEvent,
    pub closed: Vec<ConnId>,
    pub left: Option<RoomEvent>,
    pub banned: Option<Ban>,
}

/// What happened when presence placed someone on another instance.
#[derive(Debug, PartialEq)]
pub enum Remote {
    /// New to the room: announce them.
    Joined(RoomEvent),
    /// Known under another name: announce the rename.
    Renamed(RoomEvent),
    /// Known as they are: nothing to say.
    Known,
    /// Connected here until now: close this connection without a word.
    Moved(ConnId),
}

/// A member connected here, as presence needs them.
pub struct LocalMember<'a> {
    pub conn: ConnId,
    pub user: &'a User,
    pub key: &'a NameKey,
    pub resume: &'a ResumeSecret,
    pub since: Timestamp,
}

fn remote_member(user: User, instance: InstanceId, seen: Timestamp) -> RemoteMember {
    RemoteMember {
        key: user.name.key(),
        user,
        on: vec![Sighting { instance, seen }],
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use super::*;

    fn settings(max_members: usize, history_size: usize) -> RoomSettings {
        RoomSettings {
            history_size: NonZeroUsize::new(history_size).unwrap(),
            history_on_join: 50,
            idle_timeout: Duration::from_secs(60),
            max_members,
            max_rooms: 10,
            kick_for: Duration::from_secs(600),
        }
    }

    pub(in crate::chat) fn room_with(
        max_members: usize,
        history_size: usize,
        last_seq: u64,
    ) -> Room {
        let state = RoomState {
            created_at: Timestamp::now(),
            recent: Vec::new(),
            deleted: Vec::new(),
            last_seq,
            lifetime: None,
            ownership: Ownership::default(),
        };
        Room::new(
            RoomCode::parse("ROOM").unwrap(),
            state,
            &settings(max_members, history_size),
        )
    }

    fn room() -> Room {
        room_with(10, 100, 0)
    }

    fn name(name: &str) -> DisplayName {
        DisplayName::parse(name).unwrap()
    }

    pub(in crate::chat) fn arrival(conn: ConnId, who: &str) -> Arrival {
        Arrival {
            conn,
            name: name(who),
            resume: None,
            since: None,
            known: None,
            fresh_id: UserId::random(),
            account: false,
            address: None,
            pass: None,
        }
    }

    fn resuming(conn: ConnId, who: &str, secret: &ResumeSecret, since: Option<u64>) -> Arrival {
        Arrival {
            resume: Some(secret.clone()),
            since,
            ..arrival(conn, who)
        }
    }

    /// Joins and returns the connection, the user's id and the resume secret.
    fn join(room: &mut Room, who: &str) -> (ConnId, UserId, ResumeSecret) {
        let conn = ConnId::random();
        let admission = room
            .join(arrival(conn, who), Stored::NOTHING, Timestamp::now())
            .unwrap();
        (
            conn,
            admission.welcome.you.id,
            admission.welcome.resume.clone(),
        )
    }

    fn say(room: &mut Room, conn: ConnId, text: &str) -> u64 {
        room.post(
            conn,
            MessageText::parse(text).unwrap(),
            None,
            Timestamp::now(),
            u64::MAX,
        )
        .expect("a member may post")
        .seq
    }

    fn seconds_from_now(seconds: i64) -> Timestamp {
        Timestamp::from_millis(Timestamp::now().as_millis() + seconds * 1_000).unwrap()
    }

    fn member_names<'a>(welcome: &Welcome<'a>) -> Vec<&'a str> {
        welcome.members.iter().map(|u| u.name.as_str()).collect()
    }

    fn seqs(welcome: &Welcome<'_>) -> Vec<u64> {
        welcome.history.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn a_newcomer_is_welcomed_last_in_the_member_list_and_announced() {
        let mut room = room();
        join(&mut room, "ann");
        let admission = room
            .join(
                arrival(ConnId::random(), "bob"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        let names = member_names(&admission.welcome);
        assert_eq!(names, ["ann", "bob"]);
        assert!(
            matches!(&admission.joined, Some(RoomEvent::Joined { user, .. }) if user.name.as_str() == "bob")
        );
        assert!(admission.replaced.is_none());
    }

    #[test]
    fn a_departed_identity_resumes_with_its_id_name_and_secret() {
        let mut room = room();
        let (conn, id, secret) = join(&mut room, "ann");
        assert!(matches!(
            room.depart(conn, Timestamp::now()),
            Some(RoomEvent::Left { .. })
        ));
        let admission = room
            .join(
                resuming(ConnId::random(), "other", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(admission.welcome.you.id, id);
        assert_eq!(admission.welcome.you.name.as_str(), "ann");
        assert_eq!(admission.welcome.resume, &secret);
        assert!(admission.joined.is_some(), "a return is announced");
    }

    #[test]
    fn resuming_a_live_identity_takes_over_its_connection_silently() {
        let mut room = room();
        let (old, id, secret) = join(&mut room, "ann");
        let new = ConnId::random();
        let admission = room
            .join(
                resuming(new, "ann", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(admission.welcome.you.id, id);
        assert_eq!(admission.replaced, Some(old));
        assert!(admission.joined.is_none());
        assert_eq!(admission.welcome.members.len(), 1);
        assert!(
            room.depart(old, Timestamp::now()).is_none(),
            "the old connection is no member"
        );
    }

    #[test]
    fn an_unknown_secret_joins_as_someone_new() {
        let mut room = room();
        let secret = ResumeSecret::parse("not-a-real-secret".into()).unwrap();
        let admission = room
            .join(
                resuming(ConnId::random(), "ann", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_ne!(admission.welcome.resume, &secret);
        assert!(admission.joined.is_some());
    }

    #[test]
    fn a_full_room_refuses_and_a_taken_name_refuses() {
        let mut room = room_with(2, 100, 0);
        join(&mut room, "ann");
        assert_eq!(
            room.join(
                arrival(ConnId::random(), "ANN"),
                Stored::NOTHING,
                Timestamp::now()
            )
            .err(),
            Some(Refusal::NameTaken(name("ANN")))
        );
        join(&mut room, "bob");
        assert_eq!(
            room.join(
                arrival(ConnId::random(), "cy"),
                Stored::NOTHING,
                Timestamp::now()
            )
            .err(),
            Some(Refusal::RoomFull(2))
        );
    }

    /// Bug: the secret was spent before the checks, so the next try came back as a stranger.
    #[test]
    fn a_return_refused_because_the_room_is_full_leaves_the_identity_resumable() {
        let mut room = room_with(2, 100, 0);
        let (ann, id, secret) = join(&mut room, "ann");
        room.depart(ann, Timestamp::now());
        join(&mut room, "bob");
        let (cy, _, _) = join(&mut room, "cy");
        let refused = room.join(
            resuming(ConnId::random(), "ann", &secret, None),
            Stored::NOTHING,
            Timestamp::now(),
        );
        assert_eq!(refused.err(), Some(Refusal::RoomFull(2)));

        room.depart(cy, Timestamp::now());
        let back = room
            .join(
                resuming(ConnId::random(), "ann", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(back.welcome.you.id, id);
    }

    #[test]
    fn a_return_refused_because_the_name_is_taken_leaves_the_identity_resumable() {
        let mut room = room();
        let (ann, id, secret) = join(&mut room, "ann");
        room.depart(ann, Timestamp::now());
        let (impostor, _, _) = join(&mut room, "ANN");
        let refused = room.join(
            resuming(ConnId::random(), "x", &secret, None),
            Stored::NOTHING,
            Timestamp::now(),
        );
        assert_eq!(refused.err(), Some(Refusal::NameTaken(name("ann"))));

        room.depart(impostor, Timestamp::now());
        let back = room
            .join(
                resuming(ConnId::random(), "x", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(back.welcome.you.id, id);
        assert_eq!(back.welcome.you.name.as_str(), "ann");
    }

    #[test]
    fn replay_after_since_has_no_gap_when_memory_holds_it_all() {
        let mut room = room();
        let (ann, _, secret) = join(&mut room, "ann");
        for text in ["one", "two", "three"] {
            say(&mut room, ann, text);
        }
        room.depart(ann, Timestamp::now());
        assert_eq!(room.replay_from_storage(Some(1)), None);
        let admission = room
            .join(
                resuming(ConnId::random(), "ann", &secret, Some(1)),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(seqs(&admission.welcome), [2, 3]);
        assert!(!admission.welcome.truncated);
    }

    #[test]
    fn replay_beyond_memory_asks_storage_and_says_truncated_when_it_has_nothing() {
        // A room that storage says has 10 messages, none of them in memory.
        let mut room = room_with(10, 100, 10);
        assert_eq!(room.replay_from_storage(Some(4)), Some((4, 11)));
        let admission = room
            .join(
                Arrival {
                    since: Some(4),
                    ..arrival(ConnId::random(), "ann")
                },
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert!(admission.welcome.truncated, "seqs 5 to 10 are missing");
    }

    #[test]
    fn replay_from_storage_skips_its_tombstones_without_calling_them_a_gap() {
        let mut room = room_with(10, 100, 6);
        let stored: Vec<ChatMessage> = [5, 6].into_iter().map(ChatMessage::sample).collect();
        let resume = |since, who| Arrival {
            since: Some(since),
            ..arrival(ConnId::random(), who)
        };
        let older = Stored {
            messages: &stored,
            deleted: &[4],
        };
        let admission = room
            .join(resume(3, "ann"), older, Timestamp::now())
            .unwrap();
        assert_eq!(seqs(&admission.welcome), [5, 6]);
        assert!(!admission.welcome.truncated, "seq 4 was deleted, not lost");

        let older = Stored {
            messages: &stored,
            deleted: &[],
        };
        let admission = room
            .join(resume(3, "bob"), older, Timestamp::now())
            .unwrap();
        assert!(admission.welcome.truncated, "seq 4 is missing");
    }

    #[test]
    fn a_join_without_since_gets_the_latest_messages_only() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        for n in 0..60 {
            say(&mut room, ann, &format!("m{n}"));
        }
        let admission = room
            .join(
                arrival(ConnId::random(), "bob"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(admission.welcome.history.len(), 50);
        assert_eq!(admission.welcome.history.last().unwrap().seq, 60);
    }

    #[test]
    fn posts_are_numbered_in_order_and_strangers_cannot_post() {
        let mut room = room_with(10, 100, 41);
        let (ann, _, _) = join(&mut room, "ann");
        assert_eq!(say(&mut room, ann, "a"), 42);
        assert_eq!(say(&mut room, ann, "b"), 43);
        let stranger = room.post(
            ConnId::random(),
            MessageText::parse("x").unwrap(),
            None,
            Timestamp::now(),
            0,
        );
        assert!(stranger.is_none());
        assert_eq!(room.last_seq(), 43);
    }

    #[test]
    fn an_api_poster_may_not_borrow_a_members_name_and_keeps_one_id() {
        let mut room = room();
        join(&mut room, "ann");
        let text = || MessageText::parse("hi").unwrap();
        assert!(room
            .post_as(name("Ann"), text(), Timestamp::now(), 0)
            .is_err());
        let first = room
            .post_as(name("bot"), text(), Timestamp::now(), 0)
            .unwrap()
            .from
            .id;
        let second = room
            .post_as(name("BOT"), text(), Timestamp::now(), 0)
            .unwrap()
            .from
            .id;
        assert_eq!(first, second);
    }

    #[test]
    fn a_rename_to_a_taken_name_is_refused_and_changes_nothing() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        join(&mut room, "bob");
        assert_eq!(
            room.rename(ann, name("Bob"), Timestamp::now()),
            Err(Refusal::NameTaken(name("Bob")))
        );
        assert_eq!(room.describe().members[0].name.as_str(), "ann");
        assert_eq!(room.rename(ann, name("ann"), Timestamp::now()), Ok(None));
        assert!(matches!(
            room.rename(ann, name("ANN"), Timestamp::now()),
            Ok(Some(RoomEvent::Renamed { old_name, .. })) if old_name.as_str() == "ann"
        ));
    }

    fn signed_in(conn: ConnId, id: UserId, who: &str) -> Arrival {
        Arrival {
            fresh_id: id,
            account: true,
            ..arrival(conn, who)
        }
    }

    #[test]
    fn an_account_on_two_devices_is_one_member_who_leaves_with_the_last() {
        let mut room = room();
        let id = UserId::random();
        let (phone, laptop) = (ConnId::random(), ConnId::random());
        let first = room
            .join(
                signed_in(phone, id, "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert!(first.joined.is_some());
        assert!(first.welcome.you.account);
        assert_eq!(first.welcome.you.id, id);
        let second = room
            .join(
                signed_in(laptop, id, "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert!(second.joined.is_none(), "the second device is no newcomer");
        assert_eq!(second.welcome.members.len(), 1);
        join(&mut room, "bob");
        let bob = room.describe().members[1].clone();

        // Either device speaks for the member.
        say(&mut room, laptop, "from the laptop");
        assert_eq!(room.depart(phone, Timestamp::now()), None);
        let names: Vec<String> = room
            .describe()
            .members
            .iter()
            .map(|u| u.name.to_string())
            .collect();
        assert_eq!(names, ["ann", "bob"], "ann keeps her place");
        say(&mut room, laptop, "still here");
        assert!(matches!(
            room.depart(laptop, Timestamp::now()),
            Some(RoomEvent::Left { user, .. }) if user.id == id
        ));
        assert_eq!(room.describe().members, [bob]);
    }

    #[test]
    fn a_guest_with_the_accounts_name_is_renamed_so_the_holder_gets_in() {
        let mut room = room();
        let (guest, guest_id, _) = join(&mut room, "Ann");
        // Takes the first free `-guest` name.
        join(&mut room, "ann-guest");
        let id = UserId::random();

        let admission = room
            .join(
                signed_in(ConnId::random(), id, "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();

        let [RoomEvent::Renamed { user, old_name, .. }] = admission.renamed.as_slice() else {
            panic!("one guest renamed: {:?}", admission.renamed);
        };
        assert_eq!(
            (user.id, user.name.as_str(), old_name.as_str()),
            (guest_id, "Ann-guest2", "Ann")
        );
        assert_eq!(admission.welcome.you.name.as_str(), "ann");
        assert!(matches!(
            room.rename(guest, name("ANN"), Timestamp::now()),
            Err(Refusal::NameTaken(_))
        ));
    }

    #[test]
    fn a_look_alike_guest_name_also_makes_way_for_the_account() {
        let mut room = room();
        join(&mut room, "аnn"); // a Cyrillic а
        let admission = room
            .join(
                signed_in(ConnId::random(), UserId::random(), "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(admission.renamed.len(), 1);
    }

    #[test]
    fn an_account_cannot_rename_in_a_room() {
        let mut room = room();
        let conn = ConnId::random();
        room.join(
            signed_in(conn, UserId::random(), "ann"),
            Stored::NOTHING,
            Timestamp::now(),
        )
        .unwrap();
        assert_eq!(
            room.rename(conn, name("anna"), Timestamp::now()),
            Err(Refusal::NameLocked)
        );
    }

    #[test]
    fn a_guest_cannot_resume_an_accounts_identity_by_its_secret() {
        let mut room = room();
        let (conn, id) = (ConnId::random(), UserId::random());
        let secret = room
            .join(
                signed_in(conn, id, "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap()
            .welcome
            .resume
            .clone();
        // Live: no takeover. Gone: no return.
        let live = room
            .join(
                resuming(ConnId::random(), "eve", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_ne!(live.welcome.you.id, id);
        room.depart(conn, Timestamp::now());
        let gone = room
            .join(
                resuming(ConnId::random(), "mallory", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_ne!(gone.welcome.you.id, id);
        assert!(!gone.welcome.you.account);
    }

    #[test]
    fn closing_lets_every_device_go() {
        let mut room = room();
        let id = UserId::random();
        let (one, two) = (ConnId::random(), ConnId::random());
        room.join(signed_in(one, id, "ann"), Stored::NOTHING, Timestamp::now())
            .unwrap();
        room.join(signed_in(two, id, "ann"), Stored::NOTHING, Timestamp::now())
            .unwrap();
        let mut closed = room.close();
        closed.sort_by_key(|conn| conn.to_string());
        let mut both = vec![one, two];
        both.sort_by_key(|conn| conn.to_string());
        assert_eq!(closed, both);
    }

    /// A room with an owner token, and the token.
    fn owned_room() -> (Room, crate::domain::SessionToken) {
        let token = crate::domain::SessionToken::generate();
        let state = RoomState {
            created_at: Timestamp::now(),
            recent: Vec::new(),
            deleted: Vec::new(),
            last_seq: 0,
            lifetime: None,
            ownership: Ownership {
                token: Some(token.digest()),
                ..Ownership::default()
            },
        };
        let room = Room::new(RoomCode::parse("ROOM").unwrap(), state, &settings(10, 100));
        (room, token)
    }

    fn later(seconds: u64) -> Timestamp {
        Timestamp::now().later_by(Duration::from_secs(seconds))
    }

    #[test]
    fn the_owner_token_makes_its_holder_owner_and_a_wrong_one_changes_nothing() {
        let (mut room, token) = owned_room();
        let (ann, ann_id, _) = join(&mut room, "ann");
        let (bob, _, _) = join(&mut room, "bob");
        let wrong = crate::domain::SessionToken::generate().digest();

        assert_eq!(
            room.claim(bob, &wrong, false).unwrap_err(),
            Refusal::NotTheOwnerToken
        );
        let claimed = room.claim(ann, &token.digest(), false).unwrap();

        assert!(matches!(
            claimed.event,
            Some(RoomEvent::RoleChanged { ref user, role: Role::Owner }) if user.id == ann_id
        ));
        assert_eq!(claimed.bound, None, "a guest binds no account");
        assert!(room
            .claim(ann, &token.digest(), false)
            .unwrap()
            .event
            .is_none());
        assert_eq!(room.ranked(), [(ann_id, Role::Owner)]);
        let carol = room
            .join(
                arrival(ConnId::random(), "carol"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(carol.welcome.role, Role::Member);
        assert_eq!(carol.welcome.ranked, [(ann_id, Role::Owner)]);
    }

    #[test]
    fn an_owner_kicks_a_member_who_cannot_come_back_until_the_time_is_up() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, bob_id, bob_secret) = join(&mut room, "bob");
        room.claim(ann, &token.digest(), false).unwrap();

        let now = Timestamp::now();
        let kicked = room
            .moderate(ann, bob_id, Sanction::Kick, None, (now, later(600)))
            .unwrap()
            .unwrap();

        assert_eq!(kicked.closed, [bob]);
        assert!(matches!(kicked.left, Some(RoomEvent::Left { ref user, .. }) if user.id == bob_id));
        assert!(matches!(
            kicked.event,
            RoomEvent::Moderated {
                sanction: Sanction::Kick,
                ..
            }
        ));
        let back = room.join(
            resuming(ConnId::random(), "bob", &bob_secret, None),
            Stored::NOTHING,
            now,
        );
        assert!(matches!(back, Err(Refusal::Kicked(_))));
        let (_, _, _) = join(&mut room, "bob"); // a new identity is someone new
    }

    #[test]
    fn a_banned_guest_stays_out_under_any_name_from_that_address_until_unbanned() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        room.claim(ann, &token.digest(), false).unwrap();
        let address: IpAddr = "198.51.100.4".parse().unwrap();
        let from = |who: &str, address: IpAddr| Arrival {
            address: Some(address),
            ..arrival(ConnId::random(), who)
        };
        let eve_arrival = from("eve", address);
        let eve_conn = eve_arrival.conn;
        let eve = room
            .join(eve_arrival, Stored::NOTHING, Timestamp::now())
            .unwrap()
            .welcome
            .you
            .clone();
        let times = (Timestamp::now(), later(600));

        let banned = room
            .moderate(ann, eve.id, Sanction::Ban, None, times)
            .unwrap()
            .unwrap();
        assert_eq!(banned.closed, [eve_conn]);
        assert!(banned.left.is_some());
        assert_eq!(banned.banned.unwrap().address, Some(address));
        let again = room.join(from("eve2", address), Stored::NOTHING, Timestamp::now());
        assert_eq!(again.err(), Some(Refusal::Banned));
        let elsewhere = "198.51.100.5".parse().unwrap();
        assert!(room
            .join(from("dan", elsewhere), Stored::NOTHING, Timestamp::now())
            .is_ok());
        assert_eq!(
            room.moderate(ann, UserId::random(), Sanction::Unban, None, times)
                .unwrap_err(),
            Refusal::NotBanned
        );

        let unbanned = room
            .moderate(ann, eve.id, Sanction::Unban, None, times)
            .unwrap()
            .unwrap();
        assert!(matches!(
            unbanned.event,
            RoomEvent::Moderated { sanction: Sanction::Unban, ref user, .. } if user.name.as_str() == "eve"
        ));
        assert!(room
            .join(from("eve", address), Stored::NOTHING, Timestamp::now())
            .is_ok());
    }

    #[test]
    fn a_password_keeps_newcomers_without_a_pass_out_and_lets_people_back_in() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, _, bob_secret) = join(&mut room, "bob");
        room.claim(ann, &token.digest(), false).unwrap();
        let hash = PasswordHash::from_stored("$argon2id$v=19$test".into());
        assert_eq!(
            room.set_password(bob, Some(hash.clone())).unwrap_err(),
            Refusal::Forbidden
        );
        let set = room.set_password(ann, Some(hash.clone())).unwrap();
        assert!(matches!(set, Some(RoomEvent::PasswordChanged { rules, .. }) if rules.password));
        assert_eq!(room.set_password(ann, Some(hash.clone())).unwrap(), None);

        let now = Timestamp::now();
        let with = |pass: Option<String>| Arrival {
            pass,
            ..arrival(ConnId::random(), "carol")
        };
        let refused = room.join(with(None), Stored::NOTHING, now).err();
        assert_eq!(refused, Some(Refusal::PasswordRequired));
        let forged = room
            .join(with(Some("1.00".into())), Stored::NOTHING, now)
            .err();
        assert_eq!(forged, Some(Refusal::PassRefused));
        let pass = hash.issue_pass(
            room.code(),
            now.later_by(std::time::Duration::from_secs(60)),
        );
        assert!(room.join(with(Some(pass)), Stored::NOTHING, now).is_ok());
        room.depart(bob, now);
        let back = resuming(ConnId::random(), "bob", &bob_secret, None);
        assert!(
            room.join(back, Stored::NOTHING, now).is_ok(),
            "no pass to come back"
        );
    }

    #[test]
    fn the_owner_hands_the_room_to_an_account_and_keeps_no_way_back() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (guest, guest_id, _) = join(&mut room, "bob");
        let (mia, mia_id) = (ConnId::random(), UserId::random());
        room.join(
            signed_in(mia, mia_id, "mia"),
            Stored::NOTHING,
            Timestamp::now(),
        )
        .unwrap();
        room.claim(ann, &token.digest(), false).unwrap();
        assert_eq!(
            room.hand_over(ann, guest_id).unwrap_err(),
            Refusal::GuestsCannotModerate
        );
        assert_eq!(
            room.hand_over(guest, mia_id).unwrap_err(),
            Refusal::Forbidden
        );

        let handed = room.hand_over(ann, mia_id).unwrap();

        assert!(matches!(&handed.events[0], RoomEvent::OwnerChanged { to } if to.id == mia_id));
        assert!(matches!(
            &handed.events[1],
            RoomEvent::RoleChanged {
                role: Role::Member,
                ..
            }
        ));
        let ranked = room.ranked();
        assert_eq!(ranked, [(mia_id, Role::Owner)], "ann was a guest owner");
        assert_eq!(
            room.claim(ann, &token.digest(), false).unwrap_err(),
            Refusal::NotTheOwnerToken
        );
    }

    #[test]
    fn a_banned_account_stays_out_from_every_device() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        room.claim(ann, &token.digest(), false).unwrap();
        let (mia, mia_id) = (ConnId::random(), UserId::random());
        room.join(
            signed_in(mia, mia_id, "mia"),
            Stored::NOTHING,
            Timestamp::now(),
        )
        .unwrap();
        let times = (Timestamp::now(), later(600));
        room.moderate(ann, mia_id, Sanction::Ban, None, times)
            .unwrap();
        let back = room.join(
            signed_in(ConnId::random(), mia_id, "mia"),
            Stored::NOTHING,
            Timestamp::now(),
        );
        assert_eq!(back.err(), Some(Refusal::Banned));
    }

    #[test]
    fn nobody_acts_on_an_equal_or_higher_rank_or_on_someone_absent() {
        let (mut room, token) = owned_room();
        let (ann, ann_id, _) = join(&mut room, "ann");
        let (bob, bob_id, _) = join(&mut room, "bob");
        let (carol, _, _) = join(&mut room, "carol");
        room.claim(ann, &token.digest(), false).unwrap();
        let now = Timestamp::now();

        assert_eq!(
            room.moderate(bob, ann_id, Sanction::Kick, None, (now, later(600)))
                .unwrap_err(),
            Refusal::Forbidden
        );
        assert_eq!(
            room.moderate(carol, bob_id, Sanction::Kick, None, (now, later(600)))
                .unwrap_err(),
            Refusal::Forbidden
        );
        assert_eq!(
            room.moderate(
                ann,
                UserId::random(),
                Sanction::Kick,
                None,
                (now, later(600))
            )
            .unwrap_err(),
            Refusal::NotInRoom
        );
        assert_eq!(
            room.set_rule(bob, Rule::Locked(true)).unwrap_err(),
            Refusal::Forbidden
        );
        assert!(!room.rules().locked, "refusals change nothing");
        assert_eq!(room.describe().members.len(), 3);
    }

    #[test]
    fn the_owner_names_a_signed_in_moderator_who_may_act_on_members_only() {
        let (mut room, token) = owned_room();
        let (ann, ann_id, _) = join(&mut room, "ann");
        let (mia, mia_id) = (ConnId::random(), UserId::random());
        room.join(
            signed_in(mia, mia_id, "mia"),
            Stored::NOTHING,
            Timestamp::now(),
        )
        .unwrap();
        let (bob, bob_id, _) = join(&mut room, "bob");
        room.claim(ann, &token.digest(), false).unwrap();
        let times = (Timestamp::now(), later(600));

        assert_eq!(
            room.set_role(ann, bob_id, Role::Moderator),
            Err(Refusal::GuestsCannotModerate)
        );
        assert_eq!(
            room.set_role(bob, mia_id, Role::Moderator),
            Err(Refusal::Forbidden)
        );
        let named = room.set_role(ann, mia_id, Role::Moderator).unwrap();
        assert!(matches!(
            named,
            Some(RoomEvent::RoleChanged {
                role: Role::Moderator,
                ..
            })
        ));
        assert_eq!(room.set_role(ann, mia_id, Role::Moderator).unwrap(), None);

        assert_eq!(
            room.moderate(mia, ann_id, Sanction::Mute, None, times)
                .unwrap_err(),
            Refusal::Forbidden
        );
        assert!(room
            .moderate(mia, bob_id, Sanction::Mute, None, times)
            .unwrap()
            .is_some());
        assert!(room.set_rule(mia, Rule::Locked(true)).unwrap().is_some());
        room.set_role(ann, mia_id, Role::Member).unwrap();
        assert_eq!(
            room.set_rule(mia, Rule::Locked(false)).unwrap_err(),
            Refusal::Forbidden
        );
    }

    #[test]
    fn an_author_edits_their_own_message_and_nobody_else_can() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, _, _) = join(&mut room, "bob");
        let seq = say(&mut room, ann, "helo");
        let now = Timestamp::now();
        let text = |t: &str| MessageText::parse(t).unwrap();

        assert_eq!(
            room.edit(bob, seq, text("hijacked"), now),
            Err(Refusal::NotYourMessage)
        );
        assert_eq!(
            room.edit(ann, seq + 1, text("hello"), now),
            Err(Refusal::NoSuchMessage)
        );
        let edited = room.edit(ann, seq, text("hello"), now).unwrap();

        assert_eq!(
            edited,
            RoomEvent::Edited {
                seq,
                text: text("hello"),
                edited_at: now
            }
        );
        let replay = room.in_memory(0, u64::MAX, now);
        assert_eq!(replay[0].text.as_str(), "hello");
        assert_eq!(replay[0].edited_at, Some(now));
    }

    #[test]
    fn authors_delete_their_own_messages_and_moderators_those_of_lower_ranks() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, _, bob_secret) = join(&mut room, "bob");
        let (cy, _, _) = join(&mut room, "cy");
        room.claim(ann, &token.digest(), false).unwrap();
        let from_ann = say(&mut room, ann, "the owner speaks");
        let from_bob = say(&mut room, bob, "oops");
        let from_cy = say(&mut room, cy, "spam");
        let last = say(&mut room, bob, "last");

        assert_eq!(
            room.delete(cy, from_bob).unwrap_err(),
            Refusal::NotYoursToDelete
        );
        assert_eq!(
            room.delete(bob, from_ann).unwrap_err(),
            Refusal::NotYoursToDelete
        );
        assert_eq!(
            room.delete(bob, last + 1).unwrap_err(),
            Refusal::NoSuchMessage
        );
        let own = room.delete(bob, from_bob).unwrap();
        assert_eq!(own.event, RoomEvent::Deleted { seq: from_bob });
        assert_eq!(own.by.id, own.author.id);
        let moderated = room.delete(ann, from_cy).unwrap();
        assert_eq!(moderated.author.name.as_str(), "cy");
        assert_eq!(
            room.delete(ann, from_cy).unwrap_err(),
            Refusal::NoSuchMessage,
            "gone already"
        );

        let remaining: Vec<u64> = room
            .in_memory(0, u64::MAX, Timestamp::now())
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(remaining, [from_ann, last]);
        room.depart(bob, Timestamp::now());
        let back = room
            .join(
                resuming(ConnId::random(), "bob", &bob_secret, Some(from_ann)),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(seqs(&back.welcome), [last]);
        assert!(!back.welcome.truncated, "deletions are no gap");
    }

    #[test]
    fn a_muted_member_cannot_post_until_unmuted_and_a_second_mute_is_no_news() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, bob_id, _) = join(&mut room, "bob");
        room.claim(ann, &token.digest(), false).unwrap();
        let times = (Timestamp::now(), later(600));

        let muted = room
            .moderate(ann, bob_id, Sanction::Mute, None, times)
            .unwrap()
            .unwrap();

        assert!(
            muted.closed.is_empty() && muted.left.is_none(),
            "a mute sends nobody out"
        );
        assert!(room.is_muted(bob));
        assert!(room
            .moderate(ann, bob_id, Sanction::Mute, None, times)
            .unwrap()
            .is_none());
        assert!(room
            .moderate(ann, bob_id, Sanction::Unmute, None, times)
            .unwrap()
            .is_some());
        assert!(!room.is_muted(bob));
    }

    #[test]
    fn an_accounts_only_room_refuses_every_guest_and_admits_accounts() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, _, bob_secret) = join(&mut room, "bob");
        room.claim(ann, &token.digest(), false).unwrap();

        room.set_rule(ann, Rule::AccountsOnly(true)).unwrap();

        room.depart(bob, Timestamp::now());
        let back = room.join(
            resuming(ConnId::random(), "bob", &bob_secret, None),
            Stored::NOTHING,
            Timestamp::now(),
        );
        assert!(
            matches!(back, Err(Refusal::AccountsOnly)),
            "a guest coming back is a guest"
        );
        let account = signed_in(ConnId::random(), UserId::random(), "carol");
        assert!(room
            .join(account, Stored::NOTHING, Timestamp::now())
            .is_ok());
    }

    #[test]
    fn a_locked_room_refuses_newcomers_but_lets_people_back_in() {
        let (mut room, token) = owned_room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, _, bob_secret) = join(&mut room, "bob");
        room.claim(ann, &token.digest(), false).unwrap();

        let locked = room.set_rule(ann, Rule::Locked(true)).unwrap();

        assert_eq!(
            locked,
            Some(RoomEvent::RulesChanged {
                rules: RoomRules {
                    locked: true,
                    accounts_only: false,
                    password: false,
                }
            })
        );
        assert_eq!(
            room.set_rule(ann, Rule::Locked(true)).unwrap(),
            None,
            "already locked"
        );
        let newcomer = room.join(
            arrival(ConnId::random(), "dave"),
            Stored::NOTHING,
            Timestamp::now(),
        );
        assert!(matches!(newcomer, Err(Refusal::Locked)));
        room.depart(bob, Timestamp::now());
        assert!(room
            .join(
                resuming(ConnId::random(), "bob", &bob_secret, None),
                Stored::NOTHING,
                Timestamp::now()
            )
            .is_ok());
        room.set_rule(ann, Rule::Locked(false)).unwrap();
        assert!(room
            .join(
                arrival(ConnId::random(), "dave"),
                Stored::NOTHING,
                Timestamp::now()
            )
            .is_ok());
    }

    #[test]
    fn a_kick_decided_elsewhere_sends_the_member_out_here() {
        let (mut room, _) = owned_room();
        let (bob, bob_id, _) = join(&mut room, "bob");
        let bob_user = room.describe().members[0].clone();
        let event = RoomEvent::Moderated {
            sanction: Sanction::Kick,
            user: bob_user,
            by: user("ann"),
            reason: None,
            until: Some(later(600)),
        };

        let applied = room.sanctioned(event, Timestamp::now());

        assert_eq!(applied.closed, [bob]);
        assert!(room.describe().members.is_empty());
        let _ = bob_id;
    }

    #[test]
    fn leaving_frees_the_name_and_is_announced_once() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        assert!(room.depart(ann, Timestamp::now()).is_some());
        assert!(room.depart(ann, Timestamp::now()).is_none());
        assert!(room.is_empty());
        join(&mut room, "ann");
    }

    #[test]
    fn closing_empties_the_room_without_announcing_anyone() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        let (bob, _, _) = join(&mut room, "bob");
        assert_eq!(room.close(), [ann, bob]);
        assert!(room.is_empty());
    }

    #[test]
    fn typing_is_told_only_for_members() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        assert!(room.typing(ann).is_some());
        assert!(room.typing(ConnId::random()).is_none());
    }

    #[test]
    fn expired_messages_leave_memory_and_are_announced_once() {
        let state = RoomState {
            created_at: Timestamp::now(),
            recent: Vec::new(),
            deleted: Vec::new(),
            last_seq: 0,
            lifetime: Some(MessageLifetime::from_seconds(60).unwrap()),
            ownership: Ownership::default(),
        };
        let mut room = Room::new(RoomCode::parse("ROOM").unwrap(), state, &settings(10, 100));
        let (ann, _, _) = join(&mut room, "ann");
        say(&mut room, ann, "old");
        say(&mut room, ann, "older");
        let later = seconds_from_now(61);
        assert_eq!(
            room.expire(later),
            Some(RoomEvent::Expired { through_seq: 2 })
        );
        assert!(room.in_memory(0, u64::MAX, later).is_empty());
        assert_eq!(
            room.expired(2),
            None,
            "storage's report of the same is not news"
        );
        assert_eq!(room.expired(3), Some(RoomEvent::Expired { through_seq: 3 }));
    }

    fn elsewhere() -> InstanceId {
        InstanceId::from("other".to_owned())
    }

    fn user(who: &str) -> User {
        User::guest(UserId::random(), name(who))
    }

    fn account(who: &str) -> User {
        User {
            account: true,
            ..user(who)
        }
    }

    #[test]
    fn an_account_connected_here_and_on_another_instance_is_one_member_until_both_go() {
        let mut room = room();
        let ann = account("ann");
        let phone = ConnId::random();
        room.join(
            signed_in(phone, ann.id, "ann"),
            Stored::NOTHING,
            Timestamp::now(),
        )
        .unwrap();
        let third = InstanceId::from("third".to_owned());

        assert_eq!(
            room.arrive_remote(ann.clone(), elsewhere(), Timestamp::now()),
            Remote::Known,
            "the laptop on another instance takes nothing over"
        );
        room.arrive_remote(ann.clone(), third.clone(), Timestamp::now());
        assert!(room.is_elsewhere(&ann));
        assert_eq!(room.describe().members, std::slice::from_ref(&ann));
        assert_eq!(room.remote_members().count(), 2);

        let left = room.depart(phone, Timestamp::now());
        assert!(
            matches!(left, Some(RoomEvent::Left { .. })),
            "for the others"
        );
        assert!(
            room.is_elsewhere(&ann),
            "so the members here do not hear it"
        );
        assert_eq!(room.describe().members, std::slice::from_ref(&ann));
        assert_eq!(
            room.depart_remote(ann.id, &elsewhere(), Timestamp::now()),
            None
        );
        assert!(matches!(
            room.depart_remote(ann.id, &third, Timestamp::now()),
            Some(RoomEvent::Left { user, .. }) if user.id == ann.id
        ));
        assert_eq!(room.describe().members, []);
    }

    #[test]
    fn an_account_already_on_another_instance_joins_here_as_the_same_member() {
        let mut room = room();
        let ann = account("ann");
        room.arrive_remote(ann.clone(), elsewhere(), Timestamp::now());
        let laptop = ConnId::random();

        let admission = room
            .join(
                signed_in(laptop, ann.id, "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();

        assert_eq!(admission.welcome.members, [&ann]);
        assert!(room.is_elsewhere(&ann), "its joined is news only elsewhere");
        assert_eq!(
            room.depart_remote(ann.id, &elsewhere(), Timestamp::now()),
            None
        );
        assert!(!room.is_elsewhere(&ann));
        assert!(matches!(
            room.depart(laptop, Timestamp::now()),
            Some(RoomEvent::Left { .. })
        ));
        assert_eq!(room.describe().members, []);
    }

    #[test]
    fn a_guest_moving_to_another_instance_still_moves() {
        let mut room = room();
        let (conn, id, _) = join(&mut room, "bob");
        let bob = User::guest(id, name("bob"));
        assert_eq!(
            room.arrive_remote(bob.clone(), elsewhere(), Timestamp::now()),
            Remote::Moved(conn)
        );
        let third = InstanceId::from("third".to_owned());
        room.arrive_remote(bob.clone(), third.clone(), Timestamp::now());
        assert_eq!(
            room.depart_remote(id, &elsewhere(), Timestamp::now()),
            None,
            "the guest is on the third instance now"
        );
        assert!(room.depart_remote(id, &third, Timestamp::now()).is_some());
    }

    #[test]
    fn a_guest_here_makes_way_for_an_account_on_another_instance() {
        let mut room = room();
        let (guest, _, _) = join(&mut room, "Ann");
        let ann = account("ann");

        let renamed = room.make_way_for(&ann, Timestamp::now());
        assert!(matches!(
            renamed.as_slice(),
            [RoomEvent::Renamed { user, .. }] if user.name.as_str() == "Ann-guest"
        ));
        assert!(matches!(
            room.arrive_remote(ann, elsewhere(), Timestamp::now()),
            Remote::Joined(_)
        ));
        assert_eq!(room.user_on(guest).unwrap().name.as_str(), "Ann-guest");
    }

    #[test]
    fn a_guest_elsewhere_does_not_keep_an_account_out() {
        let mut room = room();
        room.arrive_remote(user("ann"), elsewhere(), Timestamp::now());
        let admission = room.join(
            signed_in(ConnId::random(), UserId::random(), "ann"),
            Stored::NOTHING,
            Timestamp::now(),
        );
        assert!(admission.is_ok(), "its own instance renames the guest");
    }

    #[test]
    fn members_on_other_instances_are_listed_counted_and_hold_their_names() {
        let mut room = room_with(2, 100, 0);
        let bob = user("bob");
        assert!(matches!(
            room.arrive_remote(bob.clone(), elsewhere(), Timestamp::now()),
            Remote::Joined(RoomEvent::Joined { .. })
        ));
        assert_eq!(
            room.arrive_remote(bob.clone(), elsewhere(), Timestamp::now()),
            Remote::Known
        );
        assert_eq!(
            room.join(
                arrival(ConnId::random(), "BOB"),
                Stored::NOTHING,
                Timestamp::now()
            )
            .err(),
            Some(Refusal::NameTaken(name("BOB")))
        );
        let admission = room
            .join(
                arrival(ConnId::random(), "ann"),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        let names = member_names(&admission.welcome);
        assert_eq!(names, ["bob", "ann"]);
        assert_eq!(
            room.join(
                arrival(ConnId::random(), "cy"),
                Stored::NOTHING,
                Timestamp::now()
            )
            .err(),
            Some(Refusal::RoomFull(2)),
            "the limit counts members everywhere"
        );
        assert!(!room.is_empty());
    }

    #[test]
    fn a_remote_member_leaves_only_from_the_instance_the_room_has_them_on() {
        let mut room = room();
        let bob = user("bob");
        room.arrive_remote(bob.clone(), elsewhere(), Timestamp::now());
        let third = InstanceId::from("third".to_owned());
        assert_eq!(room.depart_remote(bob.id, &third, Timestamp::now()), None);
        assert!(matches!(
            room.depart_remote(bob.id, &elsewhere(), Timestamp::now()),
            Some(RoomEvent::Left { .. })
        ));
        assert_eq!(room.describe().members, []);
    }

    #[test]
    fn news_of_a_remote_members_new_name_is_a_rename() {
        let mut room = room();
        let mut bob = user("bob");
        room.arrive_remote(bob.clone(), elsewhere(), Timestamp::now());
        bob.name = name("rob");
        assert!(matches!(
            room.arrive_remote(bob, elsewhere(), Timestamp::now()),
            Remote::Renamed(RoomEvent::Renamed { old_name, .. }) if old_name.as_str() == "bob"
        ));
        join(&mut room, "bob");
    }

    #[test]
    fn a_member_here_who_resumed_elsewhere_moves_without_a_left_and_may_resume_here_again() {
        let mut room = room();
        let (conn, id, secret) = join(&mut room, "ann");
        let ann = User::guest(id, name("ann"));
        assert_eq!(
            room.arrive_remote(ann, elsewhere(), Timestamp::now()),
            Remote::Moved(conn)
        );
        assert!(room.is_empty());
        assert_eq!(room.describe().members.len(), 1);
        let back = room
            .join(
                resuming(ConnId::random(), "x", &secret, None),
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(back.welcome.you.id, id);
        assert_eq!(back.welcome.members.len(), 1, "moved back, not doubled");
    }

    #[test]
    fn an_identity_known_from_another_instance_resumes_here_under_its_id_and_name() {
        let mut room = room();
        let secret = ResumeSecret::generate();
        let ann = user("ann");
        let admission = room
            .join(
                Arrival {
                    known: Some(ann.clone()),
                    ..resuming(ConnId::random(), "other", &secret, None)
                },
                Stored::NOTHING,
                Timestamp::now(),
            )
            .unwrap();
        assert_eq!(admission.welcome.you, &ann);
        assert_eq!(admission.welcome.resume, &secret);
    }

    #[test]
    fn messages_numbered_elsewhere_are_recorded_in_turn_and_a_gap_may_be_skipped() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        let mut draft = room
            .draft(
                ann,
                MessageText::parse("hi").unwrap(),
                None,
                Timestamp::now(),
            )
            .expect("a member may post");
        assert_eq!(draft.seq, 0, "a draft has no seq yet");
        draft.seq = 1;
        room.record(draft);
        assert_eq!(room.last_seq(), 1);
        room.skip_to(5);
        assert_eq!(room.last_seq(), 4);
    }

    #[test]
    fn a_room_without_a_lifetime_expires_nothing() {
        let mut room = room();
        let (ann, _, _) = join(&mut room, "ann");
        say(&mut room, ann, "kept");
        let much_later = seconds_from_now(86_400 * 365);
        assert_eq!(room.expire(much_later), None);
        assert_eq!(room.in_memory(0, u64::MAX, much_later).len(), 1);
    }
}
