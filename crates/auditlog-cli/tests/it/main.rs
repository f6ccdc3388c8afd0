//! End-to-end tests of the `auditlog` binary: real processes, real HTTP over a socket.

mod api;
mod cli;
mod crash;
mod support;
mod tamper;
