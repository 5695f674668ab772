//! Accounts: a person known across rooms and devices by a stable id and a username.

use serde::Serialize;

use super::{UserId, Username};

/// What `GET /api/account` answers and what a room knows of a signed-in member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Also the member's user id in every room: one person, one id, on every device.
    pub id: UserId,
    pub username: Username,
}
