//! Shared mode: several real `hubbub` processes on one PostgreSQL database and one Redis server,
//! serving the same rooms. They need a PostgreSQL server (HUBBUB_TEST_POSTGRES) and Debian's
//! redis-server, so they are ignored by a plain `cargo test`; `.ci/run` runs them with
//! `cargo test --test shared -- --ignored`.

mod harness;
#[allow(dead_code)] // Shared with the API suite, which uses more of it.
#[path = "../api/helpers.rs"]
mod helpers;

mod accounts;
mod membership;
mod numbering;
mod outages;
mod restarts;
