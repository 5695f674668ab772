//! The SQL of accounts and their sign-in sessions (placeholders as in [`super::database`]).

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::database::Database;
use crate::domain::{Account, AccountKey, Timestamp, TokenDigest, UserId, Username};

/// Digests per lookup: 100 bound parameters, far below either database's limit.
const LOOKUP_CHUNK: usize = 100;

/// An account as stored, with the PHC string of its password's hash.
pub struct StoredAccount {
    pub account: Account,
    pub password_hash: String,
}

impl Database {
    /// Stores a new account; false if its username's key is taken (the unique index decides).
    pub async fn create_account(
        &self,
        account: &Account,
        password_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, username, username_key, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username_key) DO NOTHING",
        )
        .bind(account.id.to_string())
        .bind(account.username.as_str())
        .bind(account.username.key().as_str())
        .bind(password_hash)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .context("failed to store an account")?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn account_by_key(&self, key: &AccountKey) -> anyhow::Result<Option<StoredAccount>> {
        let row =
            sqlx::query("SELECT id, username, password_hash FROM accounts WHERE username_key = $1")
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await
                .context("failed to read an account")?;
        row.as_ref().map(stored_account).transpose()
    }

    /// Every account's username, to hold in memory (see [`super::usernames`]).
    pub async fn usernames(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar("SELECT username FROM accounts")
            .fetch_all(&self.pool)
            .await
            .context("failed to read the usernames")
    }

    pub async fn is_username(&self, key: &AccountKey) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM accounts WHERE username_key = $1")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .context("failed to look up a username")?;
        Ok(row.is_some())
    }

    pub async fn account_by_id(&self, id: UserId) -> anyhow::Result<Option<StoredAccount>> {
        let row = sqlx::query("SELECT id, username, password_hash FROM accounts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .context("failed to read an account")?;
        row.as_ref().map(stored_account).transpose()
    }

    pub async fn set_password_hash(&self, id: UserId, password_hash: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .context("failed to change a password")?;
        Ok(())
    }

    /// Deletes an account and every session it has, in one transaction.
    pub async fn delete_account(&self, id: UserId) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("failed to begin")?;
        sqlx::query("DELETE FROM account_sessions WHERE account_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .context("failed to delete an account's sessions")?;
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .context("failed to delete an account")?;
        tx.commit().await.context("failed to delete an account")?;
        Ok(())
    }

    pub async fn start_session(
        &self,
        digest: &TokenDigest,
        account: UserId,
        now: Timestamp,
        expires: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO account_sessions (token_digest, account_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(digest.as_str())
        .bind(account.to_string())
        .bind(now.as_millis())
        .bind(expires.as_millis())
        .execute(&self.pool)
        .await
        .context("failed to store a session")?;
        Ok(())
    }

    /// The account signed in with `digest`, if that session exists and has not expired by `now`.
    pub async fn session(
        &self,
        digest: &TokenDigest,
        now: Timestamp,
    ) -> anyhow::Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT accounts.id, accounts.username, accounts.password_hash FROM account_sessions \
             JOIN accounts ON accounts.id = account_sessions.account_id \
             WHERE account_sessions.token_digest = $1 AND account_sessions.expires_at > $2",
        )
        .bind(digest.as_str())
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .context("failed to read a session")?;
        Ok(row
            .as_ref()
            .map(stored_account)
            .transpose()?
            .map(|stored| stored.account))
    }

    /// Which of `digests` are sessions that exist and have not expired by `now`.
    pub async fn live_sessions(
        &self,
        digests: &[TokenDigest],
        now: Timestamp,
    ) -> anyhow::Result<Vec<TokenDigest>> {
        let mut live = Vec::with_capacity(digests.len());
        for chunk in digests.chunks(LOOKUP_CHUNK) {
            let placeholders: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT token_digest FROM account_sessions WHERE expires_at > $1 AND token_digest IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(now.as_millis());
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .context("failed to check sessions")?;
            for row in rows {
                let digest: String = row.try_get("token_digest")?;
                live.push(TokenDigest::from_stored(digest));
            }
        }
        Ok(live)
    }

    pub async fn end_session(&self, digest: &TokenDigest) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM account_sessions WHERE token_digest = $1")
            .bind(digest.as_str())
            .execute(&self.pool)
            .await
            .context("failed to end a session")?;
        Ok(())
    }

    /// Ends every session of `account` but `keep`.
    pub async fn end_other_sessions(
        &self,
        account: UserId,
        keep: Option<&TokenDigest>,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM account_sessions WHERE account_id = $1 AND token_digest <> $2")
            .bind(account.to_string())
            .bind(keep.map_or("", TokenDigest::as_str))
            .execute(&self.pool)
            .await
            .context("failed to end an account's sessions")?;
        Ok(())
    }

    /// Deletes sessions that expired before `now`: a session is refused once expired, this frees its row.
    pub async fn delete_expired_sessions(&self, now: Timestamp) -> anyhow::Result<u64> {
        let deleted = sqlx::query("DELETE FROM account_sessions WHERE expires_at <= $1")
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .context("failed to delete expired sessions")?;
        Ok(deleted.rows_affected())
    }
}

fn stored_account(row: &AnyRow) -> anyhow::Result<StoredAccount> {
    let id: String = row.try_get("id")?;
    let username: String = row.try_get("username")?;
    Ok(StoredAccount {
        account: Account {
            id: UserId::from_uuid(Uuid::parse_str(&id).context("a stored account id is no UUID")?),
            username: Username::parse(&username)
                .context("a stored username no longer passes the rules")?,
        },
        password_hash: row.try_get("password_hash")?,
    })
}
