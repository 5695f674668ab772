//! The lobby's side of moderation: claims of ownership, kicks and locks from members here, and
//! the same decisions made on other instances, applied to the members connected here.

use actix::{ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};

use super::{shared, Lobby};
use crate::chat::ids::ConnId;
use crate::chat::messages::{Act, Claim, Close, Delete, Edit, Moderate, ToSession};
use crate::chat::protocol::{error_frame, CloseCode};
use crate::chat::room::{Refusal, Sanctioned};
use crate::domain::{
    Ban, ErrorCode, Invalid, Password, PasswordHash, Role, RoomEvent, Sanction, Timestamp, User,
    UserId,
};
use crate::storage::{LogEntry, LoggedUser, StorageError};

impl Handler<Claim> for Lobby {
    type Result = ();

    fn handle(&mut self, claim: Claim, ctx: &mut Context<Self>) {
        let claimed = match self.room.claim(claim.conn, &claim.token, claim.bind) {
            Ok(claimed) => claimed,
            Err(refusal) => return self.refuse(claim.conn, &refusal),
        };
        let Some(event) = claimed.event else {
            return;
        };
        let RoomEvent::RoleChanged { user, .. } = &event else {
            return;
        };
        self.log(user, "claim_owner", None, None, ctx);
        let (storage, code, id) = (self.storage.clone(), self.room.code().clone(), user.id);
        let store = async move {
            storage.add_owner_claim(&code, id).await?;
            match claimed.bound {
                Some(account) => storage.set_owner_account(&code, account).await,
                None => Ok(()),
            }
        };
        self.store_then_publish(store, "cannot store a room's owner", [event], ctx);
    }
}

impl Handler<Edit> for Lobby {
    type Result = ();

    fn handle(&mut self, edit: Edit, _ctx: &mut Context<Self>) {
        let event = match self
            .room
            .edit(edit.conn, edit.seq, edit.text, Timestamp::now())
        {
            Ok(event) => event,
            Err(refusal) => return self.refuse(edit.conn, &refusal),
        };
        let RoomEvent::Edited {
            seq,
            ref text,
            edited_at,
        } = event
        else {
            return;
        };
        let code = self.room.code().clone();
        self.storage
            .edit_message(code, seq, text.clone(), edited_at);
        self.publish(event);
    }
}

impl Handler<Delete> for Lobby {
    type Result = ();

    fn handle(&mut self, delete: Delete, ctx: &mut Context<Self>) {
        let deletion = match self.room.delete(delete.conn, delete.seq) {
            Ok(deletion) => deletion,
            Err(refusal) => return self.refuse(delete.conn, &refusal),
        };
        if deletion.by.id != deletion.author.id {
            self.log(&deletion.by, "delete", Some(&deletion.author), None, ctx);
        }
        let code = self.room.code().clone();
        self.storage
            .delete_message(code, delete.seq, Timestamp::now());
        self.publish(deletion.event);
    }
}

impl Handler<Moderate> for Lobby {
    type Result = ();

    fn handle(&mut self, moderate: Moderate, ctx: &mut Context<Self>) {
        let now = Timestamp::now();
        let conn = moderate.conn;
        match moderate.act {
            Act::Sanction {
                sanction,
                target,
                reason,
            } => {
                let until = now.later_by(self.settings.kick_for);
                match self
                    .room
                    .moderate(conn, target, sanction, reason, (now, until))
                {
                    Ok(Some(sanctioned)) => {
                        if let RoomEvent::Moderated {
                            user, by, reason, ..
                        } = &sanctioned.event
                        {
                            let reason = reason.as_ref().map(|r| r.as_str().to_owned());
                            self.log(by, sanction.as_str(), Some(user), reason, ctx);
                        }
                        let (storage, code) = (self.storage.clone(), self.room.code().clone());
                        match sanction {
                            Sanction::Kick | Sanction::Ban => {
                                // Out at once, with the reason: the ban is stored meanwhile.
                                self.store_ban(sanctioned.banned.clone(), ctx);
                                self.publish(sanctioned.event.clone());
                                self.send_out(sanctioned);
                            }
                            Sanction::Unban => {
                                let store = async move { storage.unban(&code, target).await };
                                let what = "cannot store an unban";
                                self.store_then_publish(store, what, [sanctioned.event], ctx);
                            }
                            Sanction::Mute | Sanction::Unmute => {
                                let muted = sanction == Sanction::Mute;
                                let store =
                                    async move { storage.set_muted(&code, target, muted).await };
                                let what = "cannot store a mute";
                                self.store_then_publish(store, what, [sanctioned.event], ctx);
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(refusal) => self.refuse(conn, &refusal),
                }
            }
            Act::SetRole {
                target,
                role: Role::Owner,
            } => self.hand_over(conn, target, ctx),
            Act::SetRole { target, role } => match self.room.set_role(conn, target, role) {
                Ok(Some(event)) => {
                    let by = self.room.user_on(conn).cloned();
                    if let (Some(by), RoomEvent::RoleChanged { user, .. }) = (&by, &event) {
                        let action = if role == Role::Moderator {
                            "make_moderator"
                        } else {
                            "make_member"
                        };
                        self.log(by, action, Some(user), None, ctx);
                    }
                    let (storage, code) = (self.storage.clone(), self.room.code().clone());
                    let moderator = role == Role::Moderator;
                    let store =
                        async move { storage.set_moderator(&code, target, moderator).await };
                    self.store_then_publish(store, "cannot store a moderator", [event], ctx);
                }
                Ok(None) => {}
                Err(refusal) => self.refuse(conn, &refusal),
            },
            Act::SetPassword(password) => self.set_password(conn, password, ctx),
            Act::Rule(rule) => match self.room.set_rule(conn, rule) {
                Ok(Some(event)) => {
                    let RoomEvent::RulesChanged { rules } = event else {
                        return;
                    };
                    let by = self.room.user_on(conn).cloned();
                    if let Some(by) = by {
                        self.log(&by, rule.as_str(), None, None, ctx);
                    }
                    let (storage, code) = (self.storage.clone(), self.room.code().clone());
                    let store = async move { storage.set_rules(&code, rules).await };
                    self.store_then_publish(store, "cannot store a room's rules", [event], ctx);
                }
                Ok(None) => {}
                Err(refusal) => self.refuse(conn, &refusal),
            },
        }
    }
}

impl Lobby {
    /// A moderation event from another instance of the room.
    pub(super) fn receive_moderation(&mut self, event: RoomEvent, ctx: &mut Context<Self>) {
        match event {
            RoomEvent::Moderated { .. } => {
                let sanctioned = self.room.sanctioned(event, Timestamp::now());
                // The instance that decided a ban may not have known the address: this one did.
                let learned = sanctioned
                    .banned
                    .clone()
                    .filter(|ban| ban.address.is_some());
                self.store_ban(learned, ctx);
                self.fan_out(sanctioned.event.clone());
                self.send_out(sanctioned);
            }
            RoomEvent::OwnerChanged { ref to } => {
                self.room.owner_changed(to);
                self.fan_out(event);
            }
            RoomEvent::RoleChanged { ref user, role } => {
                self.room.role_changed(user, role);
                self.fan_out(event);
            }
            RoomEvent::RulesChanged { rules } => {
                if self.room.rules_changed(rules) {
                    self.fan_out(event);
                }
            }
            RoomEvent::PasswordChanged { ref password, .. } => {
                if self.room.password_changed(password.clone()) {
                    self.fan_out(event);
                }
            }
            RoomEvent::Edited {
                seq,
                ref text,
                edited_at,
            } => {
                self.room.edited(seq, text, edited_at);
                self.fan_out(event);
            }
            RoomEvent::Deleted { seq } => {
                self.room.deleted(seq);
                self.fan_out(event);
            }
            other => self.fan_out(other),
        }
    }

    /// Closes the connections a sanction sent out, and tells everyone they left.
    fn send_out(&mut self, sanctioned: Sanctioned) {
        // The `moderated` frame before it carries the whole reason; the close says who and until when.
        let reason = match &sanctioned.event {
            RoomEvent::Moderated {
                by,
                until: Some(until),
                ..
            } => format!("{} sent you out of the room until {until}", by.name),
            RoomEvent::Moderated {
                sanction: Sanction::Ban,
                by,
                ..
            } => format!("{} banned you from the room", by.name),
            _ => String::new(),
        };
        for conn in sanctioned.closed {
            if let Some(session) = self.fanout.remove(conn) {
                session.do_send(ToSession::Close(Close::new(
                    CloseCode::Kicked,
                    reason.clone(),
                )));
            }
        }
        if let Some(left) = sanctioned.left {
            if let (RoomEvent::Left { user, .. }, Some(presence)) = (&left, &self.presence) {
                shared::forget(presence, user.clone(), presence.instance().clone());
            }
            self.publish(left);
        }
        self.note_if_empty();
    }

    /// Sets or removes the room's password. A new one is hashed first, off this thread, by the
    /// process's bounded hasher; the rank is checked before (no hash for a member) and again after.
    fn set_password(&mut self, conn: ConnId, password: Option<Password>, ctx: &mut Context<Self>) {
        if let Err(refusal) = self.room.may_set_rules(conn) {
            return self.refuse(conn, &refusal);
        }
        let Some(password) = password else {
            return self.apply_password(conn, None, ctx);
        };
        let hasher = self.hasher.clone();
        let hash = async move { hasher.hash(password).await };
        ctx.spawn(
            hash.into_actor(self)
                .map(move |hashed, lobby, ctx| match hashed {
                    Ok(hash) => {
                        lobby.apply_password(conn, Some(PasswordHash::from_stored(hash)), ctx)
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "cannot hash a room password");
                        let invalid = Invalid::new(
                            ErrorCode::Internal,
                            "the password could not be set; try again",
                        );
                        lobby
                            .fanout
                            .tell(conn, ToSession::Frame(error_frame(&invalid, None)));
                    }
                }),
        );
    }

    fn apply_password(
        &mut self,
        conn: ConnId,
        password: Option<PasswordHash>,
        ctx: &mut Context<Self>,
    ) {
        let action = if password.is_some() {
            "set_password"
        } else {
            "remove_password"
        };
        match self.room.set_password(conn, password.clone()) {
            Ok(Some(event)) => {
                if let Some(by) = self.room.user_on(conn).cloned() {
                    self.log(&by, action, None, None, ctx);
                }
                let (storage, code) = (self.storage.clone(), self.room.code().clone());
                let store = async move { storage.set_password(&code, password.as_ref()).await };
                self.store_then_publish(store, "cannot store a room's password", [event], ctx);
            }
            Ok(None) => {}
            Err(refusal) => self.refuse(conn, &refusal),
        }
    }

    /// The owner gives the room to another account, for good: stored (the token voided) before
    /// anyone hears of it, so every instance that loads the room later agrees.
    fn hand_over(&mut self, conn: ConnId, target: UserId, ctx: &mut Context<Self>) {
        let handed = match self.room.hand_over(conn, target) {
            Ok(handed) => handed,
            Err(refusal) => return self.refuse(conn, &refusal),
        };
        self.log(&handed.from, "hand_over", Some(&handed.to), None, ctx);
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let previous = handed.from.account.then_some(handed.from.id);
        let store = async move { storage.hand_over(&code, target, previous).await };
        self.store_then_publish(store, "cannot store a room's new owner", handed.events, ctx);
    }

    /// Stores a ban in the background, if there is one to store.
    fn store_ban(&mut self, ban: Option<Ban>, ctx: &mut Context<Self>) {
        let Some(ban) = ban else {
            return;
        };
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let store = async move { storage.ban(&code, &ban).await };
        self.store_in_background(store, "cannot store a ban", ctx);
    }

    /// Publishes `events` once `store` has written them, holding the room's other events meanwhile:
    /// an instance that loads the room after the news must find it in storage. A failed write is
    /// logged (`what` failed) and the events go out all the same: they have happened in this room.
    fn store_then_publish(
        &mut self,
        store: impl std::future::Future<Output = Result<(), StorageError>> + 'static,
        what: &'static str,
        events: impl IntoIterator<Item = RoomEvent> + 'static,
        ctx: &mut Context<Self>,
    ) {
        let then_publish = store.into_actor(self).map(move |stored, lobby, _| {
            if let Err(err) = stored {
                tracing::error!(error = %err, "{what}");
            }
            for event in events {
                lobby.publish(event);
            }
        });
        self.hold_back(then_publish, ctx);
    }

    /// Tells a member why the room would not do what they asked.
    fn refuse(&mut self, conn: ConnId, refusal: &Refusal) {
        let code = match refusal {
            Refusal::Forbidden | Refusal::NotTheOwnerToken => ErrorCode::Forbidden,
            Refusal::NotInRoom | Refusal::NoSuchMessage | Refusal::NotBanned => {
                ErrorCode::BadRequest
            }
            _ => ErrorCode::Forbidden,
        };
        let invalid = Invalid::new(code, refusal.to_string());
        self.fanout
            .tell(conn, ToSession::Frame(error_frame(&invalid, None)));
    }

    /// Records a moderation action in storage, in the background: the log is for the owner to read
    /// later, and an action is not undone because its line could not be written.
    fn log(
        &mut self,
        actor: &User,
        action: &str,
        target: Option<&User>,
        reason: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let logged = |user: &User| LoggedUser {
            id: user.id.to_string(),
            name: user.name.to_string(),
        };
        let entry = LogEntry {
            at: Timestamp::now(),
            actor: logged(actor),
            action: action.to_owned(),
            target: target.map(logged),
            reason,
        };
        let (storage, code) = (self.storage.clone(), self.room.code().clone());
        let store = async move { storage.log_moderation(&code, &entry).await };
        self.store_in_background(store, "cannot write the moderation log", ctx);
    }

    /// Writes to storage without holding the room's events back; a failure is logged (`what`).
    fn store_in_background(
        &mut self,
        store: impl std::future::Future<Output = Result<(), StorageError>> + 'static,
        what: &'static str,
        ctx: &mut Context<Self>,
    ) {
        ctx.spawn(store.into_actor(self).map(move |stored, _, _| {
            if let Err(err) = stored {
                tracing::error!(error = %err, "{what}");
            }
        }));
    }
}
