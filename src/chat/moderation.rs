//! A room's authority as a plain value: who owns it, who was sent out and until when, who is
//! banned, and the rules newcomers meet. The room asks it who outranks whom; it knows no connections.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::domain::{
    Ban, Ownership, PasswordHash, Role, RoomCode, RoomRules, Timestamp, TokenDigest, User, UserId,
};

/// Kicked identities kept at most; past it the one whose block ends first goes, so a flood of
/// kicks cannot grow the room without bound.
const MAX_KICKED: usize = 1_024;

#[derive(Debug, Default)]
pub struct Authority {
    ownership: Ownership,
    /// People who proved ownership with the token while here (a guest owner's identity).
    claimed: HashSet<UserId>,
    /// Identities and accounts sent out, and when they may come back.
    kicked: HashMap<UserId, Timestamp>,
    /// People whose messages are refused.
    muted: HashSet<UserId>,
    /// Accounts the owner made moderators.
    moderators: HashSet<UserId>,
    /// People kept out until unbanned, by id.
    bans: HashMap<UserId, Ban>,
}

/// Whether an owner token matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The token is this room's: the claimant owns it now (or did already).
    Owner,
    /// Not this room's token, or the room has none.
    Refused,
}

impl Authority {
    pub fn new(mut ownership: Ownership) -> Self {
        let claimed = std::mem::take(&mut ownership.claimed).into_iter().collect();
        let muted = std::mem::take(&mut ownership.muted).into_iter().collect();
        let moderators = std::mem::take(&mut ownership.moderators)
            .into_iter()
            .collect();
        let bans = std::mem::take(&mut ownership.bans)
            .into_iter()
            .map(|ban| (ban.user.id, ban))
            .collect();
        Self {
            ownership,
            claimed,
            muted,
            moderators,
            bans,
            ..Self::default()
        }
    }

    pub fn role_of(&self, user: &User) -> Role {
        let owns_account = user.account && self.ownership.account == Some(user.id);
        if owns_account || self.claimed.contains(&user.id) {
            Role::Owner
        } else if user.account && self.moderators.contains(&user.id) {
            Role::Moderator
        } else {
            Role::Member
        }
    }

    pub fn rules(&self) -> RoomRules {
        RoomRules {
            password: self.ownership.password.is_some(),
            ..self.ownership.rules
        }
    }

    /// Sets the room's rules (its password is set apart); `true` if that changed them.
    pub fn set_rules(&mut self, rules: RoomRules) -> bool {
        let rules = RoomRules {
            password: self.ownership.rules.password,
            ..rules
        };
        let changed = self.ownership.rules != rules;
        self.ownership.rules = rules;
        changed
    }

    /// Sets or (`None`) removes the room's password; `true` if that changed it.
    pub fn set_password(&mut self, password: Option<PasswordHash>) -> bool {
        let changed = self.ownership.password != password;
        self.ownership.password = password;
        changed
    }

    /// Whether a newcomer holding `pass` may come in: the room has no password, or the pass is
    /// one its password issued and still good.
    pub fn admits(&self, pass: Option<&str>, room: &RoomCode, now: Timestamp) -> bool {
        match &self.ownership.password {
            None => true,
            Some(hash) => pass.is_some_and(|pass| hash.admits(pass, room, now)),
        }
    }

    /// Checks `token` (its digest) against the room's owner token; a match makes `user` an owner.
    pub fn claim(&mut self, user: &User, token: &TokenDigest) -> Claim {
        let matches = self
            .ownership
            .token
            .as_ref()
            .is_some_and(|own| constant_time_eq(own.as_str(), token.as_str()));
        if !matches {
            return Claim::Refused;
        }
        self.claimed.insert(user.id);
        Claim::Owner
    }

    /// Makes `account` the room's owning account (a signed-in owner binding the token).
    pub fn bind(&mut self, account: UserId) {
        self.ownership.account = Some(account);
    }

    /// Makes an account a moderator, or with `false` a member again; `true` if that changed anything.
    pub fn set_moderator(&mut self, account: UserId, moderator: bool) -> bool {
        if moderator {
            self.moderators.insert(account)
        } else {
            self.moderators.remove(&account)
        }
    }

    /// Hands the room to `account`: it owns the room from now on, and the owner token, with every
    /// claim made with it, is void, so the one who handed it over cannot take it back with it.
    pub fn hand_over(&mut self, account: UserId) {
        self.ownership.account = Some(account);
        self.ownership.token = None;
        self.claimed.clear();
        self.moderators.remove(&account);
    }

    /// `user` was made owner on another instance, which checked the token.
    pub fn note_owner(&mut self, user: UserId) {
        self.claimed.insert(user);
    }

    /// `user` may not come back until `until`.
    pub fn kick(&mut self, user: UserId, until: Timestamp) {
        if self.kicked.len() >= MAX_KICKED && !self.kicked.contains_key(&user) {
            let soonest = self.kicked.iter().min_by_key(|(_, until)| **until);
            if let Some(soonest) = soonest.map(|(id, _)| *id) {
                self.kicked.remove(&soonest);
            }
        }
        self.claimed.remove(&user);
        self.kicked.insert(user, until);
    }

    /// Refuses (or, with `false`, admits again) `user`'s messages; `true` if that changed anything.
    pub fn set_muted(&mut self, user: UserId, muted: bool) -> bool {
        if muted {
            self.muted.insert(user)
        } else {
            self.muted.remove(&user)
        }
    }

    /// Keeps `ban.user` out until unbanned; a guest also by `ban.address`. A ban already there keeps
    /// the address it had when this one knows none (the ban was decided on another instance).
    ///
    /// A loopback address is never banned: it is what every guest has behind a local proxy (an
    /// ngrok agent) whose forwarded addresses the server does not trust, and banning it would
    /// ban them all.
    pub fn ban(&mut self, mut ban: Ban) {
        self.claimed.remove(&ban.user.id);
        if ban.user.account
            || ban
                .address
                .is_some_and(|a| a.is_loopback() || a.is_unspecified())
        {
            ban.address = None;
        }
        let address = ban
            .address
            .or_else(|| self.bans.get(&ban.user.id).and_then(|old| old.address));
        ban.address = address;
        self.bans.insert(ban.user.id, ban);
    }

    /// Lifts `user`'s ban; `true` if there was one.
    pub fn unban(&mut self, user: UserId) -> bool {
        self.bans.remove(&user).is_some()
    }

    /// The banned identity `user` names, if it is banned.
    pub fn ban_of(&self, user: UserId) -> Option<&Ban> {
        self.bans.get(&user)
    }

    /// Whether someone arriving as `user` (signed in to it as an `account`, or a guest from
    /// `address`) is kept out by a ban.
    pub fn is_banned(&self, user: UserId, account: bool, address: Option<IpAddr>) -> bool {
        self.bans.contains_key(&user)
            || (!account
                && address.is_some_and(|address| {
                    self.bans.values().any(|ban| ban.address == Some(address))
                }))
    }

    pub fn is_muted(&self, user: UserId) -> bool {
        self.muted.contains(&user)
    }

    /// When `user` may come back, if they were kicked and that time is still ahead.
    pub fn kicked_until(&self, user: UserId, now: Timestamp) -> Option<Timestamp> {
        self.kicked.get(&user).copied().filter(|until| *until > now)
    }
}

/// Compares two digests without stopping at the first difference, so the time taken says nothing
/// about how much of a guess was right.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DisplayName, SessionToken};

    fn guest() -> User {
        User::guest(UserId::random(), DisplayName::parse("ann").unwrap())
    }

    fn with_token() -> (Authority, SessionToken) {
        let token = SessionToken::generate();
        let ownership = Ownership {
            token: Some(token.digest()),
            ..Ownership::default()
        };
        (Authority::new(ownership), token)
    }

    #[test]
    fn the_rooms_token_makes_its_claimant_owner_and_no_other_token_does() {
        let (mut authority, token) = with_token();
        let (ann, bob) = (guest(), guest());
        assert_eq!(
            authority.claim(&bob, &SessionToken::generate().digest()),
            Claim::Refused
        );
        assert_eq!(authority.role_of(&bob), Role::Member);
        assert_eq!(authority.claim(&ann, &token.digest()), Claim::Owner);
        assert_eq!(authority.role_of(&ann), Role::Owner);
        assert_eq!(authority.role_of(&bob), Role::Member);
    }

    #[test]
    fn a_room_without_a_token_has_no_claimable_owner() {
        let mut authority = Authority::default();
        assert_eq!(
            authority.claim(&guest(), &SessionToken::generate().digest()),
            Claim::Refused
        );
    }

    #[test]
    fn the_owning_account_is_owner_but_a_guest_with_its_id_is_not() {
        let owner = UserId::random();
        let authority = Authority::new(Ownership {
            account: Some(owner),
            ..Ownership::default()
        });
        let mut account = guest();
        account.id = owner;
        assert_eq!(
            authority.role_of(&account),
            Role::Member,
            "a guest is no account"
        );
        account.account = true;
        assert_eq!(authority.role_of(&account), Role::Owner);
    }

    #[test]
    fn a_kick_lasts_until_its_time_and_takes_a_claim_with_it() {
        let (mut authority, token) = with_token();
        let ann = guest();
        authority.claim(&ann, &token.digest());
        let now = Timestamp::now();
        let until = now.later_by(std::time::Duration::from_secs(600));
        authority.kick(ann.id, until);
        assert_eq!(authority.kicked_until(ann.id, now), Some(until));
        assert_eq!(authority.kicked_until(ann.id, until), None);
        assert_eq!(authority.role_of(&ann), Role::Member);
    }

    #[test]
    fn a_guest_ban_holds_for_the_identity_and_its_address_an_account_ban_for_the_account() {
        let mut authority = Authority::default();
        let address: IpAddr = "203.0.113.7".parse().unwrap();
        let (eve, newcomer) = (guest(), guest());
        authority.ban(Ban {
            user: eve.clone(),
            address: Some(address),
        });
        assert!(authority.is_banned(eve.id, false, None));
        assert!(
            authority.is_banned(newcomer.id, false, Some(address)),
            "a new identity, same address"
        );
        assert!(!authority.is_banned(newcomer.id, false, "203.0.113.8".parse().ok()));
        let account = UserId::random();
        assert!(
            !authority.is_banned(account, true, Some(address)),
            "an account is banned by account"
        );

        authority.ban(Ban {
            user: eve.clone(),
            address: None,
        });
        assert_eq!(
            authority.ban_of(eve.id).unwrap().address,
            Some(address),
            "kept"
        );
        assert!(authority.unban(eve.id));
        assert!(!authority.is_banned(newcomer.id, false, Some(address)));
        assert!(!authority.unban(eve.id));

        let local: IpAddr = "127.0.0.1".parse().unwrap();
        authority.ban(Ban {
            user: eve.clone(),
            address: Some(local),
        });
        assert!(
            !authority.is_banned(newcomer.id, false, Some(local)),
            "loopback is everyone"
        );
    }

    #[test]
    fn kicks_are_bounded() {
        let mut authority = Authority::default();
        let now = Timestamp::now();
        for n in 0..MAX_KICKED + 10 {
            authority.kick(
                UserId::random(),
                now.later_by(std::time::Duration::from_secs(n as u64 + 1)),
            );
        }
        assert_eq!(authority.kicked.len(), MAX_KICKED);
    }
}
