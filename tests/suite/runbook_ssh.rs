//! The runbook through a real OpenSSH sshd: the link is cut in the middle of a rollback, and after
//! reconnecting the service has exactly one serving container.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::compose::ComposeProject;
use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::{Scope, docker, http_get, wait_until, web_service};

const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

fn berth(home: &ClientHome, dir: &std::path::Path, args: &[&str]) -> Command {
    common::sshd::berth_over(home, dir, args)
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
        "name=-berth-kept-",
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn sshd_killed_mid_rollback_ends_with_exactly_one_serving_container() {
    // Cut once the old container is stopped and set aside: the most fragile moment.
    link_cut_during(
        "stopped and set aside as",
        Duration::ZERO,
        "berth-test/web:v1",
        RESTORE,
    );
}

// The fault matrix's link half: sshd and its sessions killed in each further step, back 3 s later;
// what is left is recovered with `berth recover --restore` before the switch, `--finish` after.

#[test]
fn sshd_killed_at_the_create() {
    link_cut_during("→ 2.", Duration::ZERO, "berth-test/web:v1", RESTORE);
}

#[test]
fn sshd_killed_at_the_start() {
    link_cut_during("→ 3.", Duration::ZERO, "berth-test/web:v1", RESTORE);
}

#[test]
fn sshd_killed_during_the_health_wait() {
    link_cut_during(
        "→ 4.",
        Duration::from_millis(700),
        "berth-test/web:v1",
        RESTORE,
    );
}

#[test]
fn sshd_killed_during_the_automatic_restore() {
    link_cut_during(
        "→ 5.",
        Duration::from_millis(300),
        "berth-test/web:bad",
        RESTORE,
    );
}

#[test]
fn sshd_killed_while_keeping_the_old_container() {
    link_cut_during("→ 6.", Duration::ZERO, "berth-test/web:v1", FINISH);
}

#[test]
fn sshd_killed_while_removing_the_old_container() {
    link_cut_with(
        Cut {
            at: "→ 6.",
            after: Duration::ZERO,
            fault: Fault::Kill,
            recover: FINISH,
        },
        "berth-test/web:v1",
        &["--remove-old"],
    );
}

// A frozen link: the whole sshd stopped (SIGSTOP, listener included) for 10 s, so berth's
// keepalives go unanswered and a new connection hangs, then let go.

#[test]
fn sshd_frozen_during_the_stop() {
    link_cut_with(
        Cut {
            at: "→ 1.",
            after: Duration::from_millis(300),
            fault: Fault::Freeze(Duration::from_secs(10)),
            recover: RESTORE,
        },
        "berth-test/web:v1",
        &[],
    );
}

#[test]
fn sshd_frozen_during_the_health_wait() {
    link_cut_with(
        Cut {
            at: "→ 4.",
            after: Duration::from_millis(500),
            fault: Fault::Freeze(Duration::from_secs(10)),
            recover: RESTORE,
        },
        "berth-test/web:v1",
        &[],
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
    };
    let cut = Cut {
        // The step's start (the plan printed before the run names the retag too).
        at: "→ 6.",
        after: Duration::ZERO,
        fault: Fault::Kill,
        recover: FINISH,
    };
    let log = link_cut_on(&web, cut, &v1, &["--retag"]);
    // Cut after the switch and finished: v1 serves, and the tag the service starts from names it.
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"), "{log}");
    assert_eq!(
        common::image_id(&prod),
        common::image_id(&v1),
        "{prod}, which `docker compose up -d` starts, names what serves:\n{log}"
    );
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
    };
    let cut = Cut {
        at: "→ 1.",
        after: Duration::ZERO,
        fault: Fault::Kill,
        recover: RESTORE,
    };
    let log = link_cut_on(&web, cut, "berth-test/web:v1", &["--pin"]);
    // What the .env declares is what serves (what serves is what berth said, checked above).
    let pinned = env.replace("WEB_TAG=v2 ", "WEB_TAG=v1 ");
    match http_get(p.port, "/version").as_deref() {
        Some("v1") => assert_eq!(p.env_text(), pinned, "v1 serves: the pin stays\n{log}"),
        Some("v2") => assert_eq!(p.env_text(), env, "v2 serves: the .env is as it was\n{log}"),
        other => panic!("the port serves {other:?}\n{log}"),
    }
}

/// The service a link-cut rollback runs on.
struct Web {
    project: String,
    /// The replica's name (what serves on the port at the end).
    name: String,
    port: u16,
}

/// What happens to the link, and when.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// sshd and its sessions killed, started again 3 s later.
    Kill,
    /// sshd stopped whole (SIGSTOP, listener included) this long, then let go.
    Freeze(Duration),
}

const RESTORE: &str = "--restore";
const FINISH: &str = "--finish";

#[derive(Clone, Copy, Debug)]
struct Cut {
    /// The output line (a part of it) after which the link fails.
    at: &'static str,
    after: Duration,
    fault: Fault,
    /// How what the run left is recovered: `berth recover --restore` or `--finish`.
    recover: &'static str,
}

/// A rollback of the plain web fixture (v2), its link cut by `kill` after the line with `cut`.
fn link_cut_during(cut: &'static str, after: Duration, to: &str, recover: &'static str) {
    let cut = Cut {
        at: cut,
        after,
        fault: Fault::Kill,
        recover,
    };
    link_cut_with(cut, to, &[]);
}

/// `link_cut_during` with any fault and more rollback flags.
fn link_cut_with(cut: Cut, to: &str, extra: &[&str]) {
    let scope = Scope::new("rbssh");
    let port = common::free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    let web = Web {
        project: scope.project(),
        name,
        port,
    };
    link_cut_on(&web, cut, to, extra);
}

/// What berth's last word named as serving, from the last `now:` of its output.
#[derive(Debug, PartialEq)]
enum Said {
    /// `NAME runs REFERENCE (…)`.
    Runs(String),
    /// `NAME is exited — nothing serves`, or no container under the name.
    Nothing,
    /// berth could not read the engine (`unknown (…)`), or said no `now:` at all.
    Unknown,
}

fn said_serving(lines: &[String], name: &str) -> Said {
    let Some(line) = lines.iter().rev().find(|l| l.contains("now:")) else {
        return Said::Unknown;
    };
    let now = line.rsplit("now:").next().unwrap_or_default();
    if let Some(rest) = now.split(&format!("{name} runs ")).nth(1) {
        return Said::Runs(
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    if now.contains("nothing serves") {
        return Said::Nothing;
    }
    Said::Unknown
}

/// Which fixture version an image reference is, by its id.
fn version_of(reference: &str) -> Option<&'static str> {
    let id = common::image_id(reference);
    ["v1", "v2", "bad"]
        .into_iter()
        .find(|v| common::image_id(&format!("berth-test/web:{v}")) == id)
}

/// A rollback over SSH whose link fails (`cut`) and comes back: what serves when it ends is what
/// it said serves; what it left is recovered with `berth recover` (`cut.recover`), which ends
/// with exactly one serving container, the version the choice means (restore: v2, the version
/// before; finish: `to`), and says so. Returns what both runs printed.
fn link_cut_on(web: &Web, cut: Cut, to: &str, extra: &[&str]) -> String {
    let mut sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_box_config(
        &sshd,
        "  IdentitiesOnly yes\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n  ConnectTimeout 3\n",
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
    let rx = common::lines_of(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let here = line.contains(cut.at);
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
        seen.iter().any(|l| l.contains(cut.at)),
        "the rollback never reached `{}`:\n{}",
        cut.at,
        seen.join("\n")
    );
    std::thread::sleep(cut.after);
    match cut.fault {
        Fault::Kill => {
            sshd.stop();
            // The outage: longer than berth's keepalive (1 s, 2 misses) takes to notice the drop.
            std::thread::sleep(Duration::from_secs(3));
            sshd.restart();
        }
        Fault::Freeze(d) => {
            sshd.freeze_all();
            std::thread::sleep(d);
            sshd.thaw_all();
        }
    }

    let mut first = None;
    wait_until(Duration::from_secs(120), Duration::from_millis(200), || {
        first = child.try_wait().ok().flatten();
        first.is_some()
    });
    let Some(first) = first else {
        let _ = child.kill();
        let _ = child.wait();
        seen.extend(common::rest_of(&rx));
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!(
            "berth did not finish after the link came back:\n{}\nstderr:\n{err}",
            seen.join("\n")
        )
    };
    seen.extend(common::rest_of(&rx));
    // What serves when the run ended is what it said serves: not "v1 or v2".
    let said = said_serving(&seen, name);
    let serving = http_get(port, "/version");
    match &said {
        Said::Runs(reference) => assert_eq!(
            serving.as_deref(),
            version_of(reference),
            "berth said {name} runs {reference}:\n{}",
            seen.join("\n")
        ),
        Said::Nothing => assert_eq!(serving, None, "berth said nothing serves"),
        Said::Unknown => assert!(
            !first.success(),
            "a run that succeeded says what serves:\n{}",
            seen.join("\n")
        ),
    }
    if first.success() {
        // A run that says it succeeded finished the rollback itself.
        assert_eq!(
            serving.as_deref(),
            version_of(to),
            "exit 0 but {to} does not serve:\n{}",
            seen.join("\n")
        );
    }

    // What the run left is recovered with `berth recover`, as the run's message tells the user.
    let left_over = running_web(project) != vec![name.clone()]
        || !unfinished(project).is_empty()
        || common::has_run_journal(name);
    let expected = if left_over {
        let out = berth(
            &home,
            dir.path(),
            &[
                "-s",
                "box",
                "recover",
                "web",
                "-p",
                project,
                cut.recover,
                "--yes",
            ],
        )
        .output_within(BERTH_TIMEOUT)
        .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        seen.push(stdout.clone());
        seen.push(stderr);
        assert!(
            out.status.success(),
            "berth recover {} failed ({:?}):\n{}",
            cut.recover,
            out.status,
            seen.join("\n")
        );
        let recovered = stdout.lines().map(str::to_string).collect::<Vec<_>>();
        let expected = if cut.recover == FINISH {
            version_of(to)
        } else {
            Some("v2")
        };
        let said = said_serving(&recovered, name);
        assert!(
            matches!(&said, Said::Runs(r) if version_of(r) == expected),
            "the recovery's last word names {expected:?}: {said:?}\n{}",
            seen.join("\n")
        );
        expected
    } else {
        serving
            .as_deref()
            .and_then(|v| version_of(&format!("berth-test/web:{v}")))
    };
    let log = seen.join("\n");
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
    assert_eq!(
        http_get(port, "/version").as_deref(),
        expected,
        "the port serves what the last run said\n{log}"
    );
    // Shown with --nocapture: what each run printed.
    eprintln!("{log}");
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap_or_default();
    assert!(audit.contains("\"rollback"), "audit: {audit}\n{log}");
    log
}
