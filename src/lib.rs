//! berth: an OCI Distribution v1.1 container registry with its own token service.
//!
//! Layers: [`oci`] (HTTP) and [`auth`] (token service) call the domain in [`registry`],
//! which uses [`storage`] for bytes and [`db`] for metadata.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod digest;
pub mod manage;
pub mod manifest;
pub mod names;
pub mod oci;
pub mod ops;
pub mod registry;
pub mod server;
pub mod state;
pub mod storage;
pub mod ui;

/// The cores this process may use (1 if unknown), read once: `available_parallelism`
/// reads cgroup files on Linux, too slow for the per-frame checks that ask.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}
