//! Brute-force throttles on password attempts: per client address and per account.
//!
//! Both are token buckets that refill, so a throttled person waits seconds, never hours: a lockout
//! would let anyone lock a victim out of their own account by guessing wrong on purpose.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::{AccountKey, RoomCode};

/// Password attempts from one address: 5 at once, then one every 12 s (5 a minute).
const PER_ADDRESS_BURST: u32 = 5;
const PER_ADDRESS_PERIOD: Duration = Duration::from_secs(12);
/// Attempts on one account from anywhere: 10 at once, then one every 6 s. Someone guessing from
/// many addresses gets 10 a minute; the holder, caught in that, waits at most 6 s to try.
const PER_ACCOUNT_BURST: u32 = 10;
const PER_ACCOUNT_PERIOD: Duration = Duration::from_secs(6);
/// Registrations from one address: 20 at once, then one every 3 s. Each costs a hash.
const REGISTER_BURST: u32 = 20;
const REGISTER_PERIOD: Duration = Duration::from_secs(3);

pub struct Throttle {
    attempts_by_address: DefaultKeyedRateLimiter<IpAddr>,
    attempts_by_account: DefaultKeyedRateLimiter<AccountKey>,
    /// Attempts at one room's password from anywhere, as for one account's.
    attempts_by_room: DefaultKeyedRateLimiter<RoomCode>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
}

/// Too many attempts: the client may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled(pub Duration);

impl Throttle {
    pub fn new() -> Self {
        Self {
            attempts_by_address: RateLimiter::keyed(quota(PER_ADDRESS_PERIOD, PER_ADDRESS_BURST)),
            attempts_by_account: RateLimiter::keyed(quota(PER_ACCOUNT_PERIOD, PER_ACCOUNT_BURST)),
            attempts_by_room: RateLimiter::keyed(quota(PER_ACCOUNT_PERIOD, PER_ACCOUNT_BURST)),
            registrations: RateLimiter::keyed(quota(REGISTER_PERIOD, REGISTER_BURST)),
        }
    }

    /// Counts a password attempt on `account` from `address` (a client without an address, not
    /// on TCP, is counted by account only).
    pub fn attempt(&self, address: Option<IpAddr>, account: &AccountKey) -> Result<(), Throttled> {
        if let Some(address) = address {
            check(self.attempts_by_address.check_key(&address))?;
        }
        check(self.attempts_by_account.check_key(account))
    }

    /// Counts an attempt at `room`'s password from `address`: the address's bucket is the one its
    /// sign-in attempts use, so guessing rooms buys no more guesses than guessing accounts.
    pub fn room_attempt(&self, address: Option<IpAddr>, room: &RoomCode) -> Result<(), Throttled> {
        if let Some(address) = address {
            check(self.attempts_by_address.check_key(&address))?;
        }
        check(self.attempts_by_room.check_key(room))
    }

    pub fn register(&self, address: Option<IpAddr>) -> Result<(), Throttled> {
        match address {
            Some(address) => check(self.registrations.check_key(&address)),
            None => Ok(()),
        }
    }

    /// Forgets keys whose buckets are full again, so the maps do not grow without bound.
    pub fn forget_quiet(&self) {
        self.attempts_by_address.retain_recent();
        self.attempts_by_account.retain_recent();
        self.attempts_by_room.retain_recent();
        self.registrations.retain_recent();
    }
}

fn quota(period: Duration, burst: u32) -> Quota {
    let burst = NonZeroU32::new(burst).expect("bursts are constants above zero");
    Quota::with_period(period)
        .expect("periods are constants above zero")
        .allow_burst(burst)
}

fn check(
    outcome: Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
) -> Result<(), Throttled> {
    outcome.map_err(|not_until| Throttled(not_until.wait_time_from(DefaultClock::default().now())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_rapid_attempt_from_one_address_is_throttled() {
        let throttle = Throttle::new();
        let address = Some(IpAddr::from([192, 0, 2, 1]));
        for n in 0..5 {
            let account = AccountKey::of(&format!("user{n}"));
            assert_eq!(throttle.attempt(address, &account), Ok(()), "attempt {n}");
        }
        let Err(Throttled(wait)) = throttle.attempt(address, &AccountKey::of("user5")) else {
            panic!("the sixth attempt went through");
        };
        assert!(
            wait > Duration::ZERO && wait <= PER_ADDRESS_PERIOD,
            "{wait:?}"
        );
        // Another address is not held up by the first one's attempts.
        let other = Some(IpAddr::from([192, 0, 2, 2]));
        assert_eq!(throttle.attempt(other, &AccountKey::of("user5")), Ok(()));
    }

    #[test]
    fn attempts_on_one_account_from_many_addresses_are_throttled() {
        let throttle = Throttle::new();
        let account = AccountKey::of("victim");
        for n in 0..PER_ACCOUNT_BURST {
            let address = Some(IpAddr::from([198, 51, 100, n as u8]));
            assert_eq!(throttle.attempt(address, &account), Ok(()));
        }
        let fresh = Some(IpAddr::from([203, 0, 113, 1]));
        let Err(Throttled(wait)) = throttle.attempt(fresh, &account) else {
            panic!("the account's eleventh attempt went through");
        };
        // Backoff, not a lockout: the wait is one refill period at most.
        assert!(wait <= PER_ACCOUNT_PERIOD, "{wait:?}");
    }
}
