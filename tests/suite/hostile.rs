//! Hostile input from the server never reaches the operator's terminal: escape sequences (OSC, CSI,
//! DCS, C1) in a compose service label, the container-number part of a name, a health check's
//! output and a 100 KB label go through every CLI command, and no output byte may carry them.

use crate::common;

use std::time::Duration;

use common::{Scope, berth, inspect, wait_until};

/// OSC title, BEL, CSI clear, DCS … ST, C1 CSI and C1 OSC: each would act on a terminal.
const EVIL: &str = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{1b}P+q544e\u{1b}\\\u{9b}31m\u{9d}0;x\u{9c}";

/// Bytes a terminal would act on: ESC, BEL, C1 controls raw or UTF-8 encoded, bidi overrides.
fn actionable(bytes: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(bytes);
    if let Some(i) = bytes
        .iter()
        .position(|&b| b == 0x1b || b == 0x07 || b == 0x9b)
    {
        return Some(i);
    }
    text.char_indices()
        .find(|(_, c)| {
            ('\u{80}'..='\u{9f}').contains(c)
                || ('\u{202a}'..='\u{202e}').contains(c)
                || ('\u{2066}'..='\u{2069}').contains(c)
        })
        .map(|(i, _)| i)
}

fn run(args: &[&str], data: &std::path::Path) -> (Vec<u8>, Vec<u8>, bool) {
    let mut cmd = berth();
    cmd.args(args)
        .env("BERTH_DATA_DIR", data)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("berth runs");
    (out.stdout, out.stderr, out.status.success())
}

#[test]
fn no_cli_command_writes_escape_bytes_from_the_server() {
    let scope = Scope::new("hostile");
    let project = scope.project();
    let data = tempfile::tempdir().unwrap();
    let service_label = format!("com.docker.compose.service=svc{EVIL}");
    let number_label = format!("com.docker.compose.container-number=1{EVIL}");
    let project_label = format!("com.docker.compose.project={project}");
    let big = format!("big={}", EVIL.repeat(100_000 / EVIL.len() + 1));
    let health = "printf '\\033]0;PWNED\\007\\033[2Jhealth \\302\\233 ok'; exit 0".to_string();
    let hostile = scope.run(
        "evil-1",
        &[
            "--stop-timeout",
            "1",
            "--network",
            "none",
            "--label",
            &project_label,
            "--label",
            &service_label,
            "--label",
            &number_label,
            "--label",
            &big,
            "--health-cmd",
            &health,
            "--health-interval",
            "1s",
            "-e",
            "LOG_INTERVAL=0.2",
            "berth-test/logger",
        ],
    );
    scope.run_service(
        "calm",
        1,
        &[
            "--network",
            "none",
            "-e",
            "LOG_INTERVAL=0.2",
            "berth-test/logger",
        ],
    );
    let name = scope.name("evil-1");
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            inspect(&name, "{{.State.Health.Status}}") == "healthy"
        }),
        "the hostile container's health check ran"
    );
    let mut checked = Vec::new();
    let missing = format!("nope{EVIL}");
    let commands: Vec<Vec<&str>> = vec![
        vec!["ps"],
        vec!["ps", "--all"],
        vec!["ps", "--json"],
        vec!["logs", &project, "--tail", "5"],
        vec!["logs", &project, "--tail", "5", "--timestamps"],
        vec!["logs", &name, "--tail", "3"],
        vec!["stats", &name],
        vec!["stats", "--json", &name],
        vec!["df"],
        vec!["df", "--json"],
        vec!["restart", &name, "--yes"],
        vec!["restart", &name, "--yes", "--json"],
        vec!["rollback", &name, "--dry-run"],
        vec!["migrate", &name, "--status"],
        vec!["prune", "--dry-run"],
        vec!["audit"],
        vec!["audit", "--json"],
        vec!["doctor"],
        vec!["logs", &missing],
    ];
    for args in &commands {
        let (stdout, stderr, _) = run(args, data.path());
        for (stream, bytes) in [("stdout", &stdout), ("stderr", &stderr)] {
            if let Some(at) = actionable(bytes) {
                let from = at.saturating_sub(80);
                panic!(
                    "berth {} wrote a terminal control on {stream} at byte {at}: {:?}",
                    args.join(" "),
                    String::from_utf8_lossy(&bytes[from..(at + 40).min(bytes.len())])
                );
            }
        }
        checked.push((args.join(" "), stdout.len() + stderr.len()));
    }
    // The test must have seen the hostile data, or it proves nothing.
    let (ps, _, ok) = run(&["ps", "--json"], data.path());
    assert!(ok);
    let ps = String::from_utf8_lossy(&ps);
    assert!(
        ps.contains("\\u001b]0;PWNED"),
        "ps --json keeps the data, escaped"
    );
    assert!(ps.contains("\\u009b"), "C1 escaped in JSON");
    let (logs, _, _) = run(&["logs", &project, "--tail", "3"], data.path());
    let logs = String::from_utf8_lossy(&logs);
    assert!(
        logs.lines()
            .any(|l| l.starts_with("svc") && l.contains(" | seq=")),
        "the hostile prefix is printed, cleaned: {logs}"
    );
    let (audit, _, _) = run(&["audit", "--json"], data.path());
    assert!(
        String::from_utf8_lossy(&audit).contains(&hostile[..12])
            || String::from_utf8_lossy(&audit).contains("evil-1"),
        "the restart reached the audit: {checked:?}"
    );
}
