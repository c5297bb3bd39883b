//! The lock a run holds on its service, on the server: two berths rolling back one service at
//! once (one runs, the other is refused naming the holder), a holder killed (-9) whose lock
//! `berth recover` takes over, and `berth lock status | release` on a lock left behind.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{BERTH_TIMEOUT, RunEnv, Scope, docker, free_port, http_get, inspect, text};

// Checks every 0.5 s: a loaded machine may be slow to run the first health check.
const FAST: &str = "[runbook]\nhealth_retries = 30\nhealth_interval_ms = 500\n";

/// The lock containers of the scope's service on the engine.
fn locks(scope: &Scope) -> Vec<String> {
    let name = format!("name=berth-lock-{}-web", scope.project());
    docker(&["ps", "-a", "--filter", &name, "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn kept(scope: &Scope) -> usize {
    let filter = format!("name={}web-1-berth-kept-", scope.prefix);
    docker(&["ps", "-aq", "--filter", &filter]).lines().count()
}

#[test]
fn two_rollbacks_at_once_one_runs_the_other_is_refused_naming_the_holder() {
    let scope = Scope::new("lock");
    let port = free_port();
    // The stop takes its whole 4 s: both berths are planning or running at the same time.
    let name = common::slow_stop_web(&scope, port);
    let project = scope.project();
    let env = RunEnv::new(FAST);
    let args = [
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:v1",
        "--yes",
    ];
    let spawn = || {
        env.command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let pids = [a.id(), b.id()];
    let wait = |c: std::process::Child| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait_with_output());
        });
        rx.recv_timeout(BERTH_TIMEOUT)
            .expect("berth ends in time")
            .unwrap()
    };
    let outs = [wait(a), wait(b)];
    let ok: Vec<usize> = (0..2).filter(|i| outs[*i].status.success()).collect();
    assert_eq!(
        ok.len(),
        1,
        "exactly one runs:\n--- a\n{}\n--- b\n{}",
        text(&outs[0]),
        text(&outs[1])
    );
    let (winner, loser) = (ok[0], 1 - ok[0]);
    let refused = text(&outs[loser]);
    assert!(
        refused.contains("is locked: rollback by")
            && refused.contains(&format!("pid {}", pids[winner]))
            && refused.contains("Wait for that run to end"),
        "the refusal names the holder and what to do:\n{refused}"
    );

    // The engine shows one rollback: v1 serves from the one container under the name, one old
    // copy kept, and the lock is gone.
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v1");
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-q", "--filter", &filter]).lines().count(),
        1
    );
    assert_eq!(kept(&scope), 1, "one rollback kept one old container");
    assert!(locks(&scope).is_empty(), "released: {:?}", locks(&scope));
    let started = env
        .audit_lines()
        .iter()
        .filter(|e| e.action == "rollback" && e.result == "started")
        .count();
    assert_eq!(started, 1, "{:#?}", env.audit_lines());
}

#[test]
fn a_killed_holders_lock_refuses_the_next_rollback_and_recover_takes_it_over() {
    let scope = Scope::new("lock");
    let port = free_port();
    let name = common::slow_stop_web(&scope, port);
    let project = scope.project();
    let env = RunEnv::new(FAST);
    // Killed (-9) two seconds into the health wait (step 4 on a fixed port).
    common::kill_at_step(
        env.command().args([
            "rollback",
            "web",
            "-p",
            &project,
            "--to",
            "berth-test/web:v1",
            "--yes",
        ]),
        4,
        Duration::from_secs(2),
    );
    assert_eq!(locks(&scope).len(), 1, "the killed run's lock is left");

    let out = env.berth(&["rollback", "web", "-p", &project, "--yes"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("is locked: rollback by")
            && t.contains(&format!("berth recover web -p {project} --finish")),
        "refused before planning, pointing at recover:\n{t}"
    );
    assert!(!t.contains("Plan:"), "nothing was planned:\n{t}");

    let status = env.berth(&["lock", "status"]);
    let s = text(&status);
    assert!(
        status.status.success()
            && s.contains(&format!("{project}/web"))
            && s.contains("rollback by")
            && s.contains(" ago)")
            && s.contains("left a journal"),
        "{s}"
    );

    let out = env.berth(&["recover", "web", "-p", &project, "--restore", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("the recovery takes that lock over") && t.contains("took over the lock"),
        "the recovery says it took the lock over:\n{t}"
    );
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v2");
    assert!(locks(&scope).is_empty(), "{:?}", locks(&scope));
}

#[test]
fn a_lock_left_behind_is_shown_and_released_with_force_audited() {
    let scope = Scope::new("lock");
    let port = free_port();
    let _name = common::web_service(&scope, "berth-test/web:v2", port);
    let project = scope.project();
    let env = RunEnv::new(FAST);
    // What a berth that died left: a lock with nothing else (it never got to its first change).
    let lock = format!("berth-lock-{project}-web");
    let holder = format!(
        r#"{{"run_id":"20261205000000-1","action":"restart","subject":"{project}/web","user":"bob@laptop","pid":4242}}"#
    );
    docker(&[
        "create",
        "--name",
        &lock,
        "--label",
        &format!("berth.lock={holder}"),
        "--network",
        "none",
        "berth-test/web:v2",
    ]);

    let out = env.berth(&["restart", "web", "-p", &project, "--yes"]);
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("restart by bob@laptop") && t.contains("pid 4242"),
        "{t}"
    );
    assert!(
        t.contains(&format!("berth lock release web -p {project}")),
        "{t}"
    );

    // Taken a moment ago by the server's clock: its run may still go on, so only --force frees it.
    let out = env.berth(&["lock", "release", "web", "-p", &project, "--yes"]);
    let t = text(&out);
    assert!(!out.status.success() && t.contains("--force"), "{t}");
    assert_eq!(locks(&scope), vec![lock.clone()]);
    let out = env.berth(&["lock", "release", "web", "-p", &project, "--force", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("released the lock") && t.contains("bob@laptop"),
        "{t}"
    );
    assert!(locks(&scope).is_empty());
    let audit = env.audit_lines();
    let release = audit
        .iter()
        .find(|e| e.action == "lock-release")
        .expect("the release is audited");
    assert_eq!(release.result, "ok");
    assert_eq!(release.parameters["holder"]["user"], "bob@laptop");
    assert_eq!(release.parameters["forced"], true);

    // Free again: the restart runs.
    let out = env.berth(&["restart", "web", "-p", &project, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// What the lock adds to a run over SSH: taking it (a create), checking the plan's containers and
/// releasing it (a remove), against a real sshd on loopback. Ignored by `cargo test`: run with
/// `cargo test --test run_lock measure -- --ignored --nocapture`. Prints figures.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement"]
async fn measure_the_lock_over_ssh() {
    use berth::runbook::lock;
    use berth::target::{Endpoint, SshSpec, Target};
    let scope = Scope::new("lockcost");
    let port = free_port();
    common::web_service(&scope, "berth-test/web:v2", port);
    let (sshd, home) = common::sshd::trusted_pair();
    let spec = SshSpec {
        user: Some("root".into()),
        host: "127.0.0.1".into(),
        port: Some(sshd.port),
        socket: None,
    };
    let target = Target::from_endpoint("bench", Endpoint::Ssh(spec));
    let engine = berth::engine::connect(&target, &home.options())
        .await
        .expect("engine over ssh");
    let subject = berth::runbook::resolve(&engine, "web", Some(&scope.project()))
        .await
        .unwrap();
    let scope_ = lock::scope_for(&engine, &subject, "rollback", &lock::new_run_id());
    let (mut total, mut parts) = (Vec::new(), [Vec::new(), Vec::new(), Vec::new()]);
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let taken = lock::acquire(&engine, &scope_).await.expect("taken");
        parts[0].push(t.elapsed());
        let b = std::time::Instant::now();
        lock::check_basis(&engine, &scope_).await.expect("basis");
        parts[1].push(b.elapsed());
        let r = std::time::Instant::now();
        lock::release(&engine, &taken).await.expect("released");
        parts[2].push(r.elapsed());
        total.push(t.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = |mut v: Vec<Duration>| {
        v.sort();
        (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
    };
    // The link and the engine as loaded right now, for scale: a round trip that does no work.
    let mut pings = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        engine.docker.ping().await.expect("ping");
        pings.push(t.elapsed());
    }
    let ping = p50(pings);
    println!(
        "/_ping over the same link, p50 / max: {:.1} / {:.1} ms",
        ping.0, ping.1
    );
    let [a, b, r] = parts.map(p50);
    let t = p50(total);
    println!(
        "lock over ssh ({}), 20 runs, p50 / max: total {:.1} / {:.1} ms = acquire {:.1} / {:.1} + plan check {:.1} / {:.1} + release {:.1} / {:.1}",
        engine.transport, t.0, t.1, a.0, a.1, b.0, b.1, r.0, r.1
    );
    assert!(locks(&scope).is_empty());
}
