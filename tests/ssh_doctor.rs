//! `berth doctor` (the built binary) against a real sshd and the real engine: every line ✓ on a good
//! setup; the failing step named, with its fix, and a non-zero exit on broken ones.

mod common;

use std::process::Command;

use common::sshd::{ClientHome, Sshd, SshdOptions};

fn doctor(home: &ClientHome, config: &str, server: &str) -> (bool, String) {
    let cfg = home.path().join("berth.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--config"])
        .arg(&cfg)
        .args(["-s", server, "doctor"])
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("BERTH_CONFIG")
        .output()
        .expect("berth runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn setup() -> (Sshd, ClientHome) {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
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
