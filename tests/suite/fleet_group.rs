//! `berth -s GROUP restart SERVICE` over real sshds in front of the real engine: one plan and one
//! confirmation for the run (the group's name on production), one server at a time, audited per
//! server, a member at the same host left out; a server that drops mid-run stops the run, which
//! says which servers were done and which were not started.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::{BERTH_TIMEOUT, OutputWithin, Scope, inspect, web_service};

const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

fn berth(home: &ClientHome, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.arg("--config")
        .arg(home.path().join("config.toml"))
        .args(args)
        .env("HOME", home.path())
        .env(
            "BERTH_SSH_SYSTEM_CONFIG",
            home.path().join("etc_ssh_config"),
        )
        .env("SSH_AUTH_SOCK", "")
        .env("BERTH_DATA_DIR", home.path().join("data"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
    c
}

fn host(alias: &str, port: u16) -> String {
    format!(
        "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
    )
}

fn sshd_for(home: &ClientHome) -> Sshd {
    let sshd = Sshd::start(SshdOptions::default());
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    sshd
}

/// The servers of the audit's finished runs (`ok` / `failed`), oldest first, for `action`.
fn audited(home: &ClientHome, action: &str) -> Vec<(String, String)> {
    let out = berth(home, &["audit", "--json", "-n", "100"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["action"] == action && e["result"] != "started")
        .map(|e| {
            (
                e["server"].as_str().unwrap_or("").to_string(),
                e["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn group_restart_asks_once_runs_one_server_at_a_time_and_audits_each() {
    let scope = Scope::new("fgroup");
    let web = web_service(&scope, "berth-test/web:v1", common::free_port());
    let project = scope.project();
    let home = ClientHome::new(true);
    let one = sshd_for(&home);
    let two = sshd_for(&home);
    // `again` reaches the same sshd as `app-1`: the same host under another name.
    home.write_config(&format!(
        "{}{}{}",
        host("one", one.port),
        host("two", two.port),
        host("again", one.port)
    ));
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "{FAST}[servers.app-1]\ntarget = \"one\"\n\
             [servers.app-2]\ntarget = \"two\"\nenvironment = \"production\"\n\
             [servers.app-3]\ntarget = \"again\"\n\
             [groups.app]\npattern = \"app-*\"\n"
        ),
    )
    .unwrap();
    let started = || inspect(&web, "{{.State.StartedAt}}");
    let before = started();

    // Production in the group: --yes alone is not enough, and nothing is touched.
    let out = berth(
        &home,
        &["-s", "app", "restart", "web", "-p", &project, "--yes"],
    )
    .output_within(BERTH_TIMEOUT)
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--confirm app"), "{err}");
    assert!(
        err.contains("production (app-2)"),
        "the refusal names the production member: {err}"
    );
    assert_eq!(started(), before, "refused runs change nothing");

    // A dry run of the group's restart: every member's plan, nothing changed, no confirmation.
    let out = berth(
        &home,
        &["-s", "app", "restart", "web", "-p", &project, "--dry-run"],
    )
    .output_within(BERTH_TIMEOUT)
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("[1/2] app-1") && text.contains("[2/2] app-2"),
        "{text}"
    );
    assert_eq!(text.matches("Plan: restart").count(), 2, "{text}");
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    assert_eq!(started(), before, "a dry run changes nothing");
    let out = berth(
        &home,
        &[
            "-s",
            "app",
            "restart",
            "web",
            "-p",
            &project,
            "--yes",
            "--confirm",
            "web",
        ],
    )
    .output_within(BERTH_TIMEOUT)
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("does not match 'app'"), "{err}");
    assert_eq!(started(), before);

    let out = berth(
        &home,
        &[
            "-s",
            "app",
            "restart",
            "web",
            "-p",
            &project,
            "--yes",
            "--confirm",
            "app",
        ],
    )
    .output_within(BERTH_TIMEOUT)
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    // One plan for the run, each server's steps under it.
    assert_eq!(text.matches("Group app:").count(), 1, "{text}");
    assert!(
        text.contains("[1/2] app-1") && text.contains("[2/2] app-2"),
        "{text}"
    );
    assert!(
        text.contains("app-3 is the same host as app-1: skipped"),
        "{text}"
    );
    // One server at a time: app-1's run ends before app-2's begins.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in\n{text}"))
    };
    let first_ok = at("── app-1 (1/2)") + text[at("── app-1 (1/2)")..].find("OK:").unwrap();
    assert!(first_ok < at("── app-2 (2/2)"), "{text}");
    assert!(
        text.contains("OK: group app: done on app-1, app-2"),
        "{text}"
    );
    assert_ne!(started(), before, "the service was restarted");
    assert_eq!(
        inspect(&web, "{{.State.Health.Status}}"),
        "healthy",
        "each run waits for health"
    );
    assert_eq!(
        audited(&home, "restart"),
        [
            ("app-1".to_string(), "ok".to_string()),
            ("app-2".to_string(), "ok".to_string())
        ],
        "one audited run per server, in order"
    );

    // A rollback plans on every server the same way; a dry run shows it and changes nothing.
    let after = started();
    let out = berth(
        &home,
        &[
            "-s",
            "app",
            "rollback",
            "web",
            "-p",
            &project,
            "--to",
            "berth-test/web:v2",
            "--dry-run",
        ],
    )
    .output_within(BERTH_TIMEOUT)
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Group app:") && text.contains("[2/2] app-2"),
        "{text}"
    );
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    assert_eq!(started(), after);

    // A service no server runs: one line, nothing done.
    let out = berth(
        &home,
        &[
            "-s",
            "app",
            "restart",
            "nope-xyz",
            "--yes",
            "--confirm",
            "app",
        ],
    )
    .output_within(BERTH_TIMEOUT)
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no server runs nope-xyz"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_server_that_drops_mid_run_stops_the_group_and_says_what_was_done() {
    let scope = Scope::new("fgdrop");
    let web = web_service(&scope, "berth-test/web:v1", common::free_port());
    let project = scope.project();
    let home = ClientHome::new(true);
    let one = sshd_for(&home);
    let mut two = sshd_for(&home);
    let three = sshd_for(&home);
    home.write_config(&format!(
        "{}{}{}",
        host("one", one.port),
        host("two", two.port),
        host("three", three.port)
    ));
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "{FAST}[servers.app-1]\ntarget = \"one\"\n[servers.app-2]\ntarget = \"two\"\n\
             [servers.app-3]\ntarget = \"three\"\n\
             [groups.app]\nservers = [\"app-1\", \"app-2\", \"app-3\"]\n"
        ),
    )
    .unwrap();

    let mut child = berth(
        &home,
        &["-s", "app", "restart", "web", "-p", &project, "--yes"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let rx = common::lines_of(child.stdout.take().unwrap());
    // app-2's server goes away while app-1 is being restarted: planned, but gone when its turn comes.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let cut = line.contains("── app-1 (1/3)");
                seen.push(line);
                if cut {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("── app-1 (1/3)")),
        "the run never started:\n{}",
        seen.join("\n")
    );
    two.stop();
    let mut status = None;
    common::wait_until(Duration::from_secs(120), Duration::from_millis(200), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!(
            "berth did not finish after app-2 dropped:\n{}",
            seen.join("\n")
        )
    };
    seen.extend(common::rest_of(&rx));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let text = seen.join("\n");
    assert!(!status.success(), "{text}{err}");
    assert!(
        err.contains("group app stopped at app-2")
            && err.contains("done: app-1")
            && err.contains("not started: app-3"),
        "{text}\n{err}"
    );
    // Said as it is: the link to app-2 is down (sshd refuses), not a dockerd to start; its end
    // state is tried briefly, not for the whole check budget, since the run failed already.
    assert!(
        err.contains("the link to the server is down (cannot connect to")
            && err.contains("connection refused")
            && !err.contains("Is dockerd running"),
        "{err}"
    );
    assert!(!text.contains("── app-3"), "app-3 was not touched: {text}");
    let runs = audited(&home, "restart");
    assert_eq!(
        runs.first(),
        Some(&("app-1".to_string(), "ok".to_string())),
        "{runs:?}"
    );
    assert!(
        runs.iter().all(|(s, _)| s != "app-3"),
        "nothing ran on app-3: {runs:?}"
    );
    // The service app-1 restarted is up and healthy: the fleet is left coherent.
    assert!(
        common::wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            inspect(&web, "{{.State.Health.Status}}") == "healthy"
        }),
        "web is healthy after the stopped run"
    );
}

/// A read-only member refuses the whole group's run before anything is planned or changed, in one
/// line naming that server; `--read-only` refuses it too; a dry run, which changes nothing, still
/// shows the plan.
#[test]
fn a_read_only_member_or_read_only_berth_refuses_the_group_run() {
    let scope = Scope::new("fgro");
    let web = web_service(&scope, "berth-test/web:v1", common::free_port());
    let project = scope.project();
    let home = ClientHome::new(true);
    let one = sshd_for(&home);
    let two = sshd_for(&home);
    home.write_config(&format!(
        "{}{}",
        host("one", one.port),
        host("two", two.port)
    ));
    let config = |read_only: bool| {
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "{FAST}[servers.app-1]\ntarget = \"one\"\n\
                 [servers.app-2]\ntarget = \"two\"\nread_only = {read_only}\n\
                 [groups.app]\nservers = [\"app-1\", \"app-2\"]\n"
            ),
        )
        .unwrap()
    };
    let started = || inspect(&web, "{{.State.StartedAt}}");
    let before = started();
    let restart = ["-s", "app", "restart", "web", "-p", &project, "--yes"];

    config(true);
    let out = berth(&home, &restart).output_within(BERTH_TIMEOUT).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("group app: server app-2 is read-only") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty(), "nothing planned or printed");
    assert_eq!(started(), before, "app-1 was not restarted either");

    // A dry run changes nothing: it is shown on a read-only member too.
    let dry = [
        "-s",
        "app",
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:v2",
        "--dry-run",
    ];
    let out = berth(&home, &dry).output_within(BERTH_TIMEOUT).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("[2/2] app-2"), "{text}");
    assert!(text.contains("Dry run: nothing was changed."), "{text}");

    config(false);
    let mut flagged = vec!["--read-only"];
    flagged.extend(restart);
    let out = berth(&home, &flagged).output_within(BERTH_TIMEOUT).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("group app: berth is read-only"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(started(), before);
}
