//! Delivery to the members connected here: each event encoded once, the events of one turn of the
//! lobby (or, for presence alone, of a short window) sent to each member together, and a member too
//! far behind let go rather than allowed an unbounded backlog.

use std::sync::Arc;
use std::time::Duration;

use actix::dev::SendError;
use actix::Recipient;
use bytestring::ByteString;
use indexmap::IndexMap;

use super::ids::ConnId;
use super::messages::{Events, Outbox, ToSession};
use super::protocol::event_frame;
use crate::domain::{RoomEvent, UserId};

/// How long `joined` and `left` may wait for company. A burst of arrivals (a link shared with a
/// class, everyone reconnecting after a restart) then costs each member one envelope per window
/// rather than one per arrival, and a member list a tenth of a second late is not something a
/// person sees. Anything else delivered meanwhile sends them at once, ahead of it, in order.
pub const PRESENCE_WINDOW: Duration = Duration::from_millis(100);

/// The sessions of one room on this instance, and the events waiting to go to all of them.
///
/// Events wait until the lobby's turn ends ([`Fanout::flush`]), so that at high rates each member
/// gets one envelope for several frames: an actix envelope costs more than the frame in it. A
/// member added meanwhile hears only what is delivered after it; any other change to who listens
/// sends what waits first. So every member hears exactly the events delivered while it listened,
/// in order.
pub struct Fanout {
    listeners: IndexMap<ConnId, Listener>,
    /// The most frames presence may gather for its window: a quarter of the smallest backlog bound
    /// of those listening. A member is let go once its frames pass its bound, so a burst of a
    /// thousand arrivals held for one envelope would let go every member who keeps up.
    presence_batch: usize,
    waiting: Vec<ByteString>,
    /// How many of `waiting` are chat messages, for the delivered count.
    waiting_messages: u64,
    /// Whether anything but presence waits.
    waiting_urgent: bool,
    /// The flush the lobby was last asked for and has not yet made.
    asked: Option<Due>,
    /// Reported, and reset, by the next flush.
    outcome: Delivered,
}

/// When the lobby should flush, as [`Fanout::deliver`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// At the end of this turn: behind the messages already in the mailbox.
    Now,
    /// Within [`PRESENCE_WINDOW`]: only presence waits.
    Soon,
}

struct Listener {
    outbox: Outbox,
    /// Typing is told to everyone but the typer.
    user: UserId,
    /// Where in `waiting` its events begin, and how many chat messages come before that.
    from: usize,
    messages_before: u64,
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

impl Default for Fanout {
    fn default() -> Self {
        Self {
            listeners: IndexMap::new(),
            presence_batch: usize::MAX,
            waiting: Vec::new(),
            waiting_messages: 0,
            waiting_urgent: false,
            asked: None,
            outcome: Delivered::default(),
        }
    }
}

impl Fanout {
    /// Adds a session that has had its welcome: it hears every event delivered from now on, but
    /// none of those waiting (its welcome told it the room as they left it).
    pub fn add(&mut self, conn: ConnId, outbox: Outbox, user: UserId) {
        self.presence_batch = self.presence_batch.min((outbox.backlog.bound() / 4).max(1));
        let listener = Listener {
            outbox,
            user,
            from: self.waiting.len(),
            messages_before: self.waiting_messages,
        };
        self.listeners.insert(conn, listener);
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
    /// (typing at once, to all but the typer). Says when the lobby must flush, if it has not been
    /// told already: `Now` also when a flush was due only `Soon`, or when presence has gathered
    /// all a window may hold.
    ///
    /// [`flush`]: Fanout::flush
    pub fn deliver(&mut self, event: &RoomEvent) -> Option<Due> {
        let frame = event_frame(event);
        match event {
            RoomEvent::Typing { user } => {
                self.send_waiting();
                self.send(Arc::from([frame]), Some(user.id), 0);
            }
            RoomEvent::Joined { .. } | RoomEvent::Left { .. } => self.waiting.push(frame),
            RoomEvent::Message(_) => {
                self.waiting.push(frame);
                self.waiting_messages += 1;
                self.waiting_urgent = true;
            }
            _ => {
                self.waiting.push(frame);
                self.waiting_urgent = true;
            }
        }
        let wanted = if self.waiting_urgent
            || !self.outcome.is_empty()
            || self.waiting.len() >= self.presence_batch
        {
            Due::Now
        } else if !self.waiting.is_empty() {
            Due::Soon
        } else {
            return None;
        };
        match self.asked {
            Some(Due::Now) => None,
            Some(Due::Soon) if wanted == Due::Soon => None,
            _ => {
                self.asked = Some(wanted);
                Some(wanted)
            }
        }
    }

    /// Sends what waits and reports what the sends since the last flush did.
    pub fn flush(&mut self) -> Delivered {
        self.send_waiting();
        self.asked = None;
        std::mem::take(&mut self.outcome)
    }

    fn send_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let frames: Arc<[ByteString]> = self.waiting.drain(..).collect();
        let messages = std::mem::take(&mut self.waiting_messages);
        self.waiting_urgent = false;
        self.send(frames, None, messages);
    }

    /// Hands `frames`, of which `messages` are chat messages, to every listener but `except`'s,
    /// each from where it began to listen; from now on every listener hears everything.
    fn send(&mut self, frames: Arc<[ByteString]>, except: Option<UserId>, messages: u64) {
        let mut slow = Vec::new();
        for (conn, listener) in &mut self.listeners {
            let (from, before) = (listener.from, listener.messages_before);
            (listener.from, listener.messages_before) = (0, 0);
            if except == Some(listener.user) || from >= frames.len() {
                continue;
            }
            let outbox = &listener.outbox;
            let count = frames.len() - from;
            if !outbox.backlog.reserve(count) {
                slow.push(*conn);
                continue;
            }
            // `Closed` needs nothing: that session is stopping and its `Leave` is on the way. `Full`
            // is only possible with many frames sent past the bound, and counts as too slow.
            match outbox
                .session
                .try_send(ToSession::Events(Events::new(Arc::clone(&frames), from)))
            {
                Ok(()) => self.outcome.messages += messages - before,
                Err(SendError::Full(_)) => {
                    outbox.backlog.release(count);
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

impl Delivered {
    fn is_empty(&self) -> bool {
        self.messages == 0 && self.too_slow.is_empty()
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
                ToSession::Events(events) => {
                    events.frames().iter().map(ToString::to_string).collect()
                }
                ToSession::Close(close) => vec![close.reason],
            };
            self.envelopes.push(frames);
        }
    }

    /// A member whose session's mailbox is read only when a test asks what it heard: what it was
    /// handed stays there, counted against its backlog, until then.
    struct Member {
        conn: ConnId,
        user: User,
        mailbox: channel::AddressReceiver<Session>,
        backlog: Backlog,
    }

    impl Member {
        /// Joins `fanout` with a backlog bound of `bound` frames.
        fn joining(fanout: &mut Fanout, bound: usize) -> Self {
            let (sender, mailbox) = channel::channel::<Session>(bound);
            let user = User::guest(UserId::random(), DisplayName::parse("someone").unwrap());
            let backlog = Backlog::new(bound);
            let outbox = Outbox {
                session: Addr::new(sender).recipient(),
                backlog: backlog.clone(),
            };
            let conn = ConnId::random();
            fanout.add(conn, outbox, user.id);
            Self {
                conn,
                user,
                mailbox,
                backlog,
            }
        }

        /// The frames of each envelope handed to this member since last asked, in order; as a
        /// session does, it releases them from its backlog.
        fn heard(&mut self) -> Vec<Vec<String>> {
            let mut session = Session::default();
            let mut ctx = Context::new();
            while let Some(Some(mut envelope)) = self.mailbox.next().now_or_never() {
                EnvelopeProxy::handle(&mut envelope, &mut session, &mut ctx);
            }
            let frames: usize = session.envelopes.iter().map(Vec::len).sum();
            self.backlog.release(frames);
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

        assert_eq!(
            fanout.deliver(&expired(1)),
            Some(Due::Now),
            "the first event asks for a flush"
        );
        assert_eq!(fanout.deliver(&expired(2)), None, "one is already coming");
        assert!(ann.heard().is_empty(), "nothing goes before the flush");
        fanout.flush();

        let turn = vec![frame(&expired(1)), frame(&expired(2))];
        assert_eq!(ann.heard(), std::slice::from_ref(&turn));
        assert_eq!(bob.heard(), [turn]);
        assert_eq!(
            fanout.deliver(&expired(3)),
            Some(Due::Now),
            "idle again after the flush"
        );
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
                vec![frame(&expired(1)), frame(&expired(2))],
                vec!["for ann".to_owned()],
                vec![frame(&expired(3))],
            ],
            "an arrival does not split the turn; what waited went before the answer, in order"
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

    #[test]
    fn a_burst_larger_than_a_window_may_hold_goes_in_batches_a_member_can_take() {
        let mut fanout = Fanout::default();
        let mut ann = Member::joining(&mut fanout, 8);
        let arrivals: Vec<RoomEvent> = (0..20).map(|n| presence(&format!("n{n}"), true)).collect();

        let mut heard = Vec::new();
        for arrival in &arrivals {
            if fanout.deliver(arrival) == Some(Due::Now) {
                assert!(fanout.flush().too_slow.is_empty(), "ann keeps up");
                heard.extend(ann.heard());
            }
        }
        assert!(fanout.flush().too_slow.is_empty());
        heard.extend(ann.heard());

        assert!(
            heard.iter().all(|envelope| envelope.len() == 2),
            "{heard:?}"
        );
        assert_eq!(
            heard.concat(),
            arrivals.iter().map(frame).collect::<Vec<_>>()
        );
    }

    fn presence(name: &str, joined: bool) -> RoomEvent {
        let user = User::guest(UserId::random(), DisplayName::parse(name).unwrap());
        let ts = crate::domain::Timestamp::now();
        if joined {
            RoomEvent::Joined { user, ts }
        } else {
            RoomEvent::Left { user, ts }
        }
    }

    #[test]
    fn a_burst_of_arrivals_reaches_each_member_in_one_envelope() {
        let mut fanout = Fanout::default();
        let mut ann = Member::joining(&mut fanout, 100);
        let arrivals: Vec<RoomEvent> = ["bob", "cy", "di"]
            .into_iter()
            .map(|name| presence(name, true))
            .collect();

        let mut dues = Vec::new();
        let mut newcomers = Vec::new();
        for arrival in &arrivals {
            dues.push(fanout.deliver(arrival));
            newcomers.push(Member::joining(&mut fanout, 100));
        }
        assert_eq!(dues, [Some(Due::Soon), None, None], "presence can wait");
        assert!(ann.heard().is_empty(), "nothing before the window ends");
        fanout.flush();

        let all: Vec<String> = arrivals.iter().map(frame).collect();
        assert_eq!(
            ann.heard(),
            std::slice::from_ref(&all),
            "one envelope for three arrivals"
        );
        for (n, newcomer) in newcomers.iter_mut().enumerate() {
            assert_eq!(
                newcomer.heard(),
                if n + 1 < all.len() {
                    vec![all[n + 1..].to_vec()]
                } else {
                    Vec::<Vec<String>>::new()
                },
                "each newcomer hears the arrivals after its own, not its own"
            );
        }
    }

    #[test]
    fn anything_but_presence_sends_the_waiting_presence_at_once_ahead_of_it() {
        let mut fanout = Fanout::default();
        let mut ann = Member::joining(&mut fanout, 10);
        let left = presence("bob", false);
        assert_eq!(fanout.deliver(&left), Some(Due::Soon));
        let mut cy = Member::joining(&mut fanout, 10);

        let message = RoomEvent::Message(crate::domain::ChatMessage::sample(1));
        assert_eq!(
            fanout.deliver(&message),
            Some(Due::Now),
            "a message does not wait"
        );
        assert_eq!(fanout.deliver(&expired(1)), None);
        assert_eq!(fanout.flush().messages, 2, "the message reached both");

        assert_eq!(
            ann.heard(),
            [vec![frame(&left), frame(&message), frame(&expired(1))]]
        );
        assert_eq!(cy.heard(), [vec![frame(&message), frame(&expired(1))]]);
    }
}
