//! A frozen link: the whole sshd stopped (listener and sessions, as a frozen network path looks)
//! for 15 s during a rollback's health wait. Once the run has ended berth prints its result and
//! exits within the exit budget; the audit has the run, the figure of what clients saw says
//! berth's own link was down apart from what it measured, and `berth recover` ends whatever a
//! failed run left.

use crate::common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use berth::runbook::AuditLog;
use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::{BERTH_TIMEOUT, OutputWithin, Scope, docker, http_get, inspect, text, web_service};

#[test]
fn a_link_frozen_in_the_health_wait_does_not_hold_the_result_or_the_exit() {
    let scope = Scope::new("frozen");
    let port = common::free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    let project = scope.project();
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_box_config(
        &sshd,
        "  IdentitiesOnly yes\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n  ConnectTimeout 3\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("server-audit.jsonl");
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[runbook]\nhealth_retries = 10\nhealth_interval_ms = 500\n\n[servers.srv]\ntarget = \"box\"\nremote_audit = \"{}\"\n",
            remote.display()
        ),
    )
    .unwrap();
    let berth = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--config")
            .arg(dir.path().join("config.toml"))
            .args(["-s", "srv"])
            .args(args)
            .env("HOME", home.path())
            .env("SSH_AUTH_SOCK", "")
            .env("BERTH_DATA_DIR", dir.path().join("data"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    };
    let mut child = berth(&[
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:v1",
        "--yes",
    ])
    // Held 10 s as the health wait starts (debug builds): the link is frozen inside it.
    .env("BERTH_TEST_HOLD_STEP", "4")
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // Bounded: every wait below has a deadline, and the reader ends with berth's stdout.
    let deadline = std::time::Instant::now() + BERTH_TIMEOUT;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let here = line.starts_with("→ 4.");
                seen.push(line);
                if here {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("→ 4.")),
        "{}",
        seen.join("\n")
    );
    sshd.freeze_all();
    std::thread::sleep(Duration::from_secs(15));
    sshd.thaw_all();

    // The run ends once the link is back: its result line comes, then the exit, within the exit
    // budget (10 s) and a margin for a loaded machine.
    let mut result = None;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let last = line.starts_with("OK:") || line.starts_with("FAILED:");
                seen.push(line.clone());
                if last {
                    result = Some(line);
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let Some(result) = result else {
        let _ = child.kill();
        panic!("no result after the link came back:\n{}", seen.join("\n"));
    };
    let exited = common::wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(
        exited,
        "berth exited within the bound after its result:\n{}",
        seen.join("\n")
    );
    // The run is audited.
    let audit = AuditLog::at(dir.path().join("data").join("audit.jsonl"))
        .read_last(10)
        .unwrap();
    let phases: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "rollback")
        .map(|e| e.result.as_str())
        .collect();
    assert_eq!(phases.first(), Some(&"started"), "{audit:#?}");
    assert_eq!(phases.len(), 2, "{audit:#?}");
    let last = &audit.iter().rev().find(|e| e.action == "rollback").unwrap();
    assert!(
        result.contains(&last.message),
        "the printed result is the audited one:\n{result}\n{}",
        last.message
    );
    // What clients saw is not counted over berth's own dead link: said apart.
    assert!(result.contains("unknown (link down"), "{result}");

    // With the link back, recover ends whatever the run left, and the service serves.
    let choice = if phases[1] == "ok" {
        None
    } else {
        Some("--restore")
    };
    if let Some(choice) = choice {
        let out = berth(&["recover", "web", "-p", &project, choice, "--yes"])
            .output_within(BERTH_TIMEOUT)
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
        assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v2");
    } else {
        assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    }
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-q", "--filter", &filter]).lines().count(),
        1
    );
}
