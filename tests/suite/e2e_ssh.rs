//! The console over SSH, end to end: the real binary in a pty, a real OpenSSH sshd on loopback, and
//! the questions the SSH layer asks answered in the console's popups.

use crate::common;

use std::time::Duration;

use common::Scope;
use common::pty::Session;
use common::sshd::{ClientHome, Sshd, SshdOptions, trusted_pair};

fn config_for(sshd: &Sshd, identity: &str) -> String {
    format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/{identity}\n  IdentitiesOnly yes\n",
        sshd.port
    )
}

fn env(home: &ClientHome) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", home.path().display().to_string()),
        ("SSH_AUTH_SOCK", String::new()),
    ]
}

#[test]
fn unknown_host_is_asked_in_the_console_and_saved() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.write_config(&config_for(&sshd, "id_ed25519"));
    let scope = Scope::new("sshtui");
    scope.run("web", &["berth-test/web:v1"]);

    let env = env(&home);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Wide enough that the header keeps the transport beside a long warning about another
    // test's rollback in flight on the shared engine (it names up to two containers and a count).
    let mut s = Session::sized(40, 400, &["-s", "box"], &envs);
    s.expect("can't be established", Duration::from_secs(20));
    assert!(
        s.text().contains("SHA256:"),
        "the fingerprint is shown:\n{}",
        s.text()
    );
    s.type_keys("s");
    s.expect(&scope.name("web"), Duration::from_secs(20));
    assert!(s.text().contains("ssh streamlocal"), "{}", s.text());
    let rtt = regex::Regex::new(r"● live · \d+ ms").unwrap();
    assert!(
        common::wait_until(Duration::from_secs(10), Duration::from_millis(50), || rtt
            .is_match(&s.text())),
        "round-trip time in the header:\n{}",
        s.text()
    );
    let known = std::fs::read_to_string(home.ssh("known_hosts")).unwrap_or_default();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "saved: {known}"
    );
    s.quit_ok();
}

#[test]
fn refusing_an_unknown_host_shows_the_error_screen() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.write_config(&config_for(&sshd, "id_ed25519"));
    let env = env(&home);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Wide enough that the header keeps the transport beside a long warning about another
    // test's rollback in flight on the shared engine (it names up to two containers and a count).
    let mut s = Session::sized(40, 400, &["-s", "box"], &envs);
    s.expect("can't be established", Duration::from_secs(20));
    s.type_keys("r");
    s.expect("Cannot reach the Docker engine", Duration::from_secs(20));
    assert!(
        !home.ssh("known_hosts").exists()
            || std::fs::read_to_string(home.ssh("known_hosts"))
                .unwrap()
                .is_empty()
    );
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn encrypted_key_passphrase_is_asked_masked() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(false);
    let key = home.keygen("id_locked", "ed25519", "open sesame");
    sshd.authorize(&key);
    home.trust(&sshd);
    home.write_config(&config_for(&sshd, "id_locked"));
    let env = env(&home);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut s = Session::start(&["-s", "box"], &envs);
    s.expect("is encrypted", Duration::from_secs(20));
    s.type_keys("open sesame");
    s.expect("•••", Duration::from_secs(5));
    assert!(
        !s.text().contains("open sesame"),
        "the passphrase is never shown"
    );
    s.type_keys("\r");
    s.expect("ssh streamlocal", Duration::from_secs(20));
    s.quit_ok();
}

#[test]
fn sshd_restart_marks_stale_then_resumes_the_live_list() {
    let (mut sshd, home) = trusted_pair();
    home.write_config(
        &(config_for(&sshd, "id_ed25519") + "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"),
    );
    // The names are long (berth-t-sshre-PID-N-before) and the list may cut their ends on a
    // narrow column: the screen is searched for unique prefixes.
    let scope = Scope::new("sshre");
    scope.run("before", &["berth-test/logger"]);
    let env = env(&home);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut s = Session::start(&["-s", "box"], &envs);
    s.expect(&scope.name("bef"), Duration::from_secs(20));

    sshd.stop();
    assert!(
        s.wait_for("stale", Duration::from_secs(20)) || s.text().contains("reconnecting"),
        "the link loss shows:\n{}",
        s.text()
    );
    assert!(
        s.text().contains(&scope.name("bef")),
        "the last state stays on screen:\n{}",
        s.text()
    );
    // Something happens on the server while berth is cut off.
    scope.run("during", &["berth-test/logger"]);
    sshd.restart();
    assert!(
        s.wait_for(&scope.name("dur"), Duration::from_secs(40)),
        "resynced after reconnect:\n{}",
        s.text()
    );
    s.expect("● live", Duration::from_secs(20));
    // And the events stream is live again: a container started now appears too.
    scope.run("after", &["berth-test/logger"]);
    s.expect(&scope.name("aft"), Duration::from_secs(20));
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}
