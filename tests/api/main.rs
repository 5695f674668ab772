//! Integration tests: a real server on a random port, driven by real WebSocket and HTTP clients.

mod account_rooms;
mod accounts;
mod bad_input;
mod chat;
mod faults;
mod helpers;
mod join;
mod limits;
mod logs;
mod metrics;
mod moderation;
mod network;
mod origin;
mod proxy;
mod resume;
mod room_passwords;
mod rooms_api;
mod storage;
