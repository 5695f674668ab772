//! The SQL of room authority: owners, rules, and the moderation log.

use anyhow::Context;
use serde::Serialize;
use sqlx::Row;

use super::database::Database;
use crate::domain::{Ban, DisplayName, PasswordHash, RoomCode, RoomRules, Timestamp, User, UserId};

/// One line of a room's moderation log: who did what to whom, when, and why.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub at: Timestamp,
    pub actor: LoggedUser,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<LoggedUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Someone as the log names them: their id, and their name at the time.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedUser {
    pub id: String,
    pub name: String,
}

/// The newest entries a read of the log returns.
const LOG_PAGE: i64 = 500;

impl Database {
    pub async fn set_rules(&self, room: &RoomCode, rules: RoomRules) -> anyhow::Result<()> {
        sqlx::query("UPDATE rooms SET locked = $1, accounts_only = $2 WHERE code = $3")
            .bind(i64::from(rules.locked))
            .bind(i64::from(rules.accounts_only))
            .bind(room.as_str())
            .execute(&self.pool)
            .await
            .context("failed to store a room's rules")?;
        Ok(())
    }

    pub async fn set_password(
        &self,
        room: &RoomCode,
        password: Option<&PasswordHash>,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE rooms SET password_hash = $1 WHERE code = $2")
            .bind(password.map(|hash| hash.as_str().to_owned()))
            .bind(room.as_str())
            .execute(&self.pool)
            .await
            .context("failed to store a room's password")?;
        Ok(())
    }

    /// Makes `to` the room's owning account, voids the owner token and its claims, and makes the
    /// account that handed it over, if any, a moderator: one transaction, so no instance loads
    /// half of it.
    pub async fn hand_over(
        &self,
        room: &RoomCode,
        to: UserId,
        previous: Option<UserId>,
    ) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        sqlx::query(
            "UPDATE rooms SET owner_account = $1, owner_token_digest = NULL WHERE code = $2",
        )
        .bind(to.to_string())
        .bind(room.as_str())
        .execute(&mut *tx)
        .await
        .context("failed to store a room's new owner")?;
        sqlx::query("DELETE FROM room_owner_claims WHERE room = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await
            .context("failed to void a room's owner claims")?;
        sqlx::query("DELETE FROM room_moderators WHERE room = $1 AND user_id = $2")
            .bind(room.as_str())
            .bind(to.to_string())
            .execute(&mut *tx)
            .await
            .context("failed to update room_moderators")?;
        if let Some(previous) = previous {
            sqlx::query(
                "INSERT INTO room_moderators (room, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(room.as_str())
            .bind(previous.to_string())
            .execute(&mut *tx)
            .await
            .context("failed to update room_moderators")?;
        }
        tx.commit()
            .await
            .context("cannot commit a room's new owner")?;
        Ok(())
    }

    pub async fn set_owner_account(&self, room: &RoomCode, account: UserId) -> anyhow::Result<()> {
        sqlx::query("UPDATE rooms SET owner_account = $1 WHERE code = $2")
            .bind(account.to_string())
            .bind(room.as_str())
            .execute(&self.pool)
            .await
            .context("failed to store a room's owner")?;
        Ok(())
    }

    /// Records that `user` proved ownership of `room` with its token.
    pub async fn add_owner_claim(&self, room: &RoomCode, user: UserId) -> anyhow::Result<()> {
        self.set_listed("room_owner_claims", room, user, true).await
    }

    pub async fn owner_claims(&self, room: &RoomCode) -> anyhow::Result<Vec<UserId>> {
        self.users_of("room_owner_claims", room).await
    }

    pub async fn mutes(&self, room: &RoomCode) -> anyhow::Result<Vec<UserId>> {
        self.users_of("room_mutes", room).await
    }

    pub async fn moderators(&self, room: &RoomCode) -> anyhow::Result<Vec<UserId>> {
        self.users_of("room_moderators", room).await
    }

    /// Records that `user` is muted in `room`, or with `false`, no longer.
    pub async fn set_muted(
        &self,
        room: &RoomCode,
        user: UserId,
        muted: bool,
    ) -> anyhow::Result<()> {
        self.set_listed("room_mutes", room, user, muted).await
    }

    pub async fn set_moderator(
        &self,
        room: &RoomCode,
        user: UserId,
        moderator: bool,
    ) -> anyhow::Result<()> {
        self.set_listed("room_moderators", room, user, moderator)
            .await
    }

    /// Records a ban. A ban stored already keeps its address when this one has none: the instance
    /// that decided it may not know the address, the one the target was connected to does.
    pub async fn ban(&self, room: &RoomCode, ban: &Ban) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO room_bans (room, user_id, user_name, account, address) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room, user_id) DO UPDATE \
             SET address = COALESCE(excluded.address, room_bans.address)",
        )
        .bind(room.as_str())
        .bind(ban.user.id.to_string())
        .bind(ban.user.name.as_str())
        .bind(i64::from(ban.user.account))
        .bind(ban.address.map(|address| address.to_string()))
        .execute(&self.pool)
        .await
        .context("failed to store a ban")?;
        Ok(())
    }

    pub async fn unban(&self, room: &RoomCode, user: UserId) -> anyhow::Result<()> {
        self.set_listed("room_bans", room, user, false).await
    }

    pub async fn bans(&self, room: &RoomCode) -> anyhow::Result<Vec<Ban>> {
        let rows = sqlx::query(
            "SELECT user_id, user_name, account, address FROM room_bans WHERE room = $1",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await
        .context("failed to read a room's bans")?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("user_id")?;
                let name: String = row.try_get("user_name")?;
                let account: i64 = row.try_get("account")?;
                let address: Option<String> = row.try_get("address")?;
                let id = uuid::Uuid::parse_str(&id).context("a banned user id is no UUID")?;
                let name = DisplayName::parse(&name)
                    .map_err(|_| anyhow::anyhow!("a banned user's stored name is invalid"))?;
                let user = User {
                    id: UserId::from_uuid(id),
                    name,
                    account: account != 0,
                };
                let address = address
                    .map(|address| address.parse())
                    .transpose()
                    .context("a banned address is no IP address")?;
                Ok(Ban { user, address })
            })
            .collect()
    }

    /// Puts `user` in (or with `false`, takes them out of) a per-room table of user ids.
    async fn set_listed(
        &self,
        table: &str,
        room: &RoomCode,
        user: UserId,
        listed: bool,
    ) -> anyhow::Result<()> {
        let sql = if listed {
            format!("INSERT INTO {table} (room, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        } else {
            format!("DELETE FROM {table} WHERE room = $1 AND user_id = $2")
        };
        sqlx::query(&sql)
            .bind(room.as_str())
            .bind(user.to_string())
            .execute(&self.pool)
            .await
            .with_context(|| format!("failed to update {table}"))?;
        Ok(())
    }

    /// The user ids a per-room table (`room`, `user_id`) holds for `room`.
    async fn users_of(&self, table: &str, room: &RoomCode) -> anyhow::Result<Vec<UserId>> {
        let sql = format!("SELECT user_id FROM {table} WHERE room = $1");
        let rows = sqlx::query(&sql)
            .bind(room.as_str())
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("failed to read {table}"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("user_id")?;
                let id = uuid::Uuid::parse_str(&id).context("a stored user id is no UUID")?;
                Ok(UserId::from_uuid(id))
            })
            .collect()
    }

    pub async fn log_moderation(&self, room: &RoomCode, entry: &LogEntry) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO moderation_log (room, at, actor_id, actor_name, action, target_id, target_name, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(room.as_str())
        .bind(entry.at.as_millis())
        .bind(entry.actor.id.as_str())
        .bind(entry.actor.name.as_str())
        .bind(entry.action.as_str())
        .bind(entry.target.as_ref().map(|t| t.id.clone()))
        .bind(entry.target.as_ref().map(|t| t.name.clone()))
        .bind(entry.reason.clone())
        .execute(&self.pool)
        .await
        .context("failed to log a moderation action")?;
        Ok(())
    }

    /// The room's newest log entries (up to 500), oldest first.
    pub async fn moderation_log(&self, room: &RoomCode) -> anyhow::Result<Vec<LogEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor_id, actor_name, action, target_id, target_name, reason FROM moderation_log \
             WHERE room = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(room.as_str())
        .bind(LOG_PAGE)
        .fetch_all(&self.pool)
        .await
        .context("failed to read the moderation log")?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let at: i64 = row.try_get("at")?;
                let target_id: Option<String> = row.try_get("target_id")?;
                let target_name: Option<String> = row.try_get("target_name")?;
                Ok(LogEntry {
                    at: Timestamp::from_millis(at).context("a log entry's time is out of range")?,
                    actor: LoggedUser {
                        id: row.try_get("actor_id")?,
                        name: row.try_get("actor_name")?,
                    },
                    action: row.try_get("action")?,
                    target: target_id
                        .zip(target_name)
                        .map(|(id, name)| LoggedUser { id, name }),
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        entries.reverse();
        Ok(entries)
    }
}
