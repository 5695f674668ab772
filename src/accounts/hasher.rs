//! Password hashing with Argon2id, off the async workers and a few at a time.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::domain::{Password, SessionToken};

/// Hashes passwords and checks them against stored hashes. Argon2's defaults are OWASP's minimum
/// for Argon2id (19 MiB of memory, two passes, one lane): about 20 ms of one core each.
#[derive(Clone)]
pub struct Hasher {
    /// One hash per core at a time: a burst of sign-ins queues here rather than taking every
    /// blocking thread and 19 MiB per hash with it.
    permits: Arc<Semaphore>,
    /// Checked for usernames nobody has, so an unknown user costs what a wrong password does and
    /// the answer's timing does not tell which it was.
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let dummy = hash(SessionToken::generate().expose().as_bytes())?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(cores)),
            dummy: dummy.into(),
        })
    }

    /// The PHC string (`$argon2id$v=19$…`) of `password`, with a fresh salt.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("the hasher is closed")?;
        actix_web::web::block(move || hash(password.as_bytes()))
            .await
            .context("the hashing thread failed")?
    }

    /// Whether `password` is the one `stored` (a PHC string) was made from; `None` checks it
    /// against the dummy hash, and is always false.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("the hasher is closed")?;
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.to_string());
        let matched = actix_web::web::block(move || {
            match Argon2::default().verify_password(password.as_bytes(), stored.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(err) => Err(anyhow::anyhow!(
                    "a stored password hash is unreadable: {err}"
                )),
            }
        })
        .await
        .context("the hashing thread failed")??;
        Ok(matched && real)
    }
}

fn hash(password: &[u8]) -> anyhow::Result<String> {
    let hashed = Argon2::default()
        .hash_password(password)
        .map_err(|err| anyhow::anyhow!("cannot hash a password: {err}"))?;
    Ok(hashed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(raw: &str) -> Password {
        Password::parse(raw.to_owned()).unwrap()
    }

    #[actix_web::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = Hasher::new().unwrap();
        let stored = hasher.hash(password("correct horse")).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains("correct horse"));
        assert!(hasher
            .verify(password("correct horse"), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify(password("correct horsE"), Some(stored))
            .await
            .unwrap());
    }

    #[actix_web::test]
    async fn the_dummy_hash_matches_nothing() {
        let hasher = Hasher::new().unwrap();
        assert!(!hasher
            .verify(password("anything at all"), None)
            .await
            .unwrap());
    }

    #[actix_web::test]
    async fn two_hashes_of_one_password_differ_by_their_salt() {
        let hasher = Hasher::new().unwrap();
        let one = hasher.hash(password("same password")).await.unwrap();
        let two = hasher.hash(password("same password")).await.unwrap();
        assert_ne!(one, two);
    }
}
