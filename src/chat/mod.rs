//! The realtime core: one session actor per connection, one lobby actor per room wrapping a pure
//! room, fan-out to the members connected here, and a registry of the rooms in memory.

pub mod backlog;
pub mod connections;
pub mod fanout;
pub mod fragments;
pub mod history;
pub mod ids;
mod loading;
pub mod lobby;
pub mod messages;
pub mod moderation;
pub mod ordering;
pub mod protocol;
pub mod registry;
pub mod room;
#[cfg(test)]
mod room_properties;
pub mod session;
pub mod settings;
pub mod sign_ins;
