//! The fault matrix's multi-replica half: a compose service scaled to 2 without a host port, so
//! berth starts each new replica beside its old one (start-first) and verifies them together, then
//! switches them one by one. A rollback and a deploy are cut by `kill -9` of berth or by the loss
//! of the SSH link (sshd and its sessions killed, back 3 s later) in their health wait and in the
//! second replica's switch (the first one switched, the second not: two versions serve). After
//! each cut, what the engine shows is compared with what berth last said; then `berth recover
//! --finish | --restore` must end with both replicas, under their own names, on the one image the
//! choice means, healthy, and nothing of the run left.

use crate::common;

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth::runbook::AuditLog;
use common::compose::ComposeProject;
use common::sshd::{ClientHome, Sshd, SshdOptions, berth_over};
use common::{BERTH_TIMEOUT, OutputWithin, docker, docker_try, image_id, wait_until};

const FAST: &str = "[runbook]\nhealth_retries = 30\nhealth_interval_ms = 500\n";

/// Start-first: the first replica's verify step; both new replicas run beside the old ones and
/// are checked together.
const VERIFY: u32 = 3;
/// Start-first: the first replica's switch; both new replicas are verified, none switched yet.
const SWITCH: u32 = 4;
/// Stop-first: the second replica's stop; the first one runs the new image under its name.
const SECOND_STOP: u32 = 6;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Run {
    /// `berth rollback` from v2 to v1.
    Rollback,
    /// `berth deploy` from v1 to v2.
    Deploy,
}

impl Run {
    /// (the version it runs from, the version it goes to).
    fn versions(self) -> (&'static str, &'static str) {
        match self {
            Run::Rollback => ("v2", "v1"),
            Run::Deploy => ("v1", "v2"),
        }
    }

    fn args<'a>(self, project: &'a str, to: &'a str) -> Vec<&'a str> {
        let verb = match self {
            Run::Rollback => "rollback",
            Run::Deploy => "deploy",
        };
        vec![verb, "web", "-p", project, "--to", to, "--yes"]
    }
}

#[derive(Clone, Copy, Debug)]
enum Cut {
    /// berth killed (-9) as step N starts (held there: debug builds obey BERTH_TEST_HOLD_STEP).
    Kill(u32),
    /// sshd and its sessions killed as step N starts, back 3 s later; berth goes on.
    Link(u32),
}

fn fixture(version: &str) -> String {
    format!("berth-test/web:{version}")
}

/// Which path the run takes on two replicas.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// A compose service scaled to 2 without a host port: each new replica starts beside its old
    /// one, they are verified together and switched together.
    StartFirst,
    /// Two replicas, each publishing its own fixed host port: each is stopped before its
    /// replacement starts, one replica after the other.
    StopFirst,
}

/// The two-replica `web` service a run acts on, removed on drop.
struct Service {
    project: String,
    /// The replicas' names, sorted.
    names: Vec<String>,
    /// The host port of each replica (stop-first only).
    ports: Vec<u16>,
    _compose: Option<ComposeProject>,
    _scope: Option<common::Scope>,
}

impl Service {
    fn up(area: &str, order: Order, image: &str) -> Service {
        match order {
            Order::StartFirst => {
                let p = ComposeProject::scaled(area, image, 2);
                let names = p.replicas().into_iter().map(|r| r.0).collect();
                Service {
                    project: p.name.clone(),
                    names,
                    ports: Vec::new(),
                    _compose: Some(p),
                    _scope: None,
                }
            }
            Order::StopFirst => {
                let scope = common::Scope::new(area);
                let mut names = Vec::new();
                let mut ports = Vec::new();
                for n in 1..=2 {
                    let port = common::free_port();
                    let publish = format!("127.0.0.1:{port}:8080");
                    scope.run_service("web", n, &["--stop-timeout", "1", "-p", &publish, image]);
                    names.push(scope.name(&format!("web-{n}")));
                    ports.push(port);
                }
                for name in &names {
                    assert!(
                        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
                            docker_try(&["inspect", "-f", "{{.State.Health.Status}}", name])
                                .1
                                .trim()
                                == "healthy"
                        }),
                        "{name} never became healthy"
                    );
                }
                Service {
                    project: scope.project(),
                    names,
                    ports,
                    _compose: None,
                    _scope: Some(scope),
                }
            }
        }
    }

    /// The running containers with the service's compose labels: (name, image id, health).
    fn replicas(&self) -> Vec<(String, String, String)> {
        containers(&self.project)
            .into_iter()
            .filter(|c| c.3 && c.5)
            .map(|c| (c.0, c.2, c.4))
            .collect()
    }
}

/// Every container of the project, running or not, with compose's labels or with them set aside
/// (berth's kept copies): (name, config image, image id, running, health, compose's labels on),
/// by name.
fn containers(project: &str) -> Vec<(String, String, String, bool, String, bool)> {
    let mut out = Vec::new();
    for label in [
        "com.docker.compose.project",
        "berth.kept.com.docker.compose.project",
    ] {
        let filter = format!("label={label}={project}");
        for id in docker(&["ps", "-aq", "--filter", &filter]).split_whitespace() {
            let (ok, row) = docker_try(&[
                "inspect",
                "-f",
                "{{.Name}}|{{.Config.Image}}|{{.Image}}|{{.State.Running}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                id,
            ]);
            let f: Vec<&str> = row.trim().split('|').collect();
            if ok && f.len() == 5 {
                out.push((
                    f[0].trim_start_matches('/').to_string(),
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3] == "true",
                    f[4].to_string(),
                    label == "com.docker.compose.project",
                ));
            }
        }
    }
    out.sort();
    out
}

fn show(project: &str) -> String {
    containers(project)
        .iter()
        .map(|c| format!("{} {} running={} {}", c.0, c.1, c.3, c.4))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The message of the last finished step whose message contains `what`.
fn said<'a>(lines: &'a [String], what: &str) -> Option<&'a str> {
    lines
        .iter()
        .rev()
        .filter(|l| l.trim_start().starts_with('✓'))
        .find(|l| l.contains(what))
        .map(String::as_str)
}

/// What the engine shows agrees with what berth's finished steps said before it was killed, for
/// each replica: the container under its name runs the new image once berth said it switched it
/// (`NAME now runs …`) or created it there (`created NAME (…)`, stop-first), else the old one;
/// an old container berth said it set aside is stopped under that name, on the old image; a new
/// one it said it started beside the old one (start-first) runs the new image.
fn check_against_steps(project: &str, names: &[String], seen: &[String], from: &str, to: &str) {
    let all = containers(project);
    let find = |name: &str| all.iter().find(|c| c.0 == name);
    let log = format!(
        "berth said:\n{}\nthe engine:\n{}",
        seen.join("\n"),
        show(project)
    );
    for name in names {
        let switched = said(seen, &format!("{name} now runs "))
            .or_else(|| said(seen, &format!("created {name} (")));
        let current = find(name).unwrap_or_else(|| panic!("no {name}: {log}"));
        assert!(current.3, "{name} runs: {log}");
        let version = if switched.is_some() { to } else { from };
        assert_eq!(
            current.2,
            image_id(&fixture(version)),
            "{name} runs {version} ({switched:?}): {log}"
        );
        let aside = said(seen, &format!("{name} now runs "))
            .or_else(|| said(seen, &format!("{name} stopped and set aside as ")));
        if let Some(line) = aside {
            let old = line
                .split("set aside as ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("{line}"));
            let c = find(old).unwrap_or_else(|| panic!("`{line}`, but no {old}: {log}"));
            assert!(!c.3, "{old} is stopped: {log}");
            assert_eq!(c.2, image_id(&fixture(from)), "{log}");
        }
        let new = format!("{name}-berth-new-");
        if switched.is_none()
            && let Some(line) = said(seen, &new).filter(|l| l.contains(" started ("))
        {
            let c = all
                .iter()
                .find(|c| c.0.starts_with(&new))
                .unwrap_or_else(|| panic!("`{line}`, but no {new}…: {log}"));
            assert!(c.3, "`{line}`: {log}");
            assert_eq!(c.2, image_id(&fixture(to)), "{log}");
        }
    }
}

/// What berth's last `now:` named for each replica is what the engine runs under that name.
fn check_against_result(project: &str, names: &[String], result: &str) {
    let all = containers(project);
    // What serves follows the last `now:`, or, after the automatic restore, `was restored:`.
    let now = ["now:", "was restored:"]
        .iter()
        .filter_map(|m| result.rfind(m).map(|i| &result[i + m.len()..]))
        .min_by_key(|rest| rest.len())
        .unwrap_or_else(|| panic!("the result says what serves: {result}"));
    for name in names {
        let part = now
            .split("; ")
            .find(|p| p.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("the result names {name}: {result}"));
        let c = all.iter().find(|c| &c.0 == name);
        if let Some(reference) = part.split(" runs ").nth(1) {
            let reference = reference.split_whitespace().next().unwrap_or_default();
            let c = c.unwrap_or_else(|| panic!("{name} is gone: {result}\n{}", show(project)));
            assert!(c.3, "{part}: {}", show(project));
            assert_eq!(c.1, reference, "{part}: {}", show(project));
        } else {
            assert!(
                c.is_none_or(|c| !c.3),
                "berth said `{part}`: {}",
                show(project)
            );
        }
    }
}

/// The end every recovery must reach: the service's two replicas under their own names, on
/// `version`, healthy (and, stop-first, each port serving it); nothing the run made besides kept
/// (stopped, hidden) copies; no journal.
fn check_end(svc: &Service, version: &str, log: &str) {
    let want = image_id(&fixture(version));
    let ok = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        let r = svc.replicas();
        r.len() == svc.names.len()
            && r.iter()
                .all(|(_, id, health)| *id == want && health == "healthy")
    });
    assert!(
        ok,
        "{} replicas on {version}, healthy:\n{}\n{log}",
        svc.names.len(),
        show(&svc.project)
    );
    let replicas: Vec<String> = svc.replicas().into_iter().map(|r| r.0).collect();
    assert_eq!(replicas, svc.names, "under their own names:\n{log}");
    for port in &svc.ports {
        assert_eq!(
            common::http_get(*port, "/version").as_deref(),
            Some(version),
            "port {port}:\n{log}"
        );
    }
    for c in containers(&svc.project) {
        if svc.names.contains(&c.0) {
            continue;
        }
        assert!(
            c.0.contains("-berth-kept-") && !c.3 && !c.5,
            "only kept, stopped, hidden copies are left besides the replicas: {c:?}\n{}\n{log}",
            show(&svc.project)
        );
    }
    for name in &svc.names {
        assert!(
            !common::has_run_journal(name),
            "{name}'s run journal is closed:\n{log}"
        );
    }
}

/// Reads lines into `seen` until one starts with `marker` (true), the output ends, or 90 s pass.
fn read_to(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, marker: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let here = line.starts_with(marker);
                seen.push(line);
                if here {
                    return true;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
    false
}

/// Where berth runs: on this machine's engine, or over a real sshd to it (`-s box`).
struct Place {
    dir: tempfile::TempDir,
    ssh: Option<(Sshd, ClientHome)>,
}

impl Place {
    fn new(over_ssh: bool) -> Place {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), FAST).unwrap();
        let ssh = over_ssh.then(|| {
            let sshd = Sshd::start(SshdOptions::default());
            let home = ClientHome::new(true);
            sshd.authorize(&home.ssh("id_ed25519"));
            home.trust(&sshd);
            home.write_box_config(
                &sshd,
                "  IdentitiesOnly yes\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n  ConnectTimeout 3\n",
            );
            (sshd, home)
        });
        Place { dir, ssh }
    }

    fn command(&self, args: &[&str]) -> Command {
        match &self.ssh {
            Some((_, home)) => {
                let mut all = vec!["-s", "box"];
                all.extend_from_slice(args);
                berth_over(home, self.dir.path(), &all)
            }
            None => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
                common::isolate(&mut c, &self.dir.path().join("home"))
                    .arg("--config")
                    .arg(self.dir.path().join("config.toml"))
                    .args(args)
                    .env("BERTH_DATA_DIR", self.dir.path().join("data"));
                c
            }
        }
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).output_within(BERTH_TIMEOUT).unwrap()
    }

    fn audit(&self) -> Vec<berth::runbook::AuditEntry> {
        AuditLog::at(self.dir.path().join("data").join("audit.jsonl"))
            .read_last(20)
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    common::text(o)
}

/// `run` on a two-replica service, cut by `cut`; what serves is compared with what berth said,
/// then `berth recover` (`choice`) must end on `ends_on`.
fn cut_then_recover(area: &str, order: Order, run: Run, cut: Cut, (choice, ends_on): (&str, &str)) {
    let (svc, place, seen, result) = cut_run(area, order, run, cut);
    recover_and_check(
        &svc,
        &place,
        run,
        &seen,
        (choice, ends_on),
        result.as_deref(),
    );
}

/// `run` on a two-replica service, cut by `cut`; what serves is compared with what berth said.
/// Returns what berth printed and its result line when it ended on its own.
fn cut_run(
    area: &str,
    order: Order,
    run: Run,
    cut: Cut,
) -> (Service, Place, Vec<String>, Option<String>) {
    let (from, to) = run.versions();
    let svc = Service::up(area, order, &fixture(from));
    let names = svc.names.clone();
    let place = Place::new(matches!(cut, Cut::Link(_)));
    let to_ref = fixture(to);
    let (step, hold) = match cut {
        Cut::Kill(n) => (n, n.to_string()),
        Cut::Link(n) => (n, String::new()),
    };
    let mut place = place;
    let mut child = place
        .command(&run.args(&svc.project, &to_ref))
        .env("BERTH_TEST_HOLD_STEP", &hold)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = common::lines_of(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let marker = format!("→ {step}.");
    let reached = read_to(&rx, &mut seen, &marker);
    if !reached {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the run never reached step {step}:\n{}", seen.join("\n"));
    }
    let what = format!("{run:?} cut by {cut:?}");
    let result = match cut {
        Cut::Kill(_) => {
            child.kill().unwrap();
            let _ = child.wait();
            seen.extend(rx.try_iter());
            check_against_steps(&svc.project, &names, &seen, from, to);
            None
        }
        Cut::Link(_) => {
            let (sshd, _) = place.ssh.as_mut().unwrap();
            sshd.stop();
            // Longer than berth's keepalive (1 s, 2 misses) takes to notice the drop.
            std::thread::sleep(Duration::from_secs(3));
            sshd.restart();
            let mut status = None;
            wait_until(Duration::from_secs(150), Duration::from_millis(200), || {
                status = child.try_wait().ok().flatten();
                status.is_some()
            });
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            seen.extend(rx.try_iter());
            let log = seen.join("\n");
            assert!(status.is_some(), "{what}: berth never ended:\n{log}");
            let result = seen
                .iter()
                .rev()
                .find(|l| l.starts_with("OK:") || l.starts_with("FAILED:"))
                .cloned()
                .unwrap_or_else(|| panic!("{what}: no result:\n{log}"));
            check_against_result(&svc.project, &names, &result);
            Some(result)
        }
    };
    (svc, place, seen, result)
}

/// `berth recover CHOICE` when the run left anything, then the end state it must reach; a run
/// that ended on its own and left nothing ends where its result said.
fn recover_and_check(
    svc: &Service,
    place: &Place,
    run: Run,
    seen: &[String],
    (choice, ends_on): (&str, &str),
    result: Option<&str>,
) {
    let mut log = seen.join("\n");
    // A run that ended on its own and left nothing to recover: it ends where its result said.
    let left = svc.names.iter().any(|n| common::has_run_journal(n))
        || containers(&svc.project)
            .iter()
            .any(|c| c.0.contains("-berth-new-") || c.0.contains("-berth-old-"));
    if !left {
        let result = result.unwrap_or_else(|| panic!("a killed run left nothing:\n{log}"));
        let (from, to) = run.versions();
        let version = if result.starts_with("OK:") {
            to
        } else if result.contains("the old container was restored") {
            from
        } else {
            panic!("a failed run that did not restore leaves something to recover:\n{log}")
        };
        check_end(svc, version, &log);
        eprintln!("{log}");
        return;
    }
    let out = place.berth(&["recover", "web", "-p", &svc.project, choice, "--yes"]);
    log.push_str(&format!("\n--- recover {choice}:\n{}", text(&out)));
    assert!(out.status.success(), "the recovery succeeds:\n{log}");
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string();
    // The recovery's last word says what serves: each replica on the version it ends on.
    for name in &svc.names {
        assert!(
            last.contains(&format!("{name} runs {}", fixture(ends_on))),
            "the recovery names {name} on {ends_on}:\n{log}"
        );
    }
    check_end(svc, ends_on, &log);
    let audit = place.audit();
    assert!(
        audit.iter().any(|e| e.result == "interrupted"),
        "the cut-off run is audited as interrupted: {audit:#?}\n{log}"
    );
    // Shown with --nocapture: what each run printed.
    eprintln!("{log}");
    let closing = audit.last().unwrap();
    assert_eq!(
        (closing.action.as_str(), closing.result.as_str()),
        ("rollback-recover", "ok"),
        "{audit:#?}"
    );
}

#[test]
fn start_first_rollback_killed_in_the_health_wait_then_restored() {
    cut_then_recover(
        "frr1",
        Order::StartFirst,
        Run::Rollback,
        Cut::Kill(VERIFY),
        ("--restore", "v2"),
    );
}

#[test]
fn start_first_rollback_killed_at_the_switch_then_finished() {
    cut_then_recover(
        "frr2",
        Order::StartFirst,
        Run::Rollback,
        Cut::Kill(SWITCH),
        ("--finish", "v1"),
    );
}

#[test]
fn start_first_deploy_killed_at_the_switch_then_restored() {
    cut_then_recover(
        "frr3",
        Order::StartFirst,
        Run::Deploy,
        Cut::Kill(SWITCH),
        ("--restore", "v1"),
    );
}

#[test]
fn start_first_deploy_killed_in_the_health_wait_then_finished() {
    cut_then_recover(
        "frr4",
        Order::StartFirst,
        Run::Deploy,
        Cut::Kill(VERIFY),
        ("--finish", "v2"),
    );
}

/// The first replica switched and verified, the second not touched: two versions serve. A finish
/// has nothing to finish the second one with: it is refused, naming it and the way out (it
/// finished the first, restored the second, and called the service on two images recovered);
/// nothing changes; the restore then brings both back.
#[test]
fn stop_first_rollback_killed_between_the_replicas_refuses_a_finish_then_restores() {
    let run = Run::Rollback;
    let (svc, place, seen, _) = cut_run("frr5", Order::StopFirst, run, Cut::Kill(SECOND_STOP));
    let out = place.berth(&["recover", "web", "-p", &svc.project, "--finish", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("before it switched {}", svc.names[1]))
            && t.contains("on two images")
            && t.contains("--restore"),
        "{t}"
    );
    let (from, to) = run.versions();
    check_against_steps(&svc.project, &svc.names, &seen, from, to);
    recover_and_check(&svc, &place, run, &seen, ("--restore", from), None);
}

#[test]
fn stop_first_deploy_killed_between_the_replicas_then_restored() {
    cut_then_recover(
        "frr6",
        Order::StopFirst,
        Run::Deploy,
        Cut::Kill(SECOND_STOP),
        ("--restore", "v1"),
    );
}

// The link lost (sshd and its sessions killed, back 3 s later): berth goes on, and its result must
// say what serves; what it leaves (how far its own restore got depends on when the link comes
// back) is recovered with --restore, which every state allows.

#[test]
fn start_first_rollback_link_lost_at_the_switch() {
    cut_then_recover(
        "frr7",
        Order::StartFirst,
        Run::Rollback,
        Cut::Link(SWITCH),
        ("--restore", "v2"),
    );
}

#[test]
fn start_first_deploy_link_lost_in_the_health_wait() {
    cut_then_recover(
        "frr8",
        Order::StartFirst,
        Run::Deploy,
        Cut::Link(VERIFY),
        ("--restore", "v1"),
    );
}

#[test]
fn stop_first_rollback_link_lost_between_the_replicas() {
    cut_then_recover(
        "frr9",
        Order::StopFirst,
        Run::Rollback,
        Cut::Link(SECOND_STOP),
        ("--restore", "v2"),
    );
}
