//! Who may do what in a room: ranks, and the room's rules that moderators set.

use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use super::{PasswordHash, TokenDigest, User, UserId};

/// A member's rank. An action applies only to someone of lower rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Moderator,
    Owner,
}

impl Role {
    /// Whether someone of this rank may moderate someone of `other`'s.
    pub fn outranks(self, other: Role) -> bool {
        self > other
    }

    pub fn is_member(self) -> bool {
        self == Role::Member
    }
}

/// What a room asks of newcomers, as `welcome` and `room_updated` tell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRules {
    /// Newcomers are refused (4423); people coming back still get in.
    pub locked: bool,
    /// Guests are refused (4401): only signed-in members may join.
    pub accounts_only: bool,
    /// Newcomers need the room's password (a pass from `POST /api/rooms/{code}/pass`).
    pub password: bool,
}

/// One of the room's rules, as a moderator sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Locked(bool),
    AccountsOnly(bool),
}

impl RoomRules {
    /// The rules with `rule` applied.
    pub fn with(self, rule: Rule) -> Self {
        match rule {
            Rule::Locked(locked) => Self { locked, ..self },
            Rule::AccountsOnly(accounts_only) => Self {
                accounts_only,
                ..self
            },
        }
    }
}

impl Rule {
    /// As the moderation log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Locked(true) => "lock",
            Self::Locked(false) => "unlock",
            Self::AccountsOnly(true) => "accounts_only",
            Self::AccountsOnly(false) => "guests_welcome",
        }
    }
}

/// What storage keeps of who owns a room and its rules, loaded with the room.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// The digest of the owner token handed out when the room was made.
    pub token: Option<TokenDigest>,
    /// The account that owns the room: its signed-in creator, or one that bound the token.
    pub account: Option<UserId>,
    /// Identities that proved ownership with the token.
    pub claimed: Vec<UserId>,
    /// People whose messages are refused.
    pub muted: Vec<UserId>,
    /// Accounts the owner made moderators.
    pub moderators: Vec<UserId>,
    /// People kept out for good, until unbanned.
    pub bans: Vec<Ban>,
    /// The hash of the password newcomers need, if the room has one.
    pub password: Option<PasswordHash>,
    pub rules: RoomRules,
}

/// Someone banned from a room: by account, or a guest by identity and, best effort, by the address
/// they came from (shared by everyone behind the same NAT or proxy; a new address gets past it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub user: User,
    pub address: Option<IpAddr>,
}

/// What a moderator did to someone, as `moderated` tells everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sanction {
    /// Sent out, and kept out for a while.
    Kick,
    /// Their messages are refused (`muted`) until unmuted.
    Mute,
    Unmute,
    /// Sent out and kept out until unbanned, across restarts.
    Ban,
    Unban,
}

impl Sanction {
    /// As the moderation log stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kick => "kick",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::Ban => "ban",
            Self::Unban => "unban",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_order_owner_over_moderator_over_member() {
        assert!(Role::Owner.outranks(Role::Moderator));
        assert!(Role::Moderator.outranks(Role::Member));
        assert!(!Role::Moderator.outranks(Role::Moderator));
        assert!(!Role::Moderator.outranks(Role::Owner));
        assert!(!Role::Member.outranks(Role::Member));
    }

    #[test]
    fn the_wire_spells_roles_and_sanctions_in_snake_case() {
        assert_eq!(serde_json::to_value(Role::Moderator).unwrap(), "moderator");
        assert_eq!(
            serde_json::to_value(Sanction::Kick).unwrap(),
            Sanction::Kick.as_str()
        );
    }
}
