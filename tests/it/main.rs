//! berth's integration tests, one binary so a full `cargo test` links once: each module is
//! one area, against the real server on 127.0.0.1:0 (in process, or the `berth` binary as a
//! child where only a process shows the behaviour). Run one area with
//! `cargo test --test it <module>::`.

mod common;
mod opsutil;

mod access;
mod access_log;
mod accounts;
mod api;
mod binary;
mod blobs;
mod browser;
mod config_strict;
mod crash;
mod fsck;
mod gc;
mod gc_race;
mod hiding;
mod keys;
mod kills;
mod ldap;
mod limits;
mod locking;
mod logins;
mod manifests;
mod matrix;
mod memory;
mod oidc;
mod openapi;
mod ops;
mod postgres;
mod referrers;
mod replicas;
mod resume;
mod retention;
mod robustness;
mod s3;
mod s3_crash;
mod s3_ops;
mod storage;
mod tags;
mod tls;
mod token;
mod ui;
mod ui_pages;
mod ui_privacy;
mod upload_race;
mod uploads;
mod wire;
