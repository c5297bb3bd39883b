//! A run never depends on its terminal: a terminal that hangs up (SIGHUP) during the health wait,
//! a pipe closed after the first line (`berth rollback … | head -1`), and a console whose pty
//! nobody reads for 30 s during a rollback. Each run ends as audited, with the new image serving.

use crate::common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    BERTH_TIMEOUT, OutputWithin, RunEnv, Scope, free_port, http_get, inspect, text, wait_until,
};

const FAST: &str = "[runbook]\nhealth_retries = 30\nhealth_interval_ms = 500\n";

/// The results of `action`'s audit lines, oldest first.
fn results(env: &RunEnv, action: &str) -> Vec<String> {
    env.audit_lines()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.result)
        .collect()
}

/// The rollback's (action, result) lines in the audit.
fn rollbacks(env: &RunEnv) -> Vec<(String, String)> {
    env.audit_lines()
        .into_iter()
        .filter(|e| e.action == "rollback")
        .map(|e| (e.action, e.result))
        .collect()
}

fn ended_as_audited(env: &RunEnv) -> bool {
    rollbacks(env)
        == vec![
            ("rollback".to_string(), "started".to_string()),
            ("rollback".to_string(), "ok".to_string()),
        ]
}

#[test]
fn a_terminal_that_hangs_up_during_the_health_wait_does_not_end_the_run() {
    let scope = Scope::new("term");
    let port = free_port();
    let name = common::web_service(&scope, "berth-test/web:v2", port);
    let env = RunEnv::new(FAST);
    let project = scope.project();
    let mut child = env
        .command()
        .args([
            "rollback",
            "web",
            "-p",
            &project,
            "--to",
            "berth-test/web:v1",
            "--yes",
        ])
        // Held 10 s once the health wait starts (debug builds): the hang-up lands inside it.
        .env("BERTH_TEST_HOLD_STEP", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().map_while(Result::ok).take(200) {
        let here = line.starts_with("→ 4.");
        seen.push(line);
        if here {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.starts_with("→ 4.")), "{seen:#?}");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The terminal is gone: nobody reads what berth prints from here on.
    drop(lines);
    let exited = wait_until(BERTH_TIMEOUT, Duration::from_millis(100), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "berth ended after the hang-up");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{err}");
    assert!(err.contains("the terminal hung up"), "{err}");
    serves_v1(port, &name);
    assert!(ended_as_audited(&env), "{:?}", rollbacks(&env));
}

#[test]
fn a_pipe_closed_after_the_first_line_does_not_end_the_run() {
    let scope = Scope::new("term");
    let port = free_port();
    let name = common::web_service(&scope, "berth-test/web:v2", port);
    let env = RunEnv::new(FAST);
    let project = scope.project();
    let berth = env!("CARGO_BIN_EXE_berth");
    // `head` exits after the plan's first line: every later write of berth meets a closed pipe.
    let script = format!(
        "'{berth}' --config '{}' rollback web -p '{project}' --to berth-test/web:v1 --yes | head -1",
        env.config().display()
    );
    let mut c = Command::new("sh");
    common::isolate(&mut c, &env.home())
        .args(["-c", &script])
        .env("BERTH_DATA_DIR", env.data());
    let out = c.output_within(BERTH_TIMEOUT).unwrap();
    let t = text(&out);
    assert!(t.starts_with("Plan: roll back"), "{t}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "{t}"
    );
    // sh waits for the whole pipeline: berth has ended, and it finished the rollback.
    serves_v1(port, &name);
    assert!(ended_as_audited(&env), "{:?}\n{t}", rollbacks(&env));
}

#[test]
fn a_console_nobody_reads_for_30_s_does_not_hold_its_rollback() {
    let scope = Scope::new("term");
    let port = free_port();
    let name = common::web_service(&scope, "berth-test/web:v2", port);
    let env = RunEnv::new(FAST);
    let project = scope.project();
    std::fs::write(
        env.config(),
        format!("{FAST}[services.\"{project}/web\"]\nmigrate = \"seq 1 5000\"\n"),
    )
    .unwrap();
    let (config, data) = (
        env.config().display().to_string(),
        env.data().display().to_string(),
    );
    let home = env.home().display().to_string();
    std::fs::create_dir_all(&home).unwrap();
    let mut s = common::pty::Session::start(
        &["--config", &config],
        &[("HOME", home.as_str()), ("BERTH_DATA_DIR", data.as_str())],
    );
    s.expect("● live", Duration::from_secs(30));
    s.type_keys(&format!(":rollback {project}/web berth-test/web:v1\r"));
    s.expect("y / Enter go ahead", Duration::from_secs(30));
    s.type_keys("y");
    // Nobody reads from the moment the run starts: berth's drawing fills the pty and waits.
    s.pause_reading();
    let started = std::time::Instant::now();
    // The run ends on its own meanwhile: the engine and the audit say so while the screen is
    // still not read.
    let done = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        ended_as_audited(&env)
    });
    let audited_within = started.elapsed();
    std::thread::sleep(Duration::from_secs(30).saturating_sub(audited_within));
    assert!(
        done,
        "the run ended, audited, with nobody reading: {:?}",
        rollbacks(&env)
    );
    serves_v1(port, &name);
    println!(
        "rollback with a console nobody reads: audited {:.1} s after the confirmation",
        audited_within.as_secs_f64()
    );
    s.resume_reading();
    s.expect("done in", Duration::from_secs(30));
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("done in")),
        "{}",
        s.text()
    );

    // The same rollback (back to v2) with the console read all along, for comparison.
    s.type_keys(&format!(":rollback {project}/web berth-test/web:v2\r"));
    s.expect("y / Enter go ahead", Duration::from_secs(30));
    s.type_keys("y");
    let started = std::time::Instant::now();
    let read_done = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        results(&env, "rollback") == ["started", "ok", "started", "ok"]
    });
    assert!(read_done, "{:?}", results(&env, "rollback"));
    println!(
        "the same rollback with the console read: audited {:.1} s after the confirmation",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    s.expect("done in", Duration::from_secs(30));
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("done in")),
        "{}",
        s.text()
    );

    // A run that prints more than every queue between it and the screen holds (5000 lines)
    // still ends while nobody reads: the lines the view cannot take are counted, not waited for.
    s.type_keys(&format!(":migrate {project}/web\r"));
    s.expect("y / Enter go ahead", Duration::from_secs(30));
    s.type_keys("y");
    s.pause_reading();
    let migrated = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        results(&env, "migrate") == ["started", "ok"]
    });
    assert!(migrated, "{:?}", results(&env, "migrate"));
    s.resume_reading();
    s.expect("lines not shown here", Duration::from_secs(30));
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("done in")),
        "{}",
        s.text()
    );
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

/// Containers of the test (by its prefix) that run, and all of them, running or not.
fn containers(scope: &Scope) -> (Vec<String>, Vec<String>) {
    let filter = format!("name={}", scope.prefix);
    let names = |all: bool| -> Vec<String> {
        let mut args = vec!["ps", "--filter", &filter, "--format", "{{.Names}}"];
        if all {
            args.push("-a");
        }
        let mut v: Vec<String> = common::docker(&args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    (names(false), names(true))
}

/// The console's terminal closed (the pty's master side gone: the kernel hangs it up, SIGHUP)
/// during a rollback's health wait: the run goes on to its end with nobody to show it to, the
/// audit has its result, the rolled-back image serves from one container, and berth exits.
#[test]
fn a_console_whose_terminal_closes_mid_rollback_finishes_the_run_and_exits() {
    let scope = Scope::new("term");
    let port = free_port();
    let name = common::web_service(&scope, "berth-test/web:v2", port);
    let env = RunEnv::new(FAST);
    let project = scope.project();
    let (config, data) = (
        env.config().display().to_string(),
        env.data().display().to_string(),
    );
    let home = env.home().display().to_string();
    std::fs::create_dir_all(&home).unwrap();
    let mut s = common::pty::Session::start(
        &["--config", &config],
        &[
            ("HOME", home.as_str()),
            ("BERTH_DATA_DIR", data.as_str()),
            // Held 10 s as the health wait starts (debug builds): the terminal closes inside it.
            ("BERTH_TEST_HOLD_STEP", "4"),
        ],
    );
    s.expect("● live", Duration::from_secs(30));
    s.type_keys(&format!(":rollback {project}/web berth-test/web:v1\r"));
    s.expect("y / Enter go ahead", Duration::from_secs(30));
    s.type_keys("y");
    // The new replica started (step 3 done): the run is in its health wait.
    assert!(
        wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
            common::docker_try(&[
                "inspect",
                "-f",
                "{{.Config.Image}} {{.State.Running}}",
                &name,
            ])
            .1
            .trim()
                == "berth-test/web:v1 true"
        }),
        "the new replica never started:\n{}",
        s.text()
    );
    assert_eq!(
        rollbacks(&env),
        vec![("rollback".to_string(), "started".to_string())],
        "the run is under way, not over"
    );
    assert!(s.hang_up(), "the terminal's last descriptor closed");
    let status = s.wait_exit(Duration::from_secs(90));
    assert!(
        status.is_some(),
        "berth exited after its run: {:?}",
        rollbacks(&env)
    );
    assert!(ended_as_audited(&env), "{:?}", rollbacks(&env));
    serves_v1(port, &name);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    let (running, _) = containers(&scope);
    assert_eq!(running, vec![name.clone()], "one container serves");
    assert!(
        !common::has_run_journal(&name),
        "the run's journal is closed"
    );
    let status = status.unwrap();
    assert!(
        status.success(),
        "a closed terminal is no failure of the run: {status:?}"
    );
}

/// `berth rollback` spawned with `BERTH_TEST_HOLD_STEP=step`, its stdout and stderr lines on
/// channels.
fn spawn_rollback(
    env: &RunEnv,
    project: &str,
    step: &str,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = env
        .command()
        .args(common::rollback_web_to_v1(project))
        .env("BERTH_TEST_HOLD_STEP", step)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::lines_of(child.stdout.take().unwrap());
    let err = common::lines_of(child.stderr.take().unwrap());
    (child, out, err)
}

/// Waits (bounded: 60 s) for a line containing `needle`; every line read goes into `seen`.
fn line_with(rx: &std::sync::mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return true;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => return false,
        }
    }
    false
}

fn term(child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn wait_child(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let mut status = None;
    wait_until(BERTH_TIMEOUT, Duration::from_millis(100), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// One SIGTERM during the health wait: berth says the run goes on, and it does, to its end.
#[test]
fn a_first_sigterm_lets_the_rollback_finish() {
    let scope = Scope::new("term");
    let port = free_port();
    let name = common::web_service(&scope, "berth-test/web:v2", port);
    let env = RunEnv::new(FAST);
    let (mut child, out, err) = spawn_rollback(&env, &scope.project(), "4");
    let (mut said, mut warned) = (Vec::new(), Vec::new());
    assert!(line_with(&out, "→ 4.", &mut said), "{said:#?}");
    term(&child);
    assert!(
        line_with(&err, "SIGTERM: the run goes on", &mut warned),
        "{warned:#?}"
    );
    let status = wait_child(&mut child).expect("berth ended");
    assert!(line_with(&out, "OK:", &mut said), "{said:#?}");
    assert!(status.success(), "{status:?}\n{said:#?}\n{warned:#?}");
    serves_v1(port, &name);
    let (running, _) = containers(&scope);
    assert_eq!(running, vec![name.clone()]);
    assert!(ended_as_audited(&env), "{:?}", rollbacks(&env));
}

/// A second SIGTERM stops the rollback at the next safe point (its health wait) and restores: the
/// original container serves again, nothing berth made is left, and the audit says it failed.
#[test]
fn a_second_sigterm_stops_the_rollback_and_restores() {
    let scope = Scope::new("term");
    let port = free_port();
    let name = common::web_service(&scope, "berth-test/web:v2", port);
    let original = inspect(&name, "{{.Id}}");
    let env = RunEnv::new(FAST);
    let (mut child, out, err) = spawn_rollback(&env, &scope.project(), "4");
    let (mut said, mut warned) = (Vec::new(), Vec::new());
    assert!(line_with(&out, "→ 4.", &mut said), "{said:#?}");
    term(&child);
    assert!(
        line_with(&err, "SIGTERM: the run goes on", &mut warned),
        "{warned:#?}"
    );
    // Still running after the first: the run is held in its health wait for 10 s.
    assert!(child.try_wait().unwrap().is_none(), "{warned:#?}");
    term(&child);
    assert!(line_with(&err, "cancelling", &mut warned), "{warned:#?}");
    let status = wait_child(&mut child).expect("berth ended");
    assert!(line_with(&out, "FAILED:", &mut said), "{said:#?}");
    assert_eq!(status.code(), Some(1), "{said:#?}\n{warned:#?}");
    let result = said.last().unwrap();
    assert!(result.contains("restored"), "{result}");
    // The engine: the original container, on v2, serves; no new, set-aside or kept container.
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    assert_eq!(inspect(&name, "{{.Id}}"), original);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    let (running, all) = containers(&scope);
    assert_eq!(running, vec![name.clone()], "{said:#?}");
    assert_eq!(all, vec![name.clone()], "nothing berth made is left");
    assert!(!common::has_run_journal(&name));
    assert_eq!(
        rollbacks(&env),
        vec![
            ("rollback".to_string(), "started".to_string()),
            ("rollback".to_string(), "failed".to_string()),
        ]
    );
    let audited = env.audit_lines().into_iter().last().unwrap();
    assert!(result.contains(&audited.message), "{result}\n{audited:?}");
}

/// What the rolled-back service serves, read from the engine: v1 on `port`, from `name`.
#[track_caller]
fn serves_v1(port: u16, name: &str) {
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(name, "{{.Config.Image}}"), "berth-test/web:v1");
}
