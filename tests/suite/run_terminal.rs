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
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v1");
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
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v1");
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
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v1");
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
