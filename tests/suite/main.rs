//! The integration tests, in one test binary: against the real Docker engine, a real OpenSSH
//! sshd, and the real berth binary in a pseudo-terminal. One binary links the crate once
//! (thirty linked it thirty times); each file below is the module of one area, and
//! `scripts/run-tests.sh` schedules the tests one by one (cargo-nextest when it is installed).

mod common;

mod backup;
mod cli;
mod compose_drift;
mod console;
mod console_paths;
mod deploy_compose;
mod e2e_pty;
mod e2e_ssh;
mod e2e_stats;
mod engine_second;
mod fault_matrix;
mod fault_replicas;
mod fleet;
mod fleet_bench;
mod fleet_console;
mod fleet_group;
mod fleet_watch;
mod forward;
mod hostile;
mod kamal;
mod logs;
mod migrate_net;
mod notify;
mod readme;
mod registry;
mod restore;
mod rollback_compose;
mod run_link;
mod run_lock;
mod run_terminal;
mod runbook;
mod runbook_paths;
mod runbook_remote;
mod runbook_ssh;
mod ssh;
mod ssh_bench;
mod ssh_config_parity;
mod ssh_doctor;
mod ssh_proxy;
mod ssh_ps_bench;
mod stale_bench;
mod stats;
mod swarm;
mod timeline;
