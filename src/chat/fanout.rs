//! Delivery to the members connected here: each event encoded once, the events of one turn of the
//! lobby sent to each member together, and a member too far behind let go rather than allowed an
//! unbounded backlog.

use std::sync::Arc;

use actix::dev::SendError;
use actix::Recipient;
use bytestring::ByteString;
use indexmap::IndexMap;

use super::ids::ConnId;
use super::messages::{Outbox, ToSession};
use super::protocol::event_frame;
use crate::domain::{RoomEvent, UserId};

/// The sessions of one room on this instance, and the events waiting to go to all of them.
///
/// Events wait until the lobby's turn ends ([`Fanout::flush`]), so that at high rates each member
/// gets one envelope for several frames: an actix envelope costs more than the frame in it. Any
/// change to who listens sends what waits first, so every member hears exactly the events
/// delivered while it listened, in order.
#[derive(Default)]
pub struct Fanout {
    listeners: IndexMap<ConnId, Listener>,
    waiting: Vec<ByteString>,
    /// How many of `waiting` are chat messages, for the delivered count.
    waiting_messages: u64,
    /// Reported, and reset, by the next flush.
    outcome: Delivered,
}

struct Listener {
    outbox: Outbox,
    /// Typing is told to everyone but the typer.
    user: UserId,
}

/// What the sends since the last flush did.
#[derive(Default)]
pub struct Delivered {
    /// Chat messages handed to sessions, each counted once per member it went to.
    pub messages: u64,
    /// Members too far behind to take their frames: no longer listening, still to be closed and
    /// let go, each once.
    pub too_slow: Vec<(ConnId, Recipient<ToSession>)>,
}

impl Fanout {
    /// Adds a session that has had its welcome: it hears every event delivered from now on.
    pub fn add(&mut self, conn: ConnId, outbox: Outbox, user: UserId) {
        self.send_waiting();
        self.listeners.insert(conn, Listener { outbox, user });
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Recipient<ToSession>> {
        self.send_waiting();
        self.listeners
            .swap_remove(&conn)
            .map(|listener| listener.outbox.session)
    }

    /// Tells one member something for it alone, past the backlog bound (an answer to its own
    /// frame), after the events already delivered.
    pub fn tell(&mut self, conn: ConnId, what: ToSession) {
        self.send_waiting();
        if let Some(listener) = self.listeners.get(&conn) {
            listener.outbox.session.do_send(what);
        }
    }

    /// Every session, removed, for a server that is stopping; what waits is sent first.
    pub fn drain(&mut self) -> impl Iterator<Item = Recipient<ToSession>> + '_ {
        self.send_waiting();
        self.listeners.drain(..).map(|(_, l)| l.outbox.session)
    }

    /// Delivers `event` to every member, encoding it once; it goes out at the next [`flush`]
    /// (typing at once, to all but the typer). `true` when the fan-out held nothing before, so
    /// the lobby must see that a flush comes.
    ///
    /// [`flush`]: Fanout::flush
    pub fn deliver(&mut self, event: &RoomEvent) -> bool {
        let was_idle = self.is_idle();
        let frame = event_frame(event);
        match event {
            RoomEvent::Typing { user } => {
                self.send_waiting();
                self.send(Arc::from([frame]), Some(user.id), 0);
            }
            RoomEvent::Message(_) => {
                self.waiting.push(frame);
                self.waiting_messages += 1;
            }
            _ => self.waiting.push(frame),
        }
        was_idle && !self.is_idle()
    }

    /// Sends what waits and reports what the sends since the last flush did.
    pub fn flush(&mut self) -> Delivered {
        self.send_waiting();
        std::mem::take(&mut self.outcome)
    }

    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.outcome.messages == 0 && self.outcome.too_slow.is_empty()
    }

    fn send_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let frames: Arc<[ByteString]> = self.waiting.drain(..).collect();
        let messages = std::mem::take(&mut self.waiting_messages);
        self.send(frames, None, messages);
    }

    /// Hands `frames`, of which `messages` are chat messages, to every listener but `except`'s.
    fn send(&mut self, frames: Arc<[ByteString]>, except: Option<UserId>, messages: u64) {
        let mut slow = Vec::new();
        for (conn, listener) in &self.listeners {
            if except == Some(listener.user) {
                continue;
            }
            let outbox = &listener.outbox;
            if !outbox.backlog.reserve(frames.len()) {
                slow.push(*conn);
                continue;
            }
            // `Closed` needs nothing: that session is stopping and its `Leave` is on the way. `Full`
            // is only possible with many frames sent past the bound, and counts as too slow.
            match outbox
                .session
                .try_send(ToSession::Events(Arc::clone(&frames)))
            {
                Ok(()) => self.outcome.messages += messages,
                Err(SendError::Full(_)) => {
                    outbox.backlog.release(frames.len());
                    slow.push(*conn);
                }
                Err(SendError::Closed(_)) => {}
            }
        }
        for conn in slow {
            if let Some(listener) = self.listeners.swap_remove(&conn) {
                self.outcome.too_slow.push((conn, listener.outbox.session));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix::dev::{channel, EnvelopeProxy};
    use actix::{Actor, Addr, Context, Handler};
    use futures_util::{FutureExt, StreamExt};

    use super::*;
    use crate::chat::backlog::Backlog;
    use crate::domain::{DisplayName, User};

    /// A session stand-in that keeps the frames of each envelope it is handed.
    #[derive(Default)]
    struct Session {
        envelopes: Vec<Vec<String>>,
    }

    impl Actor for Session {
        type Context = Context<Self>;
    }

    impl Handler<ToSession> for Session {
        type Result = ();
        fn handle(&mut self, told: ToSession, _: &mut Context<Self>) {
            let frames = match told {
                ToSession::Frame(frame) => vec![frame.to_string()],
                ToSession::Events(frames) => frames.iter().map(ToString::to_string).collect(),
                ToSession::Close(close) => vec![close.reason],
            };
            self.envelopes.push(frames);
        }
    }

    /// A member whose session's mailbox is never read, so what it was handed stays there.
    struct Member {
        conn: ConnId,
        user: User,
        mailbox: channel::AddressReceiver<Session>,
    }

    impl Member {
        /// Joins `fanout` with a backlog bound of `bound` frames.
        fn joining(fanout: &mut Fanout, bound: usize) -> Self {
            let (sender, mailbox) = channel::channel::<Session>(bound);
            let user = User::guest(UserId::random(), DisplayName::parse("someone").unwrap());
            let outbox = Outbox {
                session: Addr::new(sender).recipient(),
                backlog: Backlog::new(bound),
            };
            let conn = ConnId::random();
            fanout.add(conn, outbox, user.id);
            Self {
                conn,
                user,
                mailbox,
            }
        }

        /// The frames of each envelope handed to this member so far, in order.
        fn heard(&mut self) -> Vec<Vec<String>> {
            let mut session = Session::default();
            let mut ctx = Context::new();
            while let Some(Some(mut envelope)) = self.mailbox.next().now_or_never() {
                EnvelopeProxy::handle(&mut envelope, &mut session, &mut ctx);
            }
            session.envelopes
        }
    }

    fn expired(through_seq: u64) -> RoomEvent {
        RoomEvent::Expired { through_seq }
    }

    fn frame(event: &RoomEvent) -> String {
        event_frame(event).to_string()
    }

    #[test]
    fn the_events_of_one_turn_reach_each_member_in_one_envelope_in_order() {
        let mut fanout = Fanout::default();
        let mut ann = Member::joining(&mut fanout, 10);
        let mut bob = Member::joining(&mut fanout, 10);

        assert!(
            fanout.deliver(&expired(1)),
            "the first event asks for a flush"
        );
        assert!(!fanout.deliver(&expired(2)), "one is already coming");
        assert!(ann.heard().is_empty(), "nothing goes before the flush");
        fanout.flush();

        let turn = vec![frame(&expired(1)), frame(&expired(2))];
        assert_eq!(ann.heard(), std::slice::from_ref(&turn));
        assert_eq!(bob.heard(), [turn]);
        assert!(fanout.deliver(&expired(3)), "idle again after the flush");
    }

    #[test]
    fn a_member_hears_exactly_what_was_delivered_while_it_listened() {
        let mut fanout = Fanout::default();
        let mut ann = Member::joining(&mut fanout, 10);
        fanout.deliver(&expired(1));
        let mut bob = Member::joining(&mut fanout, 10);
        fanout.deliver(&expired(2));
        fanout.tell(ann.conn, ToSession::Frame("for ann".into()));
        fanout.deliver(&expired(3));
        fanout.remove(bob.conn);
        fanout.flush();

        assert_eq!(
            ann.heard(),
            [
                vec![frame(&expired(1))],
                vec![frame(&expired(2))],
                vec!["for ann".to_owned()],
                vec![frame(&expired(3))],
            ],
            "what waited went before the answer, in order"
        );
        assert_eq!(
            bob.heard(),
            [vec![frame(&expired(2))], vec![frame(&expired(3))]],
            "nothing from before it joined; everything until it left"
        );
    }

    #[test]
    fn a_member_past_its_backlog_is_let_go_while_the_others_still_hear() {
        let mut fanout = Fanout::default();
        let mut slow = Member::joining(&mut fanout, 3);
        let mut fast = Member::joining(&mut fanout, 100);

        fanout.deliver(&expired(1));
        fanout.deliver(&expired(2));
        let first = fanout.flush();
        fanout.deliver(&expired(3));
        fanout.deliver(&expired(4));
        let second = fanout.flush();
        fanout.deliver(&expired(5));
        let third = fanout.flush();

        assert!(first.too_slow.is_empty(), "two frames fit a bound of three");
        let evicted: Vec<ConnId> = second.too_slow.iter().map(|(conn, _)| *conn).collect();
        assert_eq!(evicted, [slow.conn], "four do not");
        assert!(third.too_slow.is_empty(), "let go once");
        assert_eq!(slow.heard().len(), 1);
        assert_eq!(fast.heard().len(), 3, "the fast member hears everything");
    }

    #[test]
    fn typing_is_heard_at_once_by_everyone_but_the_typer() {
        let mut fanout = Fanout::default();
        let mut typer = Member::joining(&mut fanout, 10);
        let mut other = Member::joining(&mut fanout, 10);
        fanout.deliver(&expired(1));

        let typing = RoomEvent::Typing {
            user: typer.user.clone(),
        };
        fanout.deliver(&typing);

        assert_eq!(
            other.heard(),
            [vec![frame(&expired(1))], vec![frame(&typing)]],
            "after what waited"
        );
        assert_eq!(typer.heard(), [vec![frame(&expired(1))]]);
    }

    #[test]
    fn messages_are_counted_once_per_member_they_reach() {
        let mut fanout = Fanout::default();
        let _ann = Member::joining(&mut fanout, 10);
        let _bob = Member::joining(&mut fanout, 10);
        let message = crate::domain::ChatMessage::sample(1);
        fanout.deliver(&RoomEvent::Message(message));
        fanout.deliver(&expired(1));
        assert_eq!(fanout.flush().messages, 2);
    }

    #[test]
    fn a_removed_member_hears_nothing_more() {
        let mut fanout = Fanout::default();
        let mut gone = Member::joining(&mut fanout, 10);
        assert!(fanout.remove(gone.conn).is_some());
        fanout.deliver(&expired(1));
        fanout.flush();
        assert!(gone.heard().is_empty());
        assert!(fanout.remove(gone.conn).is_none());
    }
}
