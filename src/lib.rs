//! berth: an operations console for Docker hosts, local or over SSH.
//!
//! The library holds everything that knows nothing of the terminal (engine, ssh, runbook, logs,
//! config, targets) so the CLI commands, the TUI and the integration tests all call the same code.

pub mod cli;
pub mod config;
pub mod context;
pub mod doctor;
pub mod engine;
pub mod ssh;
pub mod target;
pub mod theme;
