//! End-to-end tests of the `auditlog` binary: real processes, real HTTP over a socket.

mod anchors;
mod api;
mod api_rules;
mod backup;
mod cli;
mod crash;
mod export_bundle;
mod ingest_url;
mod interop;
mod metrics;
mod openapi;
mod ops;
mod search_api;
mod search_cli;
mod security;
mod support;
mod tamper;
mod tenancy;
mod ui;
mod webdriver;
mod write_failure;
