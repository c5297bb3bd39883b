//! The real `berth` console in a pseudo-terminal on the shared engine: every secret-looking
//! environment name masked (and revealed only on `x`), and a followed container that stops and
//! starts again picked up by the log view.

use crate::common;

use std::time::Duration;

use common::pty::Session;
use common::{Scope, docker, wait_until};

/// Every name the details pane must mask, each with a value found nowhere else.
const SECRETS: &[&str] = &[
    "DB_PASSWORD",
    "MYSQL_PASSWD",
    "APP_SECRET",
    "GITHUB_TOKEN",
    "API_KEY",
    "SSH_PRIVATE",
    "GOOGLE_CREDENTIALS",
    "BASIC_AUTH",
    "lower_password",
];

fn secret_value(i: usize) -> String {
    format!("s3cr3t-value-{i}-zq")
}

#[test]
fn every_secret_looking_name_is_masked_until_x() {
    let scope = Scope::new("mask");
    let mut args: Vec<String> = Vec::new();
    for (i, name) in SECRETS.iter().enumerate() {
        args.push("-e".into());
        args.push(format!("{name}={}", secret_value(i)));
    }
    args.extend([
        "-e".into(),
        "DATABASE_URL=postgres://app:urlpass-zq@db:5432/app".into(),
        "-e".into(),
        "PLAIN_SETTING=visible-zq".into(),
        "berth-test/logger".into(),
        "sleep".into(),
        "600".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    scope.run("env", &args);
    let name = scope.name("env");

    let mut s = Session::sized(70, 200, &[], &[]);
    s.expect("● live", Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    s.expect(&format!("filter “{name}”"), Duration::from_secs(5));
    // The row itself, not only the filter: on a loaded machine the container's row may come a
    // moment after the filter, and Enter before it lands on nothing.
    assert!(
        common::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            s.text()
                .lines()
                .any(|l| l.contains(&name) && l.contains("running") && !l.contains("filter"))
        }),
        "{}",
        s.text()
    );
    s.type_keys("\r");
    s.expect("Environment (x reveals secrets)", Duration::from_secs(10));
    s.expect("PLAIN_SETTING=visible-zq", Duration::from_secs(10));
    let screen = s.text();
    for name in SECRETS {
        assert!(
            screen.contains(&format!("{name}=••••••••")),
            "{name} is listed masked:\n{screen}"
        );
    }
    assert!(
        screen.contains("DATABASE_URL=postgres://app:••••@db:5432/app"),
        "{screen}"
    );
    // Not on screen, and never sent to the terminal at all.
    let raw = String::from_utf8_lossy(&s.raw.lock().unwrap()).to_string();
    for (i, _) in SECRETS.iter().enumerate() {
        assert!(
            !raw.contains(&secret_value(i)),
            "value {i} reached the terminal"
        );
    }
    assert!(!raw.contains("urlpass-zq"));

    // Enter again focuses the details pane, where `x` acts.
    s.type_keys("\r");
    s.type_keys("x");
    assert!(
        s.wait_for(&secret_value(0), Duration::from_secs(5)),
        "x reveals:\n{}",
        s.text()
    );
    let screen = s.text();
    for (i, name) in SECRETS.iter().enumerate() {
        assert!(
            screen.contains(&format!("{name}={}", secret_value(i))),
            "{name} revealed:\n{screen}"
        );
    }
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

/// The log view of a container that stops says it waits, and when the container starts again its
/// new lines arrive in the same view.
#[test]
fn following_a_stopped_container_until_it_restarts() {
    let scope = Scope::new("folrs");
    scope.run(
        "tick",
        &[
            "--stop-timeout",
            "1",
            "berth-test/logger",
            "sh",
            "-c",
            "echo boot-$RANDOM-$RANDOM; i=0; while :; do i=$((i+1)); echo tick=$i; sleep 0.3; done",
        ],
    );
    let name = scope.name("tick");
    let mut s = Session::start(&[], &[]);
    s.expect(&name, Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    s.expect(&format!("filter “{name}”"), Duration::from_secs(5));
    s.type_keys("L");
    s.expect(&format!("Logs · {name}"), Duration::from_secs(10));
    s.expect("tick=3", Duration::from_secs(20));
    let boot_re = regex::Regex::new(r"boot-\d+-\d+").unwrap();
    let boots = |s: &Session| -> Vec<String> {
        boot_re
            .find_iter(&s.text())
            .map(|m| m.as_str().to_string())
            .collect()
    };
    let first = boots(&s);
    assert_eq!(first.len(), 1, "{}", s.text());

    docker(&["stop", "-t", "1", &name]);
    assert!(
        s.wait_for("waiting for it to start", Duration::from_secs(30)),
        "the view says the container stopped:\n{}",
        s.text()
    );
    docker(&["start", &name]);
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
            boots(&s).iter().any(|b| *b != first[0])
        }),
        "the restarted container's lines arrive:\n{}",
        s.text()
    );
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || !s
            .text()
            .contains("waiting for it to start")),
        "the waiting note goes once it streams again:\n{}",
        s.text()
    );
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("Logs ·")),
        "{}",
        s.text()
    );
    s.quit_ok();
}
