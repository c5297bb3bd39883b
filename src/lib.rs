//! berth: an operations console for Docker hosts, local or over SSH.
//!
//! The library holds everything that knows nothing of the terminal (engine, ssh, runbook, logs,
//! config, targets) so the CLI commands, the TUI and the integration tests all call the same code.

pub mod account;
pub mod action;
pub mod app;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod config;
pub mod context;
pub mod doctor;
pub mod engine;
pub mod fixtures;
pub mod fleet;
pub mod format;
pub mod forward;
pub mod grouping;
pub mod keymap;
pub mod logs;
pub mod notify;
pub mod registry;
pub mod remote;
pub mod runbook;
pub mod shell;
pub mod ssh;
pub mod ssh_config;
pub mod stats;
pub mod swarm;
pub mod target;
pub mod theme;
pub mod timeline;
pub mod tui;
pub mod ui;
