//! The connections open under each sign-in session, so that ending a session closes them too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::Recipient;

use super::ids::ConnId;
use super::messages::{Close, ToSession};
use super::protocol::CloseCode;
use crate::domain::{TokenDigest, UserId};

/// Every signed-in connection on this instance, by session; cheap to clone.
#[derive(Clone, Default)]
pub struct SignIns(Arc<Mutex<HashMap<TokenDigest, Session>>>);

struct Session {
    account: UserId,
    connections: HashMap<ConnId, Recipient<ToSession>>,
}

impl SignIns {
    pub fn add(
        &self,
        session: &TokenDigest,
        account: UserId,
        conn: ConnId,
        to: Recipient<ToSession>,
    ) {
        self.lock()
            .entry(session.clone())
            .or_insert_with(|| Session {
                account,
                connections: HashMap::new(),
            })
            .connections
            .insert(conn, to);
    }

    pub fn remove(&self, session: &TokenDigest, conn: ConnId) {
        let mut sessions = self.lock();
        if let Some(open) = sessions.get_mut(session) {
            open.connections.remove(&conn);
            if open.connections.is_empty() {
                sessions.remove(session);
            }
        }
    }

    /// Closes the connections of one ended session with 4401.
    pub fn end(&self, session: &TokenDigest) {
        let ended = self.lock().remove(session);
        ended.into_iter().for_each(close);
    }

    /// Closes the connections of every session of `account` but `keep`'s with 4401.
    pub fn end_account(&self, account: UserId, keep: Option<&TokenDigest>) {
        let ended: Vec<Session> = {
            let mut sessions = self.lock();
            let digests: Vec<TokenDigest> = sessions
                .iter()
                .filter(|(digest, open)| open.account == account && Some(*digest) != keep)
                .map(|(digest, _)| digest.clone())
                .collect();
            digests
                .iter()
                .filter_map(|digest| sessions.remove(digest))
                .collect()
        };
        ended.into_iter().for_each(close);
    }

    /// The sessions connections are open under, to check that they still exist.
    pub fn sessions(&self) -> Vec<TokenDigest> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TokenDigest, Session>> {
        // A panic while holding this lock leaves the map as it was: keep using it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn close(session: Session) {
    for to in session.connections.into_values() {
        to.do_send(ToSession::Close(Close::new(
            CloseCode::SignedOut,
            "signed out: this session has ended",
        )));
    }
}
