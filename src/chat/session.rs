//! One actor per WebSocket connection: frames in become lobby messages, lobby events go out as frames.
//!
//! The only module that uses actix-web-actors, so a move to actix-ws changes this file alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Handler, StreamHandler, WrapFuture,
};
use actix_http::ws::Item;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseReason, ProtocolError};
use governor::{DefaultDirectRateLimiter, RateLimiter};

use super::backlog::Backlog;
use super::connections::Slot;
use super::fragments::{Fragments, Refused};
use super::ids::{ConnId, ResumeSecret};
use super::lobby::Lobby;
use super::messages::{
    Act, Claim, Close, Delete, Edit, Join, Leave, Moderate, Outbox, Post, Rename, ToSession, Typing,
};
use super::protocol::{error_frame, ClientFrame, CloseCode};
use super::registry::{ReachError, Registry};
use super::settings::SessionSettings;
use super::sign_ins::SignIns;
use crate::domain::{
    Account, DisplayName, ErrorCode, Invalid, MessageRef, MessageText, Password, RoomCode, Rule,
    Sanction, SessionToken, TokenDigest, UserId,
};
use crate::instruments;

/// The largest frame, or message reassembled from continuation frames, a client may send.
/// A 4,000-character message is at most 16 KB of UTF-8 inside its JSON; 64 KiB leaves room without inviting abuse.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Typing events are ephemeral hints that clients send on keystrokes; one per connection
/// every 2 s keeps "x is typing…" alive (clients show it for about 5 s) and the rest are dropped.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// Owner-token claims per connection: 5 at once, then one every 12 s, so nobody guesses tokens
/// by the thousand (they are 256 random bits; this keeps the log and the room quiet too).
const CLAIM_BURST: u32 = 5;
const CLAIM_PERIOD: Duration = Duration::from_secs(12);

/// What the upgrade asked for, already validated.
pub struct JoinRequest {
    pub room: RoomCode,
    /// The client's address (the proxy's word for it with --trust-proxy), for the logs.
    pub client: Option<std::net::IpAddr>,
    pub name: DisplayName,
    pub resume: Option<ResumeSecret>,
    pub since: Option<u64>,
    /// Signed in: `name` is the account's username.
    pub signed_in: Option<SignedInAs>,
    /// A pass into a room with a password.
    pub pass: Option<String>,
}

/// The account a connection is signed in as, and the session that signs it in: ending that
/// session (logout, a password change elsewhere) closes the connection through `sign_ins`.
pub struct SignedInAs {
    pub account: Account,
    pub session: TokenDigest,
    pub sign_ins: SignIns,
}

/// Upgrades the request and runs a session in the room served by `lobby`; `registry` loads the
/// room again should that lobby stop before the join reaches it.
pub fn start(
    req: &HttpRequest,
    payload: web::Payload,
    (lobby, registry): (Addr<Lobby>, Registry),
    join: JoinRequest,
    settings: Arc<SessionSettings>,
    slot: Option<Slot>,
) -> Result<HttpResponse, actix_web::Error> {
    let session = Session {
        _slot: slot,
        conn: ConnId::random(),
        flood: RateLimiter::direct_with_clock(settings.flood, settings.flood_clock.clone()),
        claims: None,
        lobby,
        registry,
        room: join.room.clone(),
        client: join.client,
        signed_in: None,
        join: Some(join),
        backlog: Backlog::new(settings.max_backlog),
        settings,
        opened: Instant::now(),
        last_heard: Instant::now(),
        last_typing: None,
        fragments: Fragments::default(),
        closing: None,
        rate_limited: 0,
    };
    upgrade(session, req, payload)
}

/// Upgrades the request only to close it at once: a browser cannot read an HTTP error on a
/// WebSocket handshake, but it can read a close code and reason.
pub fn refuse(
    req: &HttpRequest,
    payload: web::Payload,
    close: Close,
) -> Result<HttpResponse, actix_web::Error> {
    upgrade(Refusal(close), req, payload)
}

fn upgrade<A>(
    actor: A,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error>
where
    A: Actor<Context = ws::WebsocketContext<A>> + StreamHandler<Result<ws::Message, ProtocolError>>,
{
    ws::WsResponseBuilder::new(actor, req, payload)
        .frame_size(MAX_FRAME_BYTES)
        .start()
}

pub struct Session {
    /// This connection's place in its address's count, given back when the session ends.
    _slot: Option<Slot>,
    conn: ConnId,
    lobby: Addr<Lobby>,
    registry: Registry,
    room: RoomCode,
    client: Option<std::net::IpAddr>,
    /// Set when the actor starts, from its join request.
    signed_in: Option<SignedInAs>,
    /// Sent to the lobby when the actor starts.
    join: Option<JoinRequest>,
    settings: Arc<SessionSettings>,
    opened: Instant,
    last_heard: Instant,
    last_typing: Option<Instant>,
    flood: DefaultDirectRateLimiter,
    /// Made at the first claim: most connections never claim, and an idle one should cost little.
    claims: Option<Box<DefaultDirectRateLimiter>>,
    /// A text message arriving in continuation frames, until its last frame.
    fragments: Fragments,
    /// The room events queued for this connection and not yet written; the lobby refuses more past
    /// `--max-backlog` and lets the connection go.
    backlog: Backlog,
    /// Why the server closed the connection, for the closing log line.
    closing: Option<Close>,
    /// Messages refused by the flood limit; counted for the closing log line rather than logged
    /// one by one, so a flood cannot flood the log too.
    rate_limited: u64,
}

type WsContext = ws::WebsocketContext<Session>;

impl Session {
    fn close(&mut self, ctx: &mut WsContext, close: Close) {
        ctx.close(Some(close_reason(&close)));
        self.closing = Some(close);
        ctx.stop();
    }

    fn heartbeat(&mut self, ctx: &mut WsContext) {
        if self.last_heard.elapsed() > self.settings.client_timeout {
            self.close(ctx, Close::new(CloseCode::Timeout, "no answer to pings"));
        } else {
            ctx.ping(b"");
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut WsContext) {
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(invalid) => return self.refuse(&invalid, None, ctx),
        };
        let reference = frame.reference().map(str::to_owned);
        if let Err(invalid) = self.forward(frame, ctx) {
            self.refuse(&invalid, reference.as_deref(), ctx);
        }
    }

    fn refuse(&mut self, invalid: &Invalid, reference: Option<&str>, ctx: &mut WsContext) {
        let code = invalid.code.as_str();
        metrics::counter!(instruments::FRAMES_REFUSED, "code" => code).increment(1);
        if invalid.code == ErrorCode::RateLimited {
            self.rate_limited += 1;
        } else {
            tracing::info!(room = %self.room, conn = %self.conn, code, "refused a frame");
        }
        ctx.text(error_frame(invalid, reference));
    }

    /// Validates a frame's contents and hands it to the lobby, or says why not.
    fn forward(&mut self, frame: ClientFrame, ctx: &mut WsContext) -> Result<(), Invalid> {
        let conn = self.conn;
        match frame {
            ClientFrame::Message { text, reference } => {
                let text = MessageText::parse(&text)?;
                let reference = reference.map(MessageRef::parse).transpose()?;
                self.check_flood()?;
                self.lobby.do_send(Post {
                    conn,
                    text,
                    reference,
                });
            }
            ClientFrame::Rename { name } => {
                if self.signed_in.is_some() {
                    return Err(Invalid::new(
                        ErrorCode::NameLocked,
                        "signed in, you go by your username; change it in your account",
                    ));
                }
                let name = DisplayName::parse(&name)?;
                self.check_flood()?;
                self.rename_unless_reserved(name, ctx);
            }
            ClientFrame::Claim { owner_token, bind } => {
                let clock = &self.settings.flood_clock;
                let claims = self.claims.get_or_insert_with(|| {
                    Box::new(RateLimiter::direct_with_clock(claim_quota(), clock.clone()))
                });
                claims.check().map_err(|_| {
                    Invalid::new(ErrorCode::RateLimited, "too many claims: wait a little")
                })?;
                // A token of another shape is nobody's; it is refused like a wrong one, unechoed.
                let token = SessionToken::parse(&owner_token)
                    .map_or_else(|| SessionToken::generate().digest(), |t| t.digest());
                self.lobby.do_send(Claim { conn, token, bind });
            }
            ClientFrame::Kick { user_id, reason } => {
                self.sanction(Sanction::Kick, user_id, reason)?
            }
            ClientFrame::Mute { user_id, reason } => {
                self.sanction(Sanction::Mute, user_id, reason)?
            }
            ClientFrame::Unmute { user_id } => self.sanction(Sanction::Unmute, user_id, None)?,
            ClientFrame::Ban { user_id, reason } => {
                self.sanction(Sanction::Ban, user_id, reason)?
            }
            ClientFrame::Unban { user_id } => self.sanction(Sanction::Unban, user_id, None)?,
            ClientFrame::Lock {} => self.set_rule(Rule::Locked(true))?,
            ClientFrame::Unlock {} => self.set_rule(Rule::Locked(false))?,
            ClientFrame::AccountsOnly { on } => self.set_rule(Rule::AccountsOnly(on))?,
            ClientFrame::SetPassword { password } => {
                let password = password.map(Password::parse).transpose()?;
                self.check_flood()?;
                let act = Act::SetPassword(password);
                self.lobby.do_send(Moderate { conn, act });
            }
            ClientFrame::Edit { seq, text } => {
                let text = MessageText::parse(&text)?;
                self.check_flood()?;
                self.lobby.do_send(Edit { conn, seq, text });
            }
            ClientFrame::Delete { seq } => {
                self.check_flood()?;
                self.lobby.do_send(Delete { conn, seq });
            }
            ClientFrame::SetRole { user_id, role } => {
                self.check_flood()?;
                let act = Act::SetRole {
                    target: user_id,
                    role,
                };
                self.lobby.do_send(Moderate { conn, act });
            }
            ClientFrame::Typing {} => {
                if self
                    .last_typing
                    .is_none_or(|at| at.elapsed() >= TYPING_INTERVAL)
                {
                    self.last_typing = Some(Instant::now());
                    self.lobby.do_send(Typing { conn });
                }
            }
        }
        Ok(())
    }

    fn sanction(
        &mut self,
        sanction: Sanction,
        target: UserId,
        reason: Option<String>,
    ) -> Result<(), Invalid> {
        let reason = reason.as_deref().map(MessageText::parse).transpose()?;
        self.check_flood()?;
        let act = Act::Sanction {
            sanction,
            target,
            reason,
        };
        self.lobby.do_send(Moderate {
            conn: self.conn,
            act,
        });
        Ok(())
    }

    fn set_rule(&mut self, rule: Rule) -> Result<(), Invalid> {
        self.check_flood()?;
        self.lobby.do_send(Moderate {
            conn: self.conn,
            act: Act::Rule(rule),
        });
        Ok(())
    }

    /// Renames a guest unless an account has that name. The frames after it wait for the answer,
    /// so they still reach the room after the rename.
    fn rename_unless_reserved(&mut self, name: DisplayName, ctx: &mut WsContext) {
        let registry = self.registry.clone();
        let check = async move {
            let reserved = registry.reserved_by_account(&name).await;
            (reserved, name)
        };
        ctx.wait(check.into_actor(self).map(|(reserved, name), act, ctx| {
            let refusal = match reserved {
                Ok(false) => {
                    let conn = act.conn;
                    return act.lobby.do_send(Rename { conn, name });
                }
                Ok(true) => reserved_name(&name),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot check a name against the accounts");
                    Invalid::new(
                        ErrorCode::StorageUnavailable,
                        "names cannot be checked just now; try again shortly",
                    )
                }
            };
            act.refuse(&refusal, None, ctx);
        }));
    }

    fn check_flood(&self) -> Result<(), Invalid> {
        self.flood.check().map_err(|_| {
            Invalid::new(
                ErrorCode::RateLimited,
                "too many messages: slow down; this one was not delivered",
            )
        })
    }

    /// Collects a message sent in pieces, within the same size bound as a single frame.
    fn on_fragment(&mut self, item: Item, ctx: &mut WsContext) {
        match self.fragments.push(item, MAX_FRAME_BYTES) {
            Ok(Some(text)) => self.on_text(&text, ctx),
            Ok(None) => {}
            Err(Refused::Binary) => self.close(ctx, unsupported_binary()),
            Err(Refused::TooBig) => self.close(ctx, too_big()),
            Err(Refused::NotUtf8) => self.close(ctx, not_utf8()),
        }
    }
}

fn claim_quota() -> governor::Quota {
    let burst = std::num::NonZeroU32::new(CLAIM_BURST).expect("a constant above zero");
    governor::Quota::with_period(CLAIM_PERIOD)
        .expect("a constant above zero")
        .allow_burst(burst)
}

/// A guest asked for a name that an account holds (or one that looks like it).
pub fn reserved_name(name: &DisplayName) -> Invalid {
    Invalid::new(
        ErrorCode::NameReserved,
        format!("{name} is an account's username: sign in as them, or pick another name"),
    )
}

fn close_reason(close: &Close) -> CloseReason {
    CloseReason {
        code: ws::CloseCode::from(close.code.number()),
        description: Some(close.reason.clone()),
    }
}

fn unsupported_binary() -> Close {
    Close::new(
        CloseCode::Unsupported,
        "binary frames are not supported; send JSON text frames",
    )
}

fn too_big() -> Close {
    Close::new(
        CloseCode::TooBig,
        format!("messages are limited to {MAX_FRAME_BYTES} bytes"),
    )
}

fn not_utf8() -> Close {
    Close::new(CloseCode::InvalidPayload, "text frames must be valid UTF-8")
}

/// Maps the codec's complaints to the close code RFC 6455 gives each; `None` when the connection
/// itself is gone (actix reports a payload cut short as an `Io` error), which is no violation.
fn protocol_close(err: &ProtocolError) -> Option<Close> {
    match err {
        ProtocolError::Overflow => Some(too_big()),
        // actix reports bad UTF-8 in a text frame as an `Io` error carrying `Utf8Error`'s text.
        ProtocolError::Io(io) if io.to_string().contains("utf-8") => Some(not_utf8()),
        ProtocolError::Io(_) => None,
        other => Some(Close::new(CloseCode::Protocol, other.to_string())),
    }
}

impl Actor for Session {
    type Context = WsContext;

    fn started(&mut self, ctx: &mut WsContext) {
        // The backlog bounds the room events waiting here in frames; the mailbox holds envelopes of
        // at least one such frame each, so it fills no sooner.
        ctx.set_mailbox_capacity(self.settings.max_backlog);
        ctx.run_interval(self.settings.heartbeat_interval, Self::heartbeat);
        // Formatted only if the line is logged.
        let client = self.client.map(tracing::field::display);
        tracing::info!(room = %self.room, conn = %self.conn, client, "connection opened");
        metrics::gauge!(instruments::CONNECTIONS_OPEN).increment(1.0);
        let Some(request) = self.join.take() else {
            return;
        };
        if let Some(signed_in) = &request.signed_in {
            let to = ctx.address().recipient();
            let (session, account) = (&signed_in.session, signed_in.account.id);
            signed_in.sign_ins.add(session, account, self.conn, to);
        }
        let join = Join {
            conn: self.conn,
            outbox: Outbox {
                session: ctx.address().recipient(),
                backlog: self.backlog.clone(),
            },
            name: request.name,
            resume: request.resume,
            since: request.since,
            account: request.signed_in.as_ref().map(|s| s.account.id),
            address: self.client,
            pass: request.pass,
        };
        self.signed_in = request.signed_in;
        let (registry, room) = (self.registry.clone(), self.room.clone());
        // `wait` holds back the client's frames until the lobby has taken the join.
        let joined = join_lobby(registry, room, join)
            .into_actor(self)
            .map(|joined, act, ctx| match joined {
                Ok(lobby) => act.lobby = lobby,
                Err(close) => act.close(ctx, close),
            });
        ctx.wait(joined);
    }

    fn stopped(&mut self, _ctx: &mut WsContext) {
        // Counted before the lobby hears of it, so anyone who sees the `left` sees the count too.
        metrics::gauge!(instruments::CONNECTIONS_OPEN).decrement(1.0);
        let reason = self
            .closing
            .as_ref()
            .map_or("client", |close| close.code.metric_reason());
        metrics::counter!(instruments::DISCONNECTS, "reason" => reason).increment(1);
        self.lobby.do_send(Leave { conn: self.conn });
        if let Some(signed_in) = &self.signed_in {
            signed_in.sign_ins.remove(&signed_in.session, self.conn);
        }
        let (code, reason) = self
            .closing
            .as_ref()
            .map_or((None, ""), |c| (Some(c.code.number()), c.reason.as_str()));
        tracing::info!(
            room = %self.room,
            conn = %self.conn,
            close_code = code,
            reason,
            rate_limited = self.rate_limited,
            seconds = self.opened.elapsed().as_secs(),
            "connection closed"
        );
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for Session {
    fn handle(&mut self, frame: Result<ws::Message, ProtocolError>, ctx: &mut WsContext) {
        self.last_heard = Instant::now();
        match frame {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => self.close(ctx, unsupported_binary()),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_) | ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(err) => match protocol_close(&err) {
                Some(close) => {
                    tracing::info!(room = %self.room, conn = %self.conn, error = %err, "protocol error");
                    self.close(ctx, close);
                }
                None => ctx.stop(),
            },
        }
    }
}

impl Handler<ToSession> for Session {
    type Result = ();

    fn handle(&mut self, told: ToSession, ctx: &mut WsContext) {
        match told {
            ToSession::Frame(frame) => ctx.text(frame),
            ToSession::Events(events) => {
                let frames = events.frames();
                for frame in frames {
                    ctx.text(frame.clone());
                }
                self.backlog.release(frames.len());
            }
            ToSession::Close(close) => self.close(ctx, close),
        }
    }
}

/// Hands `join` to the room's lobby, through the registry, which loads the room again should its
/// lobby have stopped (idle) just before. Answers the lobby that took the join.
async fn join_lobby(registry: Registry, room: RoomCode, join: Join) -> Result<Addr<Lobby>, Close> {
    let try_again = |reason: &str| Close::new(CloseCode::TryAgain, reason);
    match registry.reach(&room, join).await {
        Ok(Some((lobby, ()))) => Ok(lobby),
        Ok(None) => Err(Close::new(
            CloseCode::NoSuchRoom,
            format!("no room has the code {room}"),
        )),
        Err(ReachError::Unloading) => Err(try_again("the room is being reloaded; try again")),
        Err(ReachError::Storage(err)) => {
            tracing::error!(error = %err, "cannot open a room");
            Err(try_again(
                "rooms cannot be loaded right now; try again shortly",
            ))
        }
    }
}

/// A connection refused after the upgrade: it sends its close frame and stops.
struct Refusal(Close);

impl Actor for Refusal {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(close_code = self.0.code.number(), reason = %self.0.reason, "connection refused");
        ctx.close(Some(close_reason(&self.0)));
        ctx.stop();
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for Refusal {
    fn handle(&mut self, _: Result<ws::Message, ProtocolError>, _: &mut Self::Context) {}
}
