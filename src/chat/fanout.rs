//! Delivery to the members connected here: each event encoded once and its bytes shared, and a
//! member whose mailbox is full reported for eviction rather than allowed an unbounded backlog.

use actix::dev::SendError;
use actix::Recipient;
use indexmap::IndexMap;

use super::ids::ConnId;
use super::messages::ToSession;
use super::protocol::event_frame;
use crate::domain::{RoomEvent, UserId};

/// The sessions of one room on this instance.
#[derive(Default)]
pub struct Fanout {
    listeners: IndexMap<ConnId, Listener>,
}

struct Listener {
    session: Recipient<ToSession>,
    /// Typing is told to everyone but the typer.
    user: UserId,
}

/// What one delivery did.
pub struct Delivered {
    /// Sessions the frame was handed to.
    pub count: usize,
    /// Members whose mailbox was full: to be evicted, each once.
    pub too_slow: Vec<ConnId>,
}

impl Fanout {
    /// Adds a session that has had its welcome: it hears every event from now on.
    pub fn add(&mut self, conn: ConnId, session: Recipient<ToSession>, user: UserId) {
        self.listeners.insert(conn, Listener { session, user });
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Recipient<ToSession>> {
        self.listeners.swap_remove(&conn).map(|l| l.session)
    }

    /// Tells one member something for it alone, past the backlog bound (an answer to its own frame).
    pub fn tell(&self, conn: ConnId, what: ToSession) {
        if let Some(listener) = self.listeners.get(&conn) {
            listener.session.do_send(what);
        }
    }

    /// Every session, removed, for a server that is stopping.
    pub fn drain(&mut self) -> impl Iterator<Item = Recipient<ToSession>> + '_ {
        self.listeners.drain(..).map(|(_, l)| l.session)
    }

    /// Tells every member about `event`, encoding it once.
    pub fn deliver(&self, event: &RoomEvent) -> Delivered {
        let typer = match event {
            RoomEvent::Typing { user } => Some(user.id),
            _ => None,
        };
        let frame = event_frame(event);
        let mut delivered = Delivered {
            count: 0,
            too_slow: Vec::new(),
        };
        for (conn, listener) in &self.listeners {
            if typer == Some(listener.user) {
                continue;
            }
            // `try_send` respects the session's mailbox capacity, the per-connection backlog bound.
            // `Closed` needs nothing: that session is stopping and its `Leave` is on the way.
            match listener.session.try_send(ToSession::Frame(frame.clone())) {
                Ok(()) => delivered.count += 1,
                Err(SendError::Full(_)) => delivered.too_slow.push(*conn),
                Err(SendError::Closed(_)) => {}
            }
        }
        delivered
    }
}

#[cfg(test)]
mod tests {
    use actix::dev::channel;
    use actix::{Actor, Addr, Context, Handler};

    use super::*;
    use crate::domain::{DisplayName, User};

    /// A session stand-in; the tests read nothing from it, they only fill its mailbox.
    struct Session;

    impl Actor for Session {
        type Context = Context<Self>;
    }

    impl Handler<ToSession> for Session {
        type Result = ();
        fn handle(&mut self, _: ToSession, _: &mut Context<Self>) {}
    }

    /// A session whose mailbox holds `capacity` frames and is never read, and its user. The mailbox
    /// stays open while the returned receiver lives.
    fn session(
        capacity: usize,
    ) -> (
        Recipient<ToSession>,
        User,
        channel::AddressReceiver<Session>,
    ) {
        let (sender, mailbox) = channel::channel::<Session>(capacity);
        let user = User::guest(UserId::random(), DisplayName::parse("someone").unwrap());
        (Addr::new(sender).recipient(), user, mailbox)
    }

    fn expired(through_seq: u64) -> RoomEvent {
        RoomEvent::Expired { through_seq }
    }

    #[test]
    fn a_member_whose_mailbox_is_full_is_reported_while_the_others_still_hear() {
        let mut fanout = Fanout::default();
        let (slow, slow_user, _slow_mailbox) = session(2);
        let (fast, fast_user, _fast_mailbox) = session(100);
        let (slow_conn, fast_conn) = (ConnId::random(), ConnId::random());
        fanout.add(slow_conn, slow, slow_user.id);
        fanout.add(fast_conn, fast, fast_user.id);

        let first = fanout.deliver(&expired(1));
        let second = fanout.deliver(&expired(2));
        let third = fanout.deliver(&expired(3));

        assert_eq!((first.count, second.count), (2, 2));
        assert!(first.too_slow.is_empty() && second.too_slow.is_empty());
        assert_eq!(third.count, 1, "the fast member still hears it");
        assert_eq!(third.too_slow, [slow_conn]);
    }

    #[test]
    fn typing_is_heard_by_everyone_but_the_typer() {
        let mut fanout = Fanout::default();
        let (typer, typer_user, _typer_mailbox) = session(10);
        let (other, other_user, _other_mailbox) = session(10);
        fanout.add(ConnId::random(), typer, typer_user.id);
        fanout.add(ConnId::random(), other, other_user.id);

        let typing = RoomEvent::Typing { user: typer_user };
        assert_eq!(fanout.deliver(&typing).count, 1);
    }

    #[test]
    fn a_removed_member_hears_nothing_more() {
        let mut fanout = Fanout::default();
        let (gone, user, _mailbox) = session(10);
        let conn = ConnId::random();
        fanout.add(conn, gone, user.id);
        assert!(fanout.remove(conn).is_some());
        assert_eq!(fanout.deliver(&expired(1)).count, 0);
        assert!(fanout.remove(conn).is_none());
    }
}
