pub mod assets;
pub mod chat;
pub mod config;
pub mod domain;
pub mod origin;
pub mod routes;
pub mod startup;
pub mod telemetry;
