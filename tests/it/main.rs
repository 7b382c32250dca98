//! The integration tests, one binary (temporary stub on the `browser` branch until main's
//! `tests/it/` lands; merge keeps main's version and its `mod browser;` line).
#[path = "../common/mod.rs"]
mod common;

mod browser;
