//! A frozen link: the whole sshd stopped (listener and sessions, as a frozen network path looks)
//! for 15 s during a rollback's health wait. Once the run has ended berth prints its result and
//! exits within the exit budget; the audit has the run, the figure of what clients saw says
//! berth's own link was down apart from what it measured, and `berth recover` ends whatever a
//! failed run left.

use crate::common;

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
    let link = Link::new();
    let (sshd, dir) = (&link.sshd, &link.dir);
    let berth = |args: &[&str]| link.berth(args);
    // Held 10 s as the health wait starts (debug builds): the link is frozen inside it.
    let (mut child, rx) = link.held_rollback(&project, 4);
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

/// A real sshd that berth reaches as server `srv` (keepalive 1 s, 2 misses; connect timeout 3 s),
/// with a server audit file, and the config, data dir and HOME of one test.
struct Link {
    sshd: Sshd,
    home: ClientHome,
    dir: tempfile::TempDir,
}

impl Link {
    fn new() -> Link {
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
        Link { sshd, home, dir }
    }

    /// `berth -s srv ARGS…` with this test's HOME, config and data dir; not started.
    fn berth(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(["-s", "srv"])
            .args(args)
            .env("HOME", self.home.path())
            .env("SSH_AUTH_SOCK", "")
            .env("BERTH_DATA_DIR", self.dir.path().join("data"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    /// `berth rollback web -p PROJECT --to berth-test/web:v1 --yes`, started, held 10 s as step
    /// `hold` starts (debug builds); its stdout as lines.
    fn held_rollback(
        &self,
        project: &str,
        hold: u32,
    ) -> (std::process::Child, mpsc::Receiver<String>) {
        let mut child = self
            .berth(&common::rollback_web_to_v1(project))
            .env("BERTH_TEST_HOLD_STEP", hold.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let rx = common::lines_of(child.stdout.take().unwrap());
        (child, rx)
    }

    /// The rollback lines of the local audit, oldest first.
    fn rollbacks(&self) -> Vec<berth::runbook::AuditEntry> {
        AuditLog::at(self.dir.path().join("data").join("audit.jsonl"))
            .read_last(10)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "rollback")
            .collect()
    }
}

/// Reads lines into `seen` until one satisfies `stop` (returned), the output ends, or `deadline`.
fn read_until(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    deadline: std::time::Instant,
    stop: impl Fn(&str) -> bool,
) -> Option<String> {
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let last = stop(&line);
                seen.push(line.clone());
                if last {
                    return Some(line);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
    None
}

/// The whole sshd frozen as the rollback's last step starts (after the switch, before the step
/// reads anything) and kept frozen 75 s: the run ends over the dead link, and berth prints its
/// result, writes its local audit and exits while the link is still frozen (it read what serves
/// and closed its journal through every reconnect attempt, then checked the end state 20 s more,
/// and exited 107 s after the freeze; now 39 s, 10 of them the held step).
/// Thawed, the engine serves what the switch made, and `berth recover --finish` closes what the
/// dead link kept the run from closing.
#[test]
fn a_link_frozen_past_the_end_of_the_run_does_not_hold_the_exit() {
    const FROZEN: Duration = Duration::from_secs(75);
    let scope = Scope::new("frozenend");
    let port = common::free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    let project = scope.project();
    let link = Link::new();
    // Held 10 s as the last step starts (debug builds): the freeze lands before it reads.
    let (mut child, rx) = link.held_rollback(&project, 7);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + BERTH_TIMEOUT;
    let last_step = read_until(&rx, &mut seen, deadline, |l| l.starts_with("→ 7."));
    assert!(last_step.is_some(), "{}", seen.join("\n"));
    let frozen_at = std::time::Instant::now();
    link.sshd.freeze_all();
    let mut exited_at = None;
    common::wait_until(FROZEN, Duration::from_millis(50), || {
        let exited = child.try_wait().ok().flatten().is_some();
        if exited {
            exited_at = Some(frozen_at.elapsed());
        }
        exited
    });
    link.sshd.thaw_all();
    if exited_at.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let result = read_until(&rx, &mut seen, deadline, |l| {
        l.starts_with("OK:") || l.starts_with("FAILED:")
    });
    let log = seen.join("\n");
    let Some(exited_at) = exited_at else {
        panic!("berth still ran when the link was let go {FROZEN:?} after the freeze:\n{log}");
    };
    println!(
        "frozen past the end of the run: berth exited {:.1} s after the freeze (the last step held 10 s)",
        exited_at.as_secs_f64()
    );
    let result = result.unwrap_or_else(|| panic!("no result line:\n{log}"));
    // What serves could not be read: said as unknown, not guessed.
    assert!(result.contains(&format!("{name}: unknown (")), "{result}");
    // The client probe ended with the switch, before the freeze: its figure is a measured one.
    assert!(
        result.contains("clients saw") && !result.contains("link down"),
        "{result}"
    );

    // The local audit has the run, with the result berth printed.
    let audit = link.rollbacks();
    let phases: Vec<&str> = audit.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(phases.len(), 2, "{audit:#?}\n{log}");
    assert_eq!(phases[0], "started", "{audit:#?}");
    assert!(
        result.contains(&audit[1].message),
        "the printed result is the audited one:\n{result}\n{}",
        audit[1].message
    );

    // Thawed: the switch was done before the freeze, so v1 serves; the run's journal is closed
    // by `berth recover --finish` (the server may have carried out the removal berth sent into
    // the frozen link once it was let go: then nothing is left to recover).
    assert!(
        common::wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            http_get(port, "/version").as_deref() == Some("v1")
        }),
        "{log}"
    );
    if common::has_run_journal(&name) {
        let out = link
            .berth(&["recover", "web", "-p", &project, "--finish", "--yes"])
            .output_within(BERTH_TIMEOUT)
            .unwrap();
        assert!(out.status.success(), "{}\n{log}", text(&out));
    }
    assert!(!common::has_run_journal(&name), "{log}");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"), "{log}");
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v1");
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-q", "--filter", &filter]).lines().count(),
        1,
        "one container serves:\n{log}"
    );
}
