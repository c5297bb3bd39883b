//! How fast the console admits a frozen link: the real binary in a pty, over a real sshd on
//! loopback, with the ssh defaults (no `ServerAlive*` options). Each round freezes the session
//! (SIGSTOP of sshd's connection process: TCP stays open, the peer goes silent) and times the
//! screen until it says `stale`, then until it reads `● live` again after berth redialled.
//! Ignored by `cargo test`: run it with `scripts/bench-stale.sh`. Prints figures; asserts only
//! that each state was seen.

use crate::common;

use std::time::{Duration, Instant};

use common::pty::Session;
use common::sshd::{ClientHome, Sshd, SshdOptions};

const ROUNDS: usize = 3;

fn wait_for_text(s: &Session, needle: &str, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if s.text().contains(needle) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
#[ignore]
fn frozen_link_to_stale_and_back_to_live() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_config(&format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes\n",
        sshd.port
    ));
    let home_dir = home.path().display().to_string();
    let envs = [("HOME", home_dir.as_str()), ("SSH_AUTH_SOCK", "")];
    let s = Session::start(&["-s", "box"], &envs);
    assert!(
        wait_for_text(&s, "● live", Duration::from_secs(30)).is_some(),
        "the console connects:\n{}",
        s.text()
    );
    let mut to_stale = Vec::new();
    let mut to_live = Vec::new();
    for round in 1..=ROUNDS {
        // Let a keepalive or two pass on the fresh link first.
        std::thread::sleep(Duration::from_secs(3));
        sshd.freeze_sessions();
        let t = Instant::now();
        let stale = wait_for_text(&s, "stale", Duration::from_secs(60))
            .unwrap_or_else(|| panic!("round {round}: never stale:\n{}", s.text()));
        let live = wait_for_text(&s, "● live", Duration::from_secs(60))
            .unwrap_or_else(|| panic!("round {round}: never live again:\n{}", s.text()));
        let back = t.elapsed();
        println!(
            "round {round}: frozen → stale on screen {:.2} s; frozen → live again (redialled) {:.2} s ({:.2} s after stale)",
            stale.as_secs_f64(),
            back.as_secs_f64(),
            live.as_secs_f64()
        );
        to_stale.push(stale);
        to_live.push(back);
    }
    to_stale.sort();
    to_live.sort();
    println!(
        "median of {ROUNDS}: frozen → stale {:.2} s (min {:.2}, max {:.2}); frozen → live {:.2} s (min {:.2}, max {:.2})",
        to_stale[ROUNDS / 2].as_secs_f64(),
        to_stale[0].as_secs_f64(),
        to_stale[ROUNDS - 1].as_secs_f64(),
        to_live[ROUNDS / 2].as_secs_f64(),
        to_live[0].as_secs_f64(),
        to_live[ROUNDS - 1].as_secs_f64(),
    );
}
