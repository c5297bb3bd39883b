//! End to end: the real `berth` binary in a pseudo-terminal against the real engine. Keys are typed,
//! the screen is read back through a VT100 parser.

use crate::common;

use std::time::Duration;

use common::dockerd::Dockerd;
use common::pty::Session;
use common::{Scope, wait_until};

#[test]
fn console_shows_containers_and_follows_a_new_one() {
    // An engine of the test's own: the events view must show this test's events, not be
    // scrolled past them by the other tests' containers on the shared engine.
    let engine = Dockerd::start();
    engine.load_images(&["berth-test/web:v1", "berth-test/logger:latest"]);
    let scope = Scope::new("e2e");
    let project = scope.project();
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &scope.name("web-1"),
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--label",
        "com.docker.compose.service=web",
        "--label",
        "com.docker.compose.container-number=1",
        "berth-test/web:v1",
    ]);
    let host = engine.host();
    let mut s = Session::start(&[], &[("DOCKER_HOST", host.as_str())]);
    assert!(
        s.wait_for(&project, Duration::from_secs(20)),
        "project group on screen:\n{}",
        s.text()
    );
    assert!(s.text().contains("● live"), "{}", s.text());

    // Started from a shell: it appears without any key pressed.
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &scope.name("late-arrival"),
        "berth-test/logger",
    ]);
    s.expect(&scope.name("late"), Duration::from_secs(10));

    // The events view has its start event.
    s.type_keys("E");
    s.expect("newest first", Duration::from_secs(5));
    assert!(
        s.text()
            .lines()
            .any(|l| l.contains(&scope.name("late")) && l.contains("start")),
        "{}",
        s.text()
    );
    s.type_keys("E");
    s.expect("containers ", Duration::from_secs(5));

    // Filter to the newcomer, open its details.
    s.type_keys("/late-arrival\r");
    s.expect("filter “late-arrival”", Duration::from_secs(5));
    s.type_keys("\r\r");
    s.expect("Environment (x reveals secrets)", Duration::from_secs(5));
    s.type_keys("?");
    s.expect("reveal / mask secret values", Duration::from_secs(5));
    s.type_keys("\x1b");
    // Esc and q in one read would be Alt-q, as in any terminal: wait for the help to close first.
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("reveal / mask secret values")),
        "{}",
        s.text()
    );
    s.type_keys("q");
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("berth exits on q");
    assert!(status.success());
    let text = s.raw_after_exit();
    assert!(
        text.contains("\u{1b}[?1049h") && text.contains("\u{1b}[?1049l"),
        "alternate screen entered and left"
    );
}

#[test]
fn terminal_is_restored_on_panic() {
    let mut s = Session::start(&[], &[("BERTH_TEST_PANIC", "1")]);
    let status = s
        .wait_exit(Duration::from_secs(20))
        .expect("berth exits after the panic");
    assert!(!status.success());
    let raw = s.raw_after_exit();
    let left = raw
        .find("\u{1b}[?1049l")
        .expect("left the alternate screen");
    let report = raw.find("deliberate panic").expect("panic report printed");
    assert!(
        left < report,
        "the terminal is restored before the report is printed"
    );
    assert!(raw[left..].contains("\u{1b}[?25h"), "cursor shown again");
}

#[test]
fn too_small_terminal_shows_a_notice() {
    let mut s = Session::sized(6, 30, &[], &[]);
    s.expect("Terminal too small", Duration::from_secs(15));
    s.quit_ok();
}

#[test]
fn shell_in_a_container_and_back() {
    let scope = Scope::new("shell");
    scope.run("box", &["berth-test/web:v1"]);
    let mut s = Session::start(&[], &[]);
    s.expect(&scope.name("box"), Duration::from_secs(20));
    s.type_keys(&format!("/{}\r", scope.name("box")));
    assert!(s.wait_for("filter “", Duration::from_secs(5)));
    s.type_keys("e");
    s.expect("exit the shell to return to berth", Duration::from_secs(10));
    s.expect("/ #", Duration::from_secs(10));
    // The shell prints its lines in order: once the last one is on screen, so is the file.
    s.type_keys("echo answer=$((6*7)); cat /www/version; echo end=$((1+1))\r");
    s.expect("end=2", Duration::from_secs(10));
    assert!(s.text().contains("answer=42"), "{}", s.text());
    assert!(s.text().contains("\nv1"), "{}", s.text());
    s.type_keys("exit 3\r");
    s.expect("exited with 3", Duration::from_secs(10));
    assert!(s.text().contains(&scope.name("box")), "the console is back");
    s.quit_ok();
}

#[test]
fn start_through_the_console_is_confirmed_verified_and_audited() {
    let scope = Scope::new("e2erb");
    let name = scope.name("app");
    common::docker(&["create", "--name", &name, "berth-test/web:v1"]);
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let mut s = Session::start(&[], &[("BERTH_DATA_DIR", data_dir.as_str())]);
    s.expect(&name, Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    assert!(s.wait_for("filter “", Duration::from_secs(5)));
    s.type_keys("U");
    s.expect("y / Enter go ahead", Duration::from_secs(10));
    assert!(
        s.text().contains("/start"),
        "the plan shows the engine call:\n{}",
        s.text()
    );
    s.type_keys("y");
    s.expect("done in", Duration::from_secs(40));
    assert!(s.text().contains("✓ 1."), "{}", s.text());
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).expect("an audit line");
    let line: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["action"], "start");
    assert_eq!(line["result"], "ok");
    assert!(line["target"].as_str().unwrap().contains(&name));
    s.type_keys("A");
    s.expect("audit log 2 entries", Duration::from_secs(5));
    s.quit_ok();
}

#[test]
fn logs_open_with_l_and_follow_new_lines() {
    let scope = Scope::new("e2elog");
    let name = scope.name("lg");
    // Escape sequences in the log must not move the cursor or clear berth's screen.
    scope.run(
        "lg",
        &[
            "berth-test/logger",
            "sh",
            "-c",
            r#"printf '\033[2J\033[H\033]0;pwned\007cleared?\n'; i=0; while true; do i=$((i+1)); echo "seq=$i msg=tick"; sleep 0.1; done"#,
        ],
    );
    let mut s = Session::start(&[], &[]);
    s.expect(&name, Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    s.expect(&format!("filter “{name}”"), Duration::from_secs(5));
    s.type_keys("L");
    s.expect(&format!("Logs · {name}"), Duration::from_secs(10));
    s.expect("seq=3 msg=tick", Duration::from_secs(20));
    // Still following: later lines arrive without a key.
    s.expect("seq=25 msg=tick", Duration::from_secs(30));
    let text = s.text();
    assert!(text.contains("cleared?"), "{text}");
    // The header's first line keeps the link state at every width, whatever else it holds.
    assert!(
        text.lines().next().is_some_and(|l| l.contains("● live")),
        "the header survived the clear-screen: {text}"
    );
    assert!(text.contains("● following"), "{text}");
    s.type_keys("k");
    s.expect("paused", Duration::from_secs(5));
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || !s
            .text()
            .contains("Logs ·")),
        "{}",
        s.text()
    );
    s.quit_ok();
}
