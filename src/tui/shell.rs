//! A shell in a container, on the terminal berth hands over to it: audited before the first key
//! reaches the container and after it ends, locally and (with `remote_audit`) on the server.

use crate::action::{Action, Level};
use crate::engine;

/// Runs the shell in container `id` (`name` for the user) with the screen left and raw mode kept,
/// so every key reaches the container. Returns the footer's word on how it ended, and what the
/// audit could not write. The caller takes the terminal back.
pub(super) async fn hand_over(
    engine: Option<engine::Engine>,
    id: &str,
    name: &str,
) -> (Action, Option<String>) {
    let mut audit_failed = None;
    let result = match engine {
        Some(engine) => {
            use crate::runbook::audit::ShellPhase;
            let opened = std::time::Instant::now();
            // The line is written before the first key reaches the container.
            audit_failed = audit_shell(&engine, name, ShellPhase::Started, "", opened).await;
            super::leave_screen();
            print!(
                "berth: shell in {}; exit the shell to return to berth\r\n",
                crate::logs::sanitize::plain(name)
            );
            let result = crate::shell::run(&engine.docker, id).await;
            let (phase, message) = match &result {
                Ok(code) => (ShellPhase::Ended(Some(*code)), format!("exit {code}")),
                Err(e) => (ShellPhase::Ended(None), e.to_string()),
            };
            audit_failed =
                audit_failed.or(audit_shell(&engine, name, phase, &message, opened).await);
            result
        }
        None => Err(color_eyre::eyre::eyre!("not connected")),
    };
    let note = match result {
        Ok(0) => Action::Notify(Level::Info, format!("shell in {name} ended")),
        Ok(code) => Action::Notify(Level::Warn, format!("shell in {name} exited with {code}")),
        Err(e) => Action::Notify(Level::Error, format!("shell in {name}: {e}")),
    };
    (note, audit_failed)
}

/// Writes one audit line of a shell session, locally and (with `remote_audit`) on the server.
/// Returns what failed, for the status line.
async fn audit_shell(
    engine: &engine::Engine,
    container: &str,
    phase: crate::runbook::audit::ShellPhase,
    message: &str,
    opened: std::time::Instant,
) -> Option<String> {
    let mut entry = crate::runbook::AuditEntry::shell(
        &engine.target,
        container,
        phase,
        message,
        opened.elapsed(),
        chrono::Utc::now(),
    );
    entry.ssh_user = engine.ssh.as_ref().map(|s| s.resolved().user.clone());
    let mut failed = crate::runbook::AuditLog::from_env()
        .append(&entry)
        .err()
        .map(|e| e.to_string());
    if let Some(path) = engine.target.remote_audit.as_deref() {
        let remote = crate::remote::SshAppend::run_options(engine).remote;
        let e = match remote {
            Some(r) => r.append(path, &entry.to_line()).await.err(),
            None => Some("the server is not reached over SSH".into()),
        };
        if let Some(e) = e {
            failed = failed.or(Some(format!("remote audit {path}: {e}")));
        }
    }
    failed
}
