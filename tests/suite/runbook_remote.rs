//! The runbook over a real OpenSSH sshd: a service's `health_url` is probed through the SSH tunnel
//! (it alone decides: the containers have no HEALTHCHECK), and `remote_audit` appends each change
//! to a file on the server, from the CLI and from the console.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::pty::Session;
use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::{BERTH_TIMEOUT, OutputWithin, Scope, free_port, http_get, text, wait_until};

fn berth(home: &ClientHome, dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut c, home.path())
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(args)
        .env("BERTH_DATA_DIR", dir.join("data"))
        .stdin(Stdio::null())
        .output_within(BERTH_TIMEOUT)
        .expect("berth finishes")
}

/// The (action, result) of each line of a JSON-lines audit file.
fn audit_lines(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("audit line is JSON");
            (
                v["action"].as_str().unwrap_or_default().to_string(),
                v["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        // Each run opens with a `started` line; these tests read the closing ones.
        .filter(|(_, r)| r != "started")
        .collect()
}

fn pair(a: &str, r: &str) -> (String, String) {
    (a.to_string(), r.to_string())
}

/// An sshd that logs each forwarded channel, a client HOME that trusts it (`Host box`), and a
/// config naming the server `srv` with a remote audit file and `extra` lines.
fn setup(extra: &str) -> (Sshd, ClientHome, tempfile::TempDir, std::path::PathBuf) {
    let sshd = Sshd::start(SshdOptions {
        log_level: "DEBUG1",
        ..Default::default()
    });
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_box_config(&sshd, "  IdentitiesOnly yes\n");
    let dir = tempfile::tempdir().unwrap();
    // "On the server": the same machine, a path berth can only reach through the SSH session.
    let remote = dir.path().join("server-side").join("audit.jsonl");
    std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[runbook]\nhealth_retries = 10\nhealth_interval_ms = 500\n\n[servers.srv]\ntarget = \"box\"\nremote_audit = \"{}\"\n{extra}",
            remote.display()
        ),
    )
    .unwrap();
    (sshd, home, dir, remote)
}

#[test]
fn health_url_through_the_tunnel_and_remote_audit_from_the_cli() {
    let scope = Scope::new("rbremote");
    let port = free_port();
    let project = scope.project();
    let (sshd, home, dir, remote) = setup(&format!(
        "\n[services.\"{project}/web\"]\nhealth_url = \"http://127.0.0.1:{port}/health\"\n"
    ));
    let publish = format!("127.0.0.1:{port}:8080");
    scope.run_service(
        "web",
        1,
        &[
            "--stop-timeout",
            "1",
            "--no-healthcheck",
            "-p",
            &publish,
            "berth-test/web:v2",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            http_get(port, "/version").as_deref() == Some("v2")
        }),
        "the fixture serves"
    );

    let out = berth(
        &home,
        dir.path(),
        &[
            "-s",
            "srv",
            "rollback",
            "web",
            "-p",
            &project,
            "--to",
            "berth-test/web:v1",
            "--yes",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("127.0.0.1:{port}/health")), "{t}");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    let log = sshd.log();
    assert!(
        log.contains("direct-tcpip") && log.contains(&format!("port {port}")),
        "the health URL was probed through the tunnel; sshd log:\n{log}"
    );
    assert_eq!(audit_lines(&remote), vec![pair("rollback", "ok")]);

    // /health answers 404 on the bad image: only the URL can tell, and the old one comes back.
    let out = berth(
        &home,
        dir.path(),
        &[
            "-s",
            "srv",
            "rollback",
            "web",
            "-p",
            &project,
            "--to",
            "berth-test/web:bad",
            "--yes",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("restored"), "{t}");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"), "{t}");
    assert_eq!(
        audit_lines(&remote),
        vec![pair("rollback", "ok"), pair("rollback", "failed")]
    );
    // The local audit has the same two.
    assert_eq!(
        audit_lines(&dir.path().join("data/audit.jsonl")),
        audit_lines(&remote)
    );
}

#[test]
fn remote_audit_from_the_console() {
    let scope = Scope::new("rbremtui");
    let (_sshd, home, dir, remote) = setup("");
    let name = scope.name("app");
    common::docker(&["create", "--name", &name, "berth-test/web:v1"]);
    let config = dir.path().join("config.toml").display().to_string();
    let data = dir.path().join("data").display().to_string();
    let home_s = home.path().display().to_string();
    let mut s = Session::start(
        &["--config", &config, "-s", "srv"],
        &[("HOME", home_s.as_str()), ("BERTH_DATA_DIR", data.as_str())],
    );
    // Long names are cut in the list: the scope's area is what shows.
    s.expect("rbremtui", Duration::from_secs(30));
    s.type_keys(&format!("/{name}\r"));
    s.expect(&format!("filter “{name}”"), Duration::from_secs(5));
    s.type_keys("U");
    s.expect("y / Enter go ahead", Duration::from_secs(10));
    s.type_keys("y");
    s.expect("done in", Duration::from_secs(60));
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            audit_lines(&remote) == vec![pair("start", "ok")]
        }),
        "the server's audit file has the console's start: {:?}\n{}",
        audit_lines(&remote),
        s.text()
    );
    assert!(!s.text().contains("warning: remote audit"), "{}", s.text());
    s.type_keys("\x1b");
    // Apart, or the terminal reads ESC q as Alt-q.
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

/// A webhook receiver on loopback that keeps every request it is sent, whole (head and body),
/// and answers 204. Stops with the test process; never runs longer than five minutes.
fn receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = got.clone();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while std::time::Instant::now() < deadline {
            let Ok((mut sock, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = sock.set_nonblocking(false);
            let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // The head, then as many body bytes as it announces.
            loop {
                let n = sock.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let length = text[..i]
                        .to_ascii_lowercase()
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + length {
                        break;
                    }
                }
            }
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).into_owned());
            let _ = sock.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// Secrets planted in `berth migrate --command` reach no output, no audit line (here and on the
/// server) and no notice body, on a run that fails and on one that succeeds; the command itself
/// runs with them (the container gets the real argument).
#[test]
fn a_planted_password_is_in_no_output_audit_or_notice() {
    let scope = Scope::new("rbsecret");
    let (port, notices) = receiver();
    let (sshd, home, dir, remote) = setup(&format!(
        "\n[[notify]]\nkind = \"generic\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\n[[notify]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/slack\"\n"
    ));
    let name = common::web_service(&scope, "berth-test/web:v1", free_port());
    const PLANTED: [&str; 3] = ["PLANTED1x", "PLANTED2x", "PLANTED3x"];
    // psql is not in the image: the run fails, and its notice names the failed step.
    let failing = berth(
        &home,
        dir.path(),
        &[
            "-s",
            "srv",
            "migrate",
            &name,
            "--command",
            "psql postgres://u:PLANTED1x@db/x -c 'select 1' --password PLANTED2x",
            "--yes",
        ],
    );
    assert_ne!(failing.status.code(), Some(0), "{}", text(&failing));
    // This one runs, and leaves its argument where the test can see the container got it.
    let marker = format!("/tmp/{}", scope.name("got"));
    let succeeding = berth(
        &home,
        dir.path(),
        &[
            "-s",
            "srv",
            "migrate",
            &name,
            "--command",
            &format!("env DB_PASSWORD=PLANTED3x sh -c 'echo \"$DB_PASSWORD\" > {marker}'"),
            "--yes",
        ],
    );
    let t = text(&succeeding);
    assert_eq!(succeeding.status.code(), Some(0), "{t}");
    assert!(
        t.contains("env DB_PASSWORD=•••••••• sh -c"),
        "the command is shown, masked: {t}"
    );
    assert_eq!(
        common::docker(&["exec", &name, "cat", &marker]).trim(),
        "PLANTED3x",
        "the container ran the command as given"
    );
    // Four notices: started and finished of each run, to each of the two webhooks.
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
            notices.lock().unwrap().len() >= 8
        }),
        "{:?}",
        notices.lock().unwrap()
    );
    let local = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    let server = std::fs::read_to_string(&remote).unwrap();
    assert!(local.contains("\"migrate\"") && server.contains("\"migrate\""));
    assert!(
        local.contains("••••••••") && server.contains("••••••••"),
        "the audit keeps the command, masked:\n{local}"
    );
    let everything = [
        text(&failing),
        t.clone(),
        local,
        server,
        notices.lock().unwrap().join("\n"),
        sshd.log(),
    ];
    for (what, said) in [
        "failing run",
        "succeeding run",
        "local audit",
        "server audit",
        "notices",
        "sshd's log",
    ]
    .iter()
    .zip(&everything)
    {
        for p in PLANTED {
            assert!(!said.contains(p), "{p} in the {what}:\n{said}");
        }
    }
}
