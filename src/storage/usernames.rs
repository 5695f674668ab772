//! The usernames of a SQLite database, held in memory so that a guest's join asks no query.
//!
//! No guest may go by an account's username, so every guest's join looked the name up, and in the
//! connect storm that query was about a quarter of the server's CPU (docs/BENCHMARKS.md). A SQLite
//! database is this process's own: every account in it was there at start or registered here
//! since, so a set loaded once and kept up to date is exact. A PostgreSQL database may be shared
//! with other instances that register accounts, so there the database is asked every time.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{PoisonError, RwLock};

use super::database::Database;
use crate::domain::AccountKey;

/// The keys of every account's username.
pub struct Usernames {
    keys: RwLock<HashSet<AccountKey>>,
    /// Held across a registration's or a deletion's statement and the change to `keys`, so that
    /// two changes to one name reach the set in the order they reached the database.
    changes: tokio::sync::Mutex<()>,
}

impl Usernames {
    pub async fn load(database: &Database) -> anyhow::Result<Self> {
        let keys = database.usernames().await?;
        Ok(Self {
            keys: RwLock::new(keys.iter().map(|name| AccountKey::of(name)).collect()),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn contains(&self, key: &AccountKey) -> bool {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }

    /// Runs `insert`, the statement that stores an account under `key` unless the key is taken,
    /// and holds `key` if it did.
    pub async fn adding(
        &self,
        key: AccountKey,
        insert: impl Future<Output = anyhow::Result<bool>>,
    ) -> anyhow::Result<bool> {
        let _turn = self.changes.lock().await;
        let inserted = insert.await?;
        if inserted {
            self.keys
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key);
        }
        Ok(inserted)
    }

    /// Runs `delete`, the statement that deletes the account named `key`, and lets `key` go.
    pub async fn removing(
        &self,
        key: &AccountKey,
        delete: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        let _turn = self.changes.lock().await;
        delete.await?;
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Ok(())
    }
}
