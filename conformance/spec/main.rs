//! The OCI Distribution Spec (v1.1) conformance workflows, written from the spec text and
//! mirroring the official suite's four categories: pull, push, content discovery and
//! content management, plus the error paths every endpoint shares. Each test starts its own
//! berth on a kernel-chosen port with authentication on, and talks to it the way the
//! official suite does: request, follow the Bearer challenge, retry with the token.
//!
//! `conformance/spec/README.md` lists, by spec section, what each test checks.

#[path = "../../tests/it/common/mod.rs"]
mod common;

mod client;
mod content;

mod discovery;
mod errors;
mod management;
mod pull;
mod push;
mod push_manifests;
mod push_mount;
