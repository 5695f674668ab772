//! The realtime core: one session actor per connection, one lobby actor per room, a registry of rooms.

pub mod connections;
pub mod history;
pub mod lobby;
pub mod messages;
pub mod protocol;
pub mod registry;
pub mod session;
