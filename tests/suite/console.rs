//! The live list against the real engine: the watcher follows events, `berth ps` prints the grouped
//! list, and bad input gets one clear line and a non-zero exit.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::process::Command;
use std::time::Duration;

use berth::engine;
use berth::engine::watch::WatchEvent;
use berth::ssh::SshOptions;
use berth::target::Target;
use common::{Scope, berth, docker};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Receives the watcher's news until `pred` matches one, within `within`.
async fn expect(
    rx: &mut mpsc::Receiver<WatchEvent>,
    within: Duration,
    mut pred: impl FnMut(&WatchEvent) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    for _ in 0..10_000 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) if pred(&event) => return true,
            Ok(Some(_)) => continue,
            _ => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_follows_create_start_die_destroy() {
    let scope = Scope::new("watch");
    let engine = engine::connect(&Target::local(), &SshOptions::default())
        .await
        .expect("local engine");
    let (tx, mut rx) = mpsc::channel(256);
    let (_resync_tx, resync_rx) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(engine::watch::watch(engine, tx, resync_rx, cancel.clone()));
    assert!(
        expect(&mut rx, Duration::from_secs(20), |e| matches!(
            e,
            WatchEvent::Snapshot(_)
        ))
        .await
    );

    let name = scope.name("web-1");
    let id = scope.run_service("web", 1, &["berth-test/web:v1"]);
    let seen = expect(&mut rx, Duration::from_secs(10), |e| {
        matches!(e, WatchEvent::Changed(c) if c.name == name && c.state == berth::engine::model::State::Running
            && c.project.as_deref() == Some(scope.project().as_str()) && c.service.as_deref() == Some("web"))
    })
    .await;
    assert!(seen, "the started container arrives as a Changed event");

    let healthy = expect(&mut rx, Duration::from_secs(20), |e| {
        matches!(e, WatchEvent::Changed(c) if c.id == id && c.health == berth::engine::model::Health::Healthy)
    })
    .await;
    assert!(healthy, "health_status events update the health column");

    docker(&["kill", &id]);
    let died = expect(&mut rx, Duration::from_secs(10), |e| {
        matches!(e, WatchEvent::Changed(c) if c.id == id && !c.state.is_up() && c.exit_code.is_some())
    })
    .await;
    assert!(died, "die shows the exit code");

    docker(&["rm", &id]);
    assert!(
        expect(
            &mut rx,
            Duration::from_secs(10),
            |e| matches!(e, WatchEvent::Gone(g) if *g == id)
        )
        .await
    );
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("watcher stops when cancelled")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_builds_the_details_model() {
    let scope = Scope::new("inspect");
    let id = scope.run_service(
        "api",
        2,
        &[
            "-e",
            "API_TOKEN=s3cr3t",
            "-p",
            "127.0.0.1::8080",
            "--restart",
            "on-failure:3",
            "--label",
            "team=ops",
            "berth-test/web:v2",
        ],
    );
    let engine = engine::connect(&Target::local(), &SshOptions::default())
        .await
        .unwrap();
    let c = engine.inspect(&id).await.unwrap().expect("exists");
    assert_eq!(c.number, Some(2));
    assert_eq!(c.image, "berth-test/web:v2");
    assert_eq!(c.restart_policy, "on-failure");
    assert!(c.env.iter().any(|e| e == "API_TOKEN=s3cr3t"));
    assert_eq!(c.labels.get("team").map(String::as_str), Some("ops"));
    assert!(c.has_healthcheck);
    let port = c
        .ports
        .iter()
        .find(|p| p.container_port == 8080)
        .expect("published port");
    assert!(port.host_port.is_some());
    assert_eq!(port.host_ip.as_deref(), Some("127.0.0.1"));
    assert!(
        c.networks
            .iter()
            .any(|n| n.network == "bridge" && !n.ip.is_empty())
    );
    assert!(
        engine
            .inspect("berth-no-such-container")
            .await
            .unwrap()
            .is_none()
    );
}

#[test]
fn ps_prints_groups_and_json() {
    let scope = Scope::new("ps");
    scope.run_service("web", 1, &["berth-test/web:v1"]);
    scope.run("lonely", &["berth-test/logger"]);
    let out = berth()
        .args(["ps", "--json", "--all"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let entries = v.as_array().unwrap();
    let web = entries
        .iter()
        .find(|e| e["name"] == scope.name("web-1"))
        .expect("web listed");
    assert_eq!(web["project"], scope.project());
    assert_eq!(web["service"], "web");
    assert_eq!(web["state"], "running");
    assert_eq!(web["image"], "berth-test/web:v1");
    assert!(web["id"].as_str().unwrap().len() == 64);
    assert!(["healthy", "starting"].contains(&web["health"].as_str().unwrap()));
    let lonely = entries
        .iter()
        .find(|e| e["name"] == scope.name("lonely"))
        .expect("standalone listed");
    assert!(lonely["project"].is_null());

    let text = berth().args(["ps"]).output_within(BERTH_TIMEOUT).unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let group_line = text
        .lines()
        .position(|l| l == scope.project())
        .expect("project header line");
    assert!(
        text.lines()
            .nth(group_line + 1)
            .unwrap()
            .trim_start()
            .starts_with("web-1")
    );
    assert!(text.contains("standalone"));
}

fn one_line_error(args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut c = berth();
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output_within(BERTH_TIMEOUT).unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_input_is_one_clear_line() {
    let err = one_line_error(&["-s", "nosuch", "ps"], &[]);
    assert!(err.contains("unknown server 'nosuch'"), "{err}");
    let err = one_line_error(&["ps"], &[("DOCKER_HOST", "udp://1.2.3.4")]);
    assert!(
        err.contains("unsupported scheme in 'udp://1.2.3.4'"),
        "{err}"
    );
    let err = one_line_error(
        &["ps"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert!(err.contains("cannot reach the Docker engine"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.toml");
    std::fs::write(&bad, "theme = \"dark\"\n[servers.prod]\ntarget = 42\n").unwrap();
    let err = one_line_error(&["--config", bad.to_str().unwrap(), "ps"], &[]);
    assert!(err.contains(&format!("{}:3:10", bad.display())), "{err}");
    let missing = dir.path().join("missing.toml");
    let err = one_line_error(&["--config", missing.to_str().unwrap(), "ps"], &[]);
    assert!(err.contains("cannot read config"), "{err}");

    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "[keys]\nquit = \"ctrl-\"\n").unwrap();
    // The console refuses a bad binding before it touches the terminal.
    let err = one_line_error(&["--config", keys.to_str().unwrap()], &[]);
    assert!(err.contains("[keys] quit = 'ctrl-' is not a key"), "{err}");
    let err = one_line_error(&["--theme", "neon"], &[]);
    assert!(err.contains("unknown theme 'neon'"), "{err}");
}

#[test]
fn socket_permission_denied_names_the_docker_group() {
    // Needs root to switch to an unprivileged user; the docker socket is root:docker 0660.
    let is_root = Command::new("id")
        .arg("-u")
        .output_within(BERTH_TIMEOUT)
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    assert!(
        is_root,
        "the test suite runs as root (scripts/test.sh installs and starts dockerd)"
    );
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_berth"), "ps"])
        .env("HOME", "/tmp")
        .env_remove("DOCKER_HOST")
        .output_within(BERTH_TIMEOUT)
        .expect("runuser runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied") && err.contains("docker` group"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1);
}

/// A TCP listener on loopback that forwards to the engine's unix socket: the engine as `tcp://`.
fn tcp_proxy_to_docker_socket() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Bounded: the test makes a handful of connections.
        for conn in listener.incoming().take(64) {
            let Ok(tcp) = conn else { break };
            let Ok(unix) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock") else {
                break;
            };
            let (mut tr, mut ur) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
            let (mut tw, mut uw) = (tcp, unix);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut tr, &mut uw);
                let _ = uw.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut ur, &mut tw);
                let _ = tw.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn docker_host_tcp_and_server_flag() {
    let scope = Scope::new("tcp");
    scope.run("box", &["berth-test/logger"]);
    let port = tcp_proxy_to_docker_socket();
    let host = format!("tcp://127.0.0.1:{port}");
    let out = berth()
        .args(["ps", "--json"])
        .env("DOCKER_HOST", &host)
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&scope.name("box")));
    let out = berth()
        .args(["-s", &host, "ps"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&scope.name("box")));
}
