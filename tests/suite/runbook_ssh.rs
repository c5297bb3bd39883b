//! The runbook through a real OpenSSH sshd: the link is cut in the middle of a rollback, and after
//! reconnecting the service has exactly one serving container.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::compose::ComposeProject;
use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::{Scope, docker, http_get, wait_until, web_service};

const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

fn berth(home: &ClientHome, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.arg("--config")
        .arg(dir.join("config.toml"))
        .args(args)
        .env("HOME", home.path())
        .env("SSH_AUTH_SOCK", "")
        .env("BERTH_DATA_DIR", dir.join("data"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
    c
}

/// Containers of the project's `web` service that are running.
fn running_web(project: &str) -> Vec<String> {
    let project = format!("label=com.docker.compose.project={project}");
    docker(&[
        "ps",
        "--filter",
        &project,
        "--filter",
        "label=com.docker.compose.service=web",
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// Old containers a rollback renamed and did not finish with (compose's labels still on them).
fn unfinished(project: &str) -> Vec<String> {
    let project = format!("label=com.docker.compose.project={project}");
    docker(&[
        "ps",
        "-a",
        "--filter",
        &project,
        "--filter",
        "name=-berth-old-",
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn sshd_killed_mid_rollback_ends_with_exactly_one_serving_container() {
    // Cut once the old container is stopped and kept: the most fragile moment.
    link_cut_during("kept as", Duration::ZERO, "berth-test/web:v1");
}

// The fault matrix's link half: sshd and its sessions killed in each further step, back 3 s later.

#[test]
fn sshd_killed_at_the_create() {
    link_cut_during("→ 2.", Duration::ZERO, "berth-test/web:v1");
}

#[test]
fn sshd_killed_at_the_start() {
    link_cut_during("→ 3.", Duration::ZERO, "berth-test/web:v1");
}

#[test]
fn sshd_killed_during_the_health_wait() {
    link_cut_during("→ 4.", Duration::from_millis(700), "berth-test/web:v1");
}

#[test]
fn sshd_killed_during_the_automatic_restore() {
    link_cut_during("→ 5.", Duration::from_millis(300), "berth-test/web:bad");
}

#[test]
fn sshd_killed_while_keeping_the_old_container() {
    link_cut_during("→ 6.", Duration::ZERO, "berth-test/web:v1");
}

#[test]
fn sshd_killed_while_removing_the_old_container() {
    link_cut_with(
        "→ 6.",
        Duration::ZERO,
        "berth-test/web:v1",
        &["--remove-old"],
    );
}

#[test]
fn sshd_killed_at_the_retag() {
    let scope = Scope::new("rbsshtag");
    let repo = scope.name("app");
    let tags = common::RepoTags(repo.clone());
    let (prod, v1) = (format!("{repo}:prod"), format!("{repo}:v1"));
    docker(&["tag", "berth-test/web:v2", &prod]);
    docker(&["tag", "berth-test/web:v1", &v1]);
    let port = common::free_port();
    let name = web_service(&scope, &prod, port);
    let web = Web {
        project: scope.project(),
        name,
        port,
        repo: &repo,
    };
    let log = link_cut_on(&web, ". retag: point", Duration::ZERO, &v1, &["--retag"]);
    // The tag the service starts from names what serves, or the runs said the retag failed.
    let (v1_id, prod_id) = (common::image_id(&v1), common::image_id(&prod));
    if http_get(port, "/version").as_deref() == Some("v1") && prod_id != v1_id {
        assert!(
            log.contains("retag failed"),
            "v1 serves, {prod} still names v2, and no run said so:\n{log}"
        );
    }
    drop(tags);
}

#[test]
fn sshd_killed_at_the_pin() {
    let env = "# tags\nWEB_TAG=v2   # by the deploy job\nOTHER=\"kept\"\n";
    let p = ComposeProject::new("rbsshpin", "berth-test/web:${WEB_TAG}", "", Some(env));
    let name = p.up_healthy();
    let web = Web {
        project: p.name.clone(),
        name,
        port: p.port,
        repo: "berth-test/web",
    };
    let log = link_cut_on(
        &web,
        "→ 1.",
        Duration::ZERO,
        "berth-test/web:v1",
        &["--pin"],
    );
    // What the .env declares is what serves: pinned and finished, or restored and written back.
    let pinned = env.replace("WEB_TAG=v2 ", "WEB_TAG=v1 ");
    match http_get(p.port, "/version").as_deref() {
        Some("v1") => assert_eq!(p.env_text(), pinned, "v1 serves: the pin stays\n{log}"),
        Some("v2") => assert_eq!(p.env_text(), env, "v2 serves: the .env is as it was\n{log}"),
        other => panic!("the port serves {other:?}\n{log}"),
    }
}

/// Removes every tag of a repository a test made, when dropped.
/// The service a link-cut rollback runs on.
struct Web<'a> {
    project: String,
    /// The replica's name (what serves on the port at the end).
    name: String,
    port: u16,
    /// The repository of the images it runs (the final line names one of them).
    repo: &'a str,
}

/// A rollback of the plain web fixture, its link cut after the line containing `cut`.
fn link_cut_during(cut: &str, after: Duration, to: &str) {
    link_cut_with(cut, after, to, &[]);
}

/// `link_cut_during` with more rollback flags.
fn link_cut_with(cut: &str, after: Duration, to: &str, extra: &[&str]) {
    let scope = Scope::new("rbssh");
    let port = common::free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    let web = Web {
        project: scope.project(),
        name,
        port,
        repo: "berth-test/web",
    };
    link_cut_on(&web, cut, after, to, extra);
}

/// A rollback over SSH whose link dies `after` the line containing `cut` and comes back 3 s later:
/// whatever the first run could do, it (or the next run) ends with exactly one serving container
/// and says what it did. Returns what both runs printed.
fn link_cut_on(web: &Web, cut: &str, after: Duration, to: &str, extra: &[&str]) -> String {
    let mut sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_box_config(
        &sshd,
        "  IdentitiesOnly yes\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), FAST).unwrap();
    let (project, name, port) = (&web.project, &web.name, web.port);
    let mut args = vec![
        "-s", "box", "rollback", "web", "-p", project, "--to", to, "--yes",
    ];
    args.extend_from_slice(extra);

    let mut child = berth(&home, dir.path(), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
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
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let here = line.contains(cut);
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
        seen.iter().any(|l| l.contains(cut)),
        "the rollback never reached `{cut}`:\n{}",
        seen.join("\n")
    );
    std::thread::sleep(after);
    sshd.stop();
    // The outage itself: longer than berth's keepalive (1 s, 2 misses) takes to notice the drop.
    std::thread::sleep(Duration::from_secs(3));
    sshd.restart();

    let mut first = None;
    wait_until(Duration::from_secs(120), Duration::from_millis(200), || {
        first = child.try_wait().ok().flatten();
        first.is_some()
    });
    let Some(first) = first else {
        let _ = child.kill();
        panic!("berth did not finish after the link came back")
    };
    let _ = reader.join();
    seen.extend(rx.try_iter());
    if first.success() {
        // A run that says it succeeded must have finished the rollback itself.
        assert_eq!(
            http_get(port, "/version").as_deref(),
            Some("v1"),
            "exit 0 but v1 does not serve:\n{}",
            seen.join("\n")
        );
    }

    // A failed first run says what serves now: restored, or rolled back with a step left over.
    if !first.success() {
        let last = seen
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_default();
        assert!(
            last.contains(&format!(" runs {}:", web.repo)),
            "the first run failed ({first:?}) without saying what serves now:\n{}",
            seen.join("\n")
        );
    }

    // Whatever the first run managed, the next connection finds the rest and finishes or restores.
    let mut second = None;
    if running_web(project) != vec![name.clone()]
        || !unfinished(project).is_empty()
        || common::has_run_journal(name)
    {
        let out = berth(
            &home,
            dir.path(),
            &["-s", "box", "rollback", "web", "-p", project, "--yes"],
        )
        .output_within(BERTH_TIMEOUT)
        .unwrap();
        seen.push(String::from_utf8_lossy(&out.stdout).into_owned());
        seen.push(String::from_utf8_lossy(&out.stderr).into_owned());
        second = Some(out.status);
    }
    let log = seen.join("\n");
    if let Some(second) = second {
        assert!(
            second.success(),
            "the recovering run failed ({second:?}):\n{log}"
        );
    }
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            running_web(project) == vec![name.clone()]
        }),
        "not exactly one serving container: {:?}\n{log}",
        running_web(project)
    );
    assert_eq!(
        unfinished(project),
        Vec::<String>::new(),
        "no renamed old container is left for compose to see:\n{log}"
    );
    assert!(
        !common::has_run_journal(name),
        "the server's run journal is closed:\n{log}"
    );
    let version = http_get(port, "/version");
    assert!(
        matches!(version.as_deref(), Some("v1" | "v2")),
        "the port serves {version:?}\n{log}"
    );
    // Shown with --nocapture: what each run printed.
    eprintln!("{log}");
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap_or_default();
    assert!(audit.contains("\"rollback"), "audit: {audit}\n{log}");
    log
}
