//! `berth doctor` (the built binary) against a real sshd and the real engine: every line ✓ on a good
//! setup; the failing step named, with its fix, and a non-zero exit on broken ones.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::process::Command;

use common::sshd::{ClientHome, Sshd, SshdOptions, trusted_pair};

fn doctor(home: &ClientHome, config: &str, server: &str) -> (bool, String) {
    berth_on(home, config, &["-s", server, "doctor"])
}

/// The built berth with `config` as its config file and `home` as HOME: (success, stdout+stderr).
fn berth_on(home: &ClientHome, config: &str, args: &[&str]) -> (bool, String) {
    let cfg = home.path().join("berth.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--config"])
        .arg(&cfg)
        .args(args)
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("BERTH_CONFIG")
        .output_within(BERTH_TIMEOUT)
        .expect("berth runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn setup() -> (Sshd, ClientHome) {
    let (sshd, home) = trusted_pair();
    home.write_config(&format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n",
        sshd.port
    ));
    (sshd, home)
}

#[test]
fn good_setup_passes_every_check() {
    let (_sshd, home) = setup();
    let (ok, text) = doctor(&home, "[servers.good]\ntarget = \"box\"\n", "good");
    assert!(ok, "{text}");
    for step in [
        "ssh config",
        "name resolution",
        "tcp reach",
        "ssh handshake",
        "authentication",
        "docker socket",
        "engine",
        "disk",
    ] {
        assert!(
            text.contains(&format!("✓ {step}:")),
            "no ✓ {step} in:\n{text}"
        );
    }
    assert!(!text.contains('✗'), "{text}");
    assert!(text.contains("publickey"), "{text}");
    assert!(text.contains("API 1."), "{text}");

    // The local engine: the socket checks only.
    let (ok, text) = doctor(&home, "", "local");
    assert!(ok, "{text}");
    assert!(
        text.contains("✓ docker socket: /var/run/docker.sock answers"),
        "{text}"
    );
    assert!(
        text.contains("✓ engine:") && !text.contains("ssh handshake"),
        "{text}"
    );
    println!("{text}");
}

#[test]
fn broken_setups_name_the_failing_step() {
    let (mut sshd, home) = setup();
    let (ok, text) = doctor(
        &home,
        "[servers.nosock]\ntarget = \"box\"\nsocket = \"/nonexistent/docker.sock\"\n",
        "nosock",
    );
    assert!(!ok, "{text}");
    assert!(text.contains("✓ authentication:"), "{text}");
    assert!(
        text.contains("✗ docker socket: no Docker socket at /nonexistent/docker.sock"),
        "{text}"
    );

    let (ok, text) = doctor(&home, "", "unix:///nonexistent/docker.sock");
    assert!(!ok);
    assert!(
        text.contains("✗ docker socket: no socket at /nonexistent/docker.sock"),
        "{text}"
    );

    // A changed host key stops at the handshake.
    let other = home.keygen("other_host", "ed25519", "");
    std::fs::write(
        home.ssh("known_hosts"),
        format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port,
            common::sshd::pub_key(&other)
        ),
    )
    .unwrap();
    let (ok, text) = doctor(&home, "", "box");
    assert!(!ok);
    assert!(
        text.contains("✗ ssh handshake: REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{text}"
    );
    assert!(!text.contains("✓ authentication"), "{text}");

    sshd.stop();
    let (ok, text) = doctor(&home, "", "box");
    assert!(!ok);
    assert!(
        text.contains("✗ tcp reach:") && text.contains("refused"),
        "{text}"
    );
}

/// Runs `berth -s SERVER doctor` on a pseudo-terminal, answering each prompt that appears.
fn doctor_on_tty(home: &ClientHome, server: &str, answers: &[(&str, &str)]) -> (bool, String) {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["-s", server, "doctor"]);
    cmd.env("HOME", home.path());
    std::fs::write(home.path().join("empty.toml"), "").unwrap();
    cmd.env("BERTH_CONFIG", home.path().join("empty.toml"));
    for v in ["SSH_AUTH_SOCK", "DOCKER_HOST", "DOCKER_CONTEXT"] {
        cmd.env_remove(v);
    }
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let screen = Arc::new(Mutex::new(String::new()));
    let sink = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    for (prompt, answer) in answers {
        let seen = common::wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
            screen.lock().unwrap().contains(prompt)
        });
        assert!(
            seen,
            "no prompt {prompt:?} on the tty:\n{}",
            screen.lock().unwrap()
        );
        writer.write_all(format!("{answer}\r").as_bytes()).unwrap();
        writer.flush().unwrap();
    }
    let mut status = None;
    common::wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!("berth doctor did not finish:\n{}", screen.lock().unwrap());
    };
    // Let the reader thread drain what is left.
    std::thread::sleep(Duration::from_millis(200));
    let text = screen.lock().unwrap().clone();
    (status.success(), text)
}

#[test]
fn asks_on_the_tty_for_an_unknown_host_and_a_passphrase() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(false);
    let key = home.keygen("id_ed25519", "ed25519", "tty secret");
    sshd.authorize(&key);
    home.write_config(&format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n",
        sshd.port
    ));
    let fp = {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(sshd.host_key_path())
            .output_within(BERTH_TIMEOUT)
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let (ok, text) = doctor_on_tty(
        &home,
        "box",
        &[
            ("Connect? [y]es", "y"),
            ("Enter passphrase for key", "tty secret"),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains(&fp), "the fingerprint is shown: {text}");
    assert!(
        !text.contains("tty secret"),
        "the passphrase is not echoed: {text}"
    );
    assert!(text.contains("✓ docker socket"), "{text}");
    let known = std::fs::read_to_string(home.ssh("known_hosts")).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "saved: {known}"
    );
}

/// A Docker socket on the server that accepts the connection and never answers (a hung engine, or
/// a socket proxy that stalls): the channel opens, no answer comes. `ps` ends within its bound
/// with one line naming what did not answer; the console shows it and still answers keys.
#[test]
fn an_engine_socket_that_never_answers_is_bounded_and_named() {
    let (_sshd, home) = setup();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Accept and hold every connection, silent, for as long as the test runs.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(300));
    });
    let config = format!(
        "[servers.mute]\ntarget = \"box\"\nsocket = \"{}\"\n",
        socket.display()
    );
    let (ok, text) = berth_on(&home, &config, &["-s", "mute", "ps"]);
    let cfg = home.path().join("berth.toml");
    assert!(!ok, "a mute engine is an error: {text}");
    assert!(
        text.contains("mute.sock")
            && text.contains("did not answer")
            && text.contains("dockerd hung"),
        "the error names the socket that did not answer: {text}"
    );
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");

    // The console: the error is on screen and keys still work.
    let mut s = common::pty::Session::sized(
        30,
        120,
        &["--config", cfg.to_str().unwrap(), "-s", "mute"],
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("SSH_AUTH_SOCK", ""),
        ],
    );
    assert!(
        s.wait_for("did not answer", std::time::Duration::from_secs(60)),
        "the console says the engine did not answer:\n{}",
        s.text()
    );
    s.type_keys("q");
    assert!(
        s.wait_exit(std::time::Duration::from_secs(10)).is_some(),
        "q still quits:\n{}",
        s.text()
    );
}
