//! The integration tests, in one test binary: against the real Docker engine, a real OpenSSH
//! sshd, and the real berth binary in a pseudo-terminal. One binary links the crate once
//! (thirty linked it thirty times); each file below is the module of one area, and
//! `scripts/run-tests.sh` schedules the tests one by one (cargo-nextest when it is installed).

mod common;

mod cli;
mod compose_drift;
mod console;
mod console_paths;
mod e2e_pty;
mod e2e_ssh;
mod e2e_stats;
mod engine_second;
mod fault_matrix;
mod fleet;
mod fleet_bench;
mod fleet_console;
mod fleet_group;
mod fleet_watch;
mod hostile;
mod kamal;
mod logs;
mod notify;
mod readme;
mod registry;
mod rollback_compose;
mod runbook;
mod runbook_paths;
mod runbook_remote;
mod runbook_ssh;
mod ssh;
mod ssh_bench;
mod ssh_doctor;
mod stale_bench;
mod stats;
mod swarm;
