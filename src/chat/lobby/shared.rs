//! The lobby in shared mode, where other instances serve the same room: storage numbers each
//! message before anyone hears of it, the broker carries what happened, and presence in Redis
//! decides who holds which name and who is in the room on which instance.
//!
//! Every message goes through [`Reorder`](super::Reorder), so members here hear a room's messages
//! in seq order, without a hole: a hole is filled from storage after a short wait (the message
//! is stored before it is published, so storage has it), and a periodic check of the room's
//! `last_seq` finds what a lost publish left out of a quiet room.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::Lobby;
use crate::broker::{Entry, Liveness, Presence};
use crate::chat::ids::{ConnId, ResumeSecret};
use crate::chat::messages::{Close, Outbox, ToSession};
use crate::chat::protocol::{error_frame, CloseCode};
use crate::chat::room::{Arrival, Remote, MAX_REPLAY};
use crate::domain::{
    ChatMessage, DisplayName, ErrorCode, InstanceId, Invalid, MessageRef, MessageText, NameKey,
    RoomEvent, Timestamp, User, UserId,
};
use crate::storage::{Keep, Unnumbered};

/// How long a message after a hole waits for the hole's own publish before storage is asked.
const HOLE_WAIT: Duration = Duration::from_millis(100);

/// Takes `user`'s entry on `instance` out of the room's presence, in the background: a leave
/// never waits on Redis.
pub(super) fn forget(presence: &Presence, user: User, instance: InstanceId) {
    let presence = presence.clone();
    tokio::spawn(async move {
        // Redis unreachable: the entry goes when a check finds it stale.
        let _ = presence.leave(&user, &instance).await;
    });
}

/// Claims a guest's new name in presence, in the background, giving up `old_key`: they made way
/// for an account, which has that name.
pub(super) fn reclaim(presence: &Presence, entry: Entry, old_key: NameKey) {
    let presence = presence.clone();
    tokio::spawn(async move {
        // Unreachable, or the new name taken elsewhere meanwhile: the next check settles it.
        let _ = presence.claim(&entry, Some(old_key.as_str())).await;
    });
}

/// Records who `secret` stands for, in the background, so its holder may resume on any instance.
fn remember(presence: &Presence, secret: &ResumeSecret, user: User) {
    let (presence, fingerprint) = (presence.clone(), secret.fingerprint());
    tokio::spawn(async move {
        let _ = presence.remember(&fingerprint, &user).await;
    });
}

/// What a join learnt from presence and storage before the room decides.
#[derive(Default)]
struct Prepared {
    known: Option<User>,
    /// Someone on a live instance holds the name.
    holder: Option<UserId>,
    /// The identity presence now has in the room on this instance: to be taken out again if the
    /// room refuses the join after all (it is full).
    claimed: Option<User>,
    /// Messages this lobby had not yet heard of and the client has: read before admitting.
    missed: Vec<ChatMessage>,
    /// The room's presence, for a lobby that has not read it yet: the welcome lists everyone.
    entries: Option<Vec<Entry>>,
}

impl Lobby {
    /// Admits someone after presence has let them have their name, holding the room's other
    /// events back meanwhile: the resumed identity is looked up (it may come from another
    /// instance), the name claimed across instances, and what the client saw but this lobby has
    /// not yet heard read from storage, so the welcome holds exactly what followed `since`.
    pub(super) fn join_shared(
        &mut self,
        mut arrival: Arrival,
        outbox: Outbox,
        presence: Presence,
        ctx: &mut Context<Self>,
    ) {
        let connected = arrival
            .resume
            .as_ref()
            .is_some_and(|secret| self.room.is_connected(secret));
        if connected {
            // A takeover keeps its name.
            return self.replay_and_admit(arrival, outbox, None, ctx);
        }
        // Without Redis, the join goes by this instance's word; names are settled when it is back.
        let presence = presence.is_up().then_some(presence);
        let departed = arrival
            .resume
            .as_ref()
            .and_then(|secret| self.room.departed(secret))
            .cloned();
        let fingerprint = arrival
            .resume
            .as_ref()
            .filter(|_| departed.is_none())
            .map(ResumeSecret::fingerprint);
        let last = self.room.last_seq();
        let behind = arrival.since.is_some_and(|since| since > last);
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let cutoff = self.room.expiry_cutoff(Timestamp::now());
        let (fresh_id, name, account) = (arrival.fresh_id, arrival.name.clone(), arrival.account);
        let (placed, started) = (self.placed, Timestamp::now());
        let prepare = async move {
            let mut prepared = Prepared::default();
            if let Some(presence) = presence {
                if !placed {
                    prepared.entries = presence.members().await.ok();
                }
                if let Some(fingerprint) = &fingerprint {
                    prepared.known = presence.identity(fingerprint).await.ok().flatten();
                }
                let user = departed.or_else(|| prepared.known.clone()).unwrap_or(User {
                    id: fresh_id,
                    name,
                    account,
                });
                let entry = presence.entry(user, Timestamp::now());
                match presence.claim(&entry, None).await {
                    Ok(None) => prepared.claimed = Some(entry.user),
                    Ok(Some(holder)) => prepared.holder = Some(holder),
                    // Unreachable just now: admitted on this instance's word, settled later.
                    Err(_) => {}
                }
            }
            if behind {
                prepared.missed = storage
                    .messages(&code, (last, u64::MAX), cutoff, MAX_REPLAY, Keep::Oldest)
                    .await
                    .unwrap_or_default();
            }
            prepared
        };
        let admit = prepare.into_actor(self).map(move |prepared, lobby, ctx| {
            if prepared.holder.is_some() {
                let name = prepared.known.as_ref().map_or(&arrival.name, |u| &u.name);
                let close = Close::new(
                    CloseCode::NameTaken,
                    format!("the name {name} is already taken in this room"),
                );
                return outbox.session.do_send(ToSession::Close(close));
            }
            if let (Some(entries), Some(presence)) = (prepared.entries, lobby.presence.clone()) {
                lobby.reconcile(&entries, &presence.live(), started);
            }
            for message in prepared.missed {
                lobby.offer(message, ctx);
            }
            arrival.known = prepared.known;
            lobby.replay_and_admit(arrival, outbox, prepared.claimed, ctx);
        });
        self.hold_back(admit, ctx);
    }

    /// Has storage number a member's message, then publishes it; the sender is told if it cannot.
    pub(super) fn post_shared(
        &mut self,
        conn: ConnId,
        text: MessageText,
        reference: Option<MessageRef>,
        ctx: &mut Context<Self>,
    ) {
        let Some(draft) = self.room.draft(conn, text, reference, Timestamp::now()) else {
            return;
        };
        let storage = self.storage.clone();
        let reference = draft.reference.as_ref().map(|r| r.as_str().to_owned());
        let append = async move { storage.append(draft).await };
        ctx.spawn(
            append
                .into_actor(self)
                .map(move |appended, lobby, ctx| match appended {
                    Ok(message) => lobby.announce_numbered(message, ctx),
                    Err(err) => {
                        let invalid =
                            Invalid::new(ErrorCode::StorageUnavailable, post_failed(&err));
                        lobby.fanout.tell(
                            conn,
                            ToSession::Frame(error_frame(&invalid, reference.as_deref())),
                        );
                    }
                }),
        );
    }

    /// Publishes a message storage has numbered, and delivers it here in its turn.
    pub(super) fn announce_numbered(&mut self, message: ChatMessage, ctx: &mut Context<Self>) {
        self.received.increment(1);
        let own = self.channel.publish(RoomEvent::Message(message));
        if let RoomEvent::Message(message) = own {
            self.offer(message, ctx);
        }
    }

    /// Claims the new name across instances, then renames; the member is told if it is taken.
    pub(super) fn rename_shared(
        &mut self,
        conn: ConnId,
        name: DisplayName,
        presence: Presence,
        ctx: &mut Context<Self>,
    ) {
        let Some(member) = self.room.local_members().find(|m| m.conn == conn) else {
            return;
        };
        if member.user.name == name || !presence.is_up() {
            return self.rename_here(conn, name);
        }
        let old_key = member.key.as_str().to_owned();
        let renamed = User {
            name: name.clone(),
            ..member.user.clone()
        };
        let entry = presence.entry(renamed, member.since);
        let claim = async move { presence.claim(&entry, Some(&old_key)).await };
        self.hold_back(
            claim
                .into_actor(self)
                .map(move |holder, lobby, _| match holder {
                    Ok(Some(_)) => {
                        let invalid = Invalid::new(
                            ErrorCode::NameTaken,
                            format!("the name {name} is already taken in this room"),
                        );
                        lobby
                            .fanout
                            .tell(conn, ToSession::Frame(error_frame(&invalid, None)));
                    }
                    // Unreachable: renamed on this instance's word, settled when Redis is back.
                    Ok(None) | Err(_) => lobby.rename_here(conn, name),
                }),
            ctx,
        );
    }

    /// Puts a numbered message in its place: delivered now if it is the next, held if a hole
    /// comes before it, dropped if already heard.
    pub(super) fn offer(&mut self, message: ChatMessage, ctx: &mut Context<Self>) {
        let ready = self.reorder.offer(self.room.last_seq(), message);
        self.deliver_in_order(ready);
        if self.reorder.hole(self.room.last_seq()).is_some() && !self.catching_up {
            self.catching_up = true;
            ctx.run_later(HOLE_WAIT, |lobby, ctx| {
                lobby.catching_up = false;
                if let Some((_, before)) = lobby.reorder.hole(lobby.room.last_seq()) {
                    lobby.catch_up(before, ctx);
                }
            });
        }
    }

    fn deliver_in_order(&mut self, ready: Vec<ChatMessage>) {
        for message in ready {
            // Numbered by storage, so stored: the lobby may unload once idle.
            self.settled
                .fetch_max(message.seq, std::sync::atomic::Ordering::Release);
            let message = self.room.record(message).clone();
            self.fan_out(RoomEvent::Message(message));
        }
    }

    /// Reads the messages before `before` this lobby has not heard from storage, and delivers them.
    fn catch_up(&mut self, before: u64, ctx: &mut Context<Self>) {
        if self.catching_up {
            return;
        }
        self.catching_up = true;
        let after = self.room.last_seq();
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let read = async move {
            storage
                .messages(&code, (after, before), None, MAX_REPLAY, Keep::Oldest)
                .await
        };
        ctx.spawn(read.into_actor(self).map(move |read, lobby, ctx| {
            lobby.catching_up = false;
            let messages = match read {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(room = %lobby.room.code(), error = %err, "cannot catch up from storage; trying again");
                    return lobby.retry_catch_up(before, ctx);
                }
            };
            let complete = messages.len() < MAX_REPLAY;
            for message in messages {
                let ready = lobby.reorder.offer(lobby.room.last_seq(), message);
                lobby.deliver_in_order(ready);
            }
            if complete {
                // What storage lacks below `before` is gone (expired): numbering goes on after it.
                lobby.room.skip_to(before);
                lobby
                    .settled
                    .fetch_max(before - 1, std::sync::atomic::Ordering::Release);
                let ready = lobby.reorder.ready(lobby.room.last_seq());
                lobby.deliver_in_order(ready);
            }
            if let Some((_, next)) = lobby.reorder.hole(lobby.room.last_seq()) {
                lobby.catch_up(next, ctx);
            } else if !complete {
                lobby.catch_up(before, ctx);
            }
        }));
    }

    fn retry_catch_up(&mut self, before: u64, ctx: &mut Context<Self>) {
        ctx.run_later(HOLE_WAIT * 10, move |lobby, ctx| {
            if lobby.room.last_seq() + 1 < before {
                lobby.catch_up(before, ctx);
            }
        });
    }

    /// An event another instance published.
    pub(super) fn receive(&mut self, from: InstanceId, event: RoomEvent, ctx: &mut Context<Self>) {
        let now = Timestamp::now();
        match event {
            RoomEvent::Message(message) => self.offer(message, ctx),
            RoomEvent::Joined { user, ts } | RoomEvent::Renamed { user, ts, .. } => {
                // Only after an outage can a name here be given out there too: the earlier keeps it.
                let entry = Entry {
                    user,
                    instance: from,
                    since: ts.as_millis(),
                };
                if let Some(presence) = self.presence.clone() {
                    if self.outranked_here(&entry, &presence) {
                        return;
                    }
                }
                self.place_remote(entry.user, entry.instance, now);
            }
            RoomEvent::Left { user, .. } => {
                if let Some(left) = self.room.depart_remote(user.id, &from, now) {
                    self.fan_out(left);
                }
            }
            RoomEvent::Expired { through_seq } => {
                if let Some(expired) = self.room.expired(through_seq) {
                    self.fan_out(expired);
                }
            }
            typing @ RoomEvent::Typing { .. } => self.fan_out(typing),
            moderation @ (RoomEvent::Moderated { .. }
            | RoomEvent::RoleChanged { .. }
            | RoomEvent::OwnerChanged { .. }
            | RoomEvent::RulesChanged { .. }
            | RoomEvent::PasswordChanged { .. }
            | RoomEvent::Edited { .. }
            | RoomEvent::Deleted { .. }) => self.receive_moderation(moderation, ctx),
        }
    }

    /// Someone is in the room on another instance: members here hear what changed. Guests here
    /// by an account's name make way for it.
    fn place_remote(&mut self, user: User, instance: InstanceId, now: Timestamp) {
        if user.account {
            let renamed = self.room.make_way_for(&user, now);
            self.publish_renamed(renamed);
        }
        match self.room.arrive_remote(user, instance, now) {
            Remote::Joined(event) | Remote::Renamed(event) => self.fan_out(event),
            Remote::Known => {}
            Remote::Moved(conn) => self.close_replaced(conn),
        }
    }

    /// Checks the room against storage (a publish lost in a quiet room) and presence (members
    /// who came or went unheard, instances that died, a Redis that lost its data).
    pub(super) fn check(&mut self, live: Option<Arc<Liveness>>, ctx: &mut Context<Self>) {
        if self.checking {
            return;
        }
        self.checking = true;
        let started = Timestamp::now();
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let presence = self.presence.clone().filter(|_| live.is_some());
        let read = async move {
            let last = storage.last_seqs(std::slice::from_ref(&code)).await;
            let entries = match presence {
                Some(presence) => presence.members().await.ok(),
                None => None,
            };
            (last, entries)
        };
        ctx.spawn(
            read.into_actor(self)
                .map(move |(last, entries), lobby, ctx| {
                    lobby.checking = false;
                    if let Ok(&[(_, last)]) = last.as_deref() {
                        if last > lobby.room.last_seq() {
                            lobby.catch_up(last + 1, ctx);
                        }
                    }
                    if let (Some(entries), Some(live)) = (entries, live) {
                        lobby.reconcile(&entries, &live, started);
                    }
                }),
        );
    }

    /// Brings the room's members in line with presence as read at `read_at`. Whoever this lobby
    /// heard of since then is left alone: the read may predate them.
    fn reconcile(&mut self, entries: &[Entry], live: &Liveness, read_at: Timestamp) {
        let Some(presence) = self.presence.clone() else {
            return;
        };
        self.placed = true;
        let me = presence.instance().clone();
        let now = Timestamp::now();
        let alive = |entry: &Entry| live.is_alive(&entry.instance);
        // An account may be on several instances: one entry each.
        let elsewhere: HashMap<(UserId, &InstanceId), &Entry> = entries
            .iter()
            .filter(|e| e.instance != me && alive(e))
            .map(|e| ((e.user.id, &e.instance), e))
            .collect();

        // Gone from presence, or their instance died: they left.
        let gone: Vec<(UserId, InstanceId)> = self
            .room
            .remote_members()
            .filter(|(user, instance, seen)| {
                *seen < read_at && !elsewhere.contains_key(&(user.id, instance))
            })
            .map(|(user, instance, _)| (user.id, instance.clone()))
            .collect();
        for (user, instance) in gone {
            if let Some(left) = self.room.depart_remote(user, &instance, now) {
                self.fan_out(left);
            }
        }
        // In presence but unheard of here (a lost publish, a Redis outage): they joined, unless
        // they lose their name to a member here, and are about to be told so.
        for entry in elsewhere.values() {
            if !self.knows_remote(entry) && !self.outranked_here(entry, &presence) {
                self.place_remote(entry.user.clone(), entry.instance.clone(), now);
            }
        }
        // Entries of dead instances are cleared by whoever notices first.
        for entry in entries.iter().filter(|e| !alive(e)) {
            forget(&presence, entry.user.clone(), entry.instance.clone());
        }
        self.register_members(entries, live, &presence, read_at);
    }

    /// Whether a member here holds `entry`'s name with the better claim to it.
    fn outranked_here(&self, entry: &Entry, presence: &Presence) -> bool {
        let key = entry.user.name.key();
        self.room.local_members().any(|member| {
            *member.key == key
                && member.user.id != entry.user.id
                && presence
                    .entry(member.user.clone(), member.since)
                    .outranks(entry)
        })
    }

    fn knows_remote(&self, entry: &Entry) -> bool {
        self.room.knows_remote(&entry.user, &entry.instance)
    }

    /// Gives presence back the members here it lacks (Redis restarted empty, or was unreachable
    /// when they joined). A name two instances gave out apart is settled the same way on every
    /// instance: the earlier join keeps it, and the other is told and leaves.
    fn register_members(
        &mut self,
        entries: &[Entry],
        live: &Liveness,
        presence: &Presence,
        read_at: Timestamp,
    ) {
        let mine: HashSet<UserId> = entries
            .iter()
            .filter(|e| e.instance == *presence.instance())
            .map(|e| e.user.id)
            .collect();
        // Each name's key is made once per check, not once per pair of members: in a room of a
        // thousand that was a million normalisations every round.
        let mut by_key: HashMap<NameKey, Vec<&Entry>> = HashMap::new();
        for entry in entries.iter().filter(|e| live.is_alive(&e.instance)) {
            by_key.entry(entry.user.name.key()).or_default().push(entry);
        }
        let mut losers = Vec::new();
        // Accounts elsewhere whose username a guest here has: the guest makes way.
        let mut wanted = Vec::new();
        // Entries to write: claimed as usual, or seized from a rival this member outranks.
        let mut missing = Vec::new();
        for member in self.room.local_members() {
            if member.since >= read_at {
                continue;
            }
            let entry = presence.entry(member.user.clone(), member.since);
            let rival = by_key
                .get(member.key)
                .and_then(|named| named.iter().find(|other| other.user.id != member.user.id));
            match rival {
                Some(rival) if rival.user.account && !member.user.account => {
                    wanted.push(rival.user.clone());
                }
                Some(rival) if rival.outranks(&entry) => losers.push(member.conn),
                Some(_) => missing.push((entry, member.resume.clone(), true)),
                None if !mine.contains(&member.user.id) => {
                    missing.push((entry, member.resume.clone(), false));
                }
                None => {}
            }
        }
        for account in wanted {
            let renamed = self.room.make_way_for(&account, Timestamp::now());
            self.publish_renamed(renamed);
        }
        for conn in losers {
            if let Some(session) = self.fanout.remove(conn) {
                session.do_send(ToSession::Close(Close::new(
                    CloseCode::NameTaken,
                    "while the servers could not reach each other, someone else took this name \
                     in this room first; join again under another",
                )));
            }
            if let Some(left) = self.room.evict(conn, Timestamp::now()) {
                let left = self.channel.publish(left);
                self.fan_out(left);
            }
        }
        for (entry, secret, seize) in missing {
            remember(presence, &secret, entry.user.clone());
            let presence = presence.clone();
            tokio::spawn(async move {
                // Failures are retried at the next check.
                let _ = if seize {
                    presence.seize(&entry).await
                } else {
                    presence.claim(&entry, None).await.map(drop)
                };
            });
        }
    }

    /// The member's identity is known to presence now, for a resume on another instance; a join
    /// the room refused after its name was claimed gives the claim back.
    pub(super) fn remember_admitted(
        &self,
        admitted: Option<(User, ResumeSecret)>,
        claimed: Option<User>,
    ) {
        let Some(presence) = &self.presence else {
            return;
        };
        match (admitted, claimed) {
            (Some((user, secret)), _) => remember(presence, &secret, user),
            (None, Some(claimed)) => forget(presence, claimed, presence.instance().clone()),
            (None, None) => {}
        }
    }
}

/// Why a post was not sent, for its sender.
fn post_failed(err: &Unnumbered) -> String {
    match err {
        Unnumbered::NoSuchRoom => "this room no longer exists; the message was not sent".into(),
        Unnumbered::Storage(_) => {
            "messages cannot be stored right now, so this one was not sent; try again shortly"
                .into()
        }
    }
}
