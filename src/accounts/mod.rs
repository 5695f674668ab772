//! Accounts: registering, signing in and out, and the server-side sessions that keep people signed in.
//!
//! Routes hand this module parsed values and get typed outcomes back; what reaches storage is a
//! password's Argon2id hash and a session token's digest, never the secrets themselves.

mod hasher;
mod throttle;

use std::net::IpAddr;
use std::time::Duration;

pub use hasher::Hasher;
pub use throttle::Throttled;

use crate::domain::{
    Account, AccountKey, Password, PasswordHash, RoomCode, SessionToken, Timestamp, TokenDigest,
    UserId, Username, PASS_LIFETIME,
};
use crate::storage::{Storage, StorageError};
use throttle::Throttle;

/// Why an account request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the username {0} is taken")]
    UsernameTaken(Username),
    /// Unknown username and wrong password alike: telling them apart would list the accounts.
    #[error("wrong username or password")]
    BadCredentials,
    #[error("that is not this room's password")]
    WrongPassword,
    #[error("too many attempts; try again in {} s", .0 .0.as_secs().max(1))]
    Throttled(Throttled),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<Throttled> for AccountError {
    fn from(throttled: Throttled) -> Self {
        Self::Throttled(throttled)
    }
}

/// A session just started: the account, and the token for its cookie.
pub struct SignedIn {
    pub account: Account,
    pub token: SessionToken,
}

/// The accounts service; shared by every worker.
pub struct Accounts {
    storage: Storage,
    hasher: Hasher,
    throttle: Throttle,
    session_lifetime: Duration,
}

impl Accounts {
    /// `hasher` is shared with the rooms, which hash their passwords with it: one bound on
    /// hashes at once for the whole process.
    pub fn new(storage: Storage, session_lifetime: Duration, hasher: Hasher) -> Self {
        Self {
            storage,
            hasher,
            throttle: Throttle::new(),
            session_lifetime,
        }
    }

    /// Checks `password` against the room's `hash` and, if it is the one, hands out a pass into
    /// the room good for [`PASS_LIFETIME`]. Throttled like sign-ins, by address and by room.
    pub async fn room_pass(
        &self,
        room: &RoomCode,
        hash: &PasswordHash,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<String, AccountError> {
        self.throttle.room_attempt(from, room)?;
        let stored = Some(hash.as_str().to_owned());
        if !self.hasher.verify(password, stored).await? {
            return Err(AccountError::WrongPassword);
        }
        Ok(hash.issue_pass(room, Timestamp::now().later_by(PASS_LIFETIME)))
    }

    pub fn session_lifetime(&self) -> Duration {
        self.session_lifetime
    }

    /// Creates an account and signs it in.
    pub async fn register(
        &self,
        username: Username,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<SignedIn, AccountError> {
        self.throttle.register(from)?;
        let key = username.key();
        // Checked before hashing, so a taken name costs no hash; the insert below still decides.
        if self.storage.account_by_key(&key).await?.is_some() {
            return Err(AccountError::UsernameTaken(username));
        }
        let hash = self.hasher.hash(password).await?;
        let account = Account {
            id: UserId::random(),
            username,
        };
        if !self.storage.create_account(&account, &hash).await? {
            return Err(AccountError::UsernameTaken(account.username));
        }
        tracing::info!(account = %account.id, "registered an account");
        self.start_session(account).await
    }

    /// Signs in with a username as typed and a password. Whatever is wrong, the answer is
    /// [`AccountError::BadCredentials`] after one hash's worth of time.
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<SignedIn, AccountError> {
        let key = AccountKey::of(username.trim());
        self.throttle.attempt(from, &key)?;
        let stored = self.storage.account_by_key(&key).await?;
        let (account, hash) = match stored {
            Some(stored) => (Some(stored.account), Some(stored.password_hash)),
            None => (None, None),
        };
        if !self.hasher.verify(password, hash).await? {
            return Err(AccountError::BadCredentials);
        }
        let account = account.ok_or(AccountError::BadCredentials)?;
        self.start_session(account).await
    }

    /// The account `token` is signed in as, if its session is live.
    pub async fn authenticate(
        &self,
        token: &SessionToken,
    ) -> Result<Option<Account>, StorageError> {
        self.storage.session(&token.digest()).await
    }

    pub async fn logout(&self, token: &SessionToken) -> Result<(), StorageError> {
        self.storage.end_session(&token.digest()).await
    }

    /// Changes the password of the account signed in with `token`, and ends its other sessions.
    pub async fn change_password(
        &self,
        account: &Account,
        token: &SessionToken,
        current: Password,
        new: Password,
        from: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        self.check_password(account, current, from).await?;
        let hash = self.hasher.hash(new).await?;
        self.storage.set_password_hash(account.id, &hash).await?;
        self.storage
            .end_other_sessions(account.id, Some(&token.digest()))
            .await?;
        tracing::info!(account = %account.id, "changed a password; other sessions ended");
        Ok(())
    }

    /// Deletes an account and all its sessions, given its password.
    pub async fn delete(
        &self,
        account: &Account,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        self.check_password(account, password, from).await?;
        self.storage.delete_account(account).await?;
        tracing::info!(account = %account.id, "deleted an account");
        Ok(())
    }

    /// Which of `sessions` still sign anyone in.
    pub async fn live(&self, sessions: &[TokenDigest]) -> Result<Vec<TokenDigest>, StorageError> {
        self.storage.live_sessions(sessions).await
    }

    /// Deletes sessions past their expiry (they are refused already; this frees their rows).
    pub async fn forget_expired(&self) -> Result<u64, StorageError> {
        self.throttle.forget_quiet();
        self.storage.delete_expired_sessions().await
    }

    async fn check_password(
        &self,
        account: &Account,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        self.throttle.attempt(from, &account.username.key())?;
        let hash = self
            .storage
            .account_by_id(account.id)
            .await?
            .map(|stored| stored.password_hash);
        if self.hasher.verify(password, hash).await? {
            Ok(())
        } else {
            Err(AccountError::BadCredentials)
        }
    }

    async fn start_session(&self, account: Account) -> Result<SignedIn, AccountError> {
        let token = SessionToken::generate();
        let expires = Timestamp::now().later_by(self.session_lifetime);
        self.storage
            .start_session(&token.digest(), account.id, expires)
            .await?;
        Ok(SignedIn { account, token })
    }
}
