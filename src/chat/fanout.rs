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
    /// This room's own events up to this stamp were in the member's welcome: they are not sent again.
    after: u64,
}

/// What one delivery did.
pub struct Delivered {
    /// Sessions the frame was handed to.
    pub count: usize,
    /// Members whose mailbox was full: to be evicted, each once.
    pub too_slow: Vec<ConnId>,
}

impl Fanout {
    /// Adds a session that has had its welcome, which covered this room's events up to `after`.
    pub fn add(&mut self, conn: ConnId, session: Recipient<ToSession>, user: UserId, after: u64) {
        self.listeners.insert(
            conn,
            Listener {
                session,
                user,
                after,
            },
        );
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

    /// Tells every member about `event`, the room's event number `stamp`, encoding it once.
    pub fn deliver(&self, stamp: u64, event: &RoomEvent) -> Delivered {
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
            if listener.after >= stamp || typer == Some(listener.user) {
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
