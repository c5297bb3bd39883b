//! Notifications end to end: the real binary runs real runbook actions on the real engine and posts
//! to webhook receivers that are small real HTTP servers on 127.0.0.1 (one that records, one that
//! answers 500, one that never answers); `[[notify]]` filters, a bad URL, `berth notify test`.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::runbook::AuditLog;
use common::{BERTH_TIMEOUT, OutputWithin, Scope, free_port, inspect, text, web_service};
use serde_json::Value;

/// The health settings of the web fixtures (they check every second).
const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Status(u16),
    Never,
}

/// A webhook receiver: records `(path, JSON body)` of each POST and answers as told. Stops (and
/// lets hanging connections go) when dropped; never runs longer than five minutes.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, Value)>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (record, halt) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let (record, halt) = (record.clone(), halt.clone());
                        std::thread::spawn(move || serve(sock, answer, &record, &halt));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Receiver { port, got, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<(String, Value)> {
        self.got.lock().unwrap().clone()
    }

    /// The bodies posted to `path`, in order.
    fn bodies(&self, path: &str) -> Vec<Value> {
        self.got()
            .into_iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b)
            .collect()
    }

    /// Waits (bounded) until `n` requests arrived.
    fn wait_for(&self, n: usize) -> bool {
        common::wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
            self.got.lock().unwrap().len() >= n
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    mut sock: TcpStream,
    answer: Answer,
    record: &Mutex<Vec<(String, Value)>>,
    halt: &AtomicBool,
) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let n = sock.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    record.lock().unwrap().push((path, body));
    match answer {
        Answer::Status(code) => {
            let _ = write!(
                sock,
                "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
            );
        }
        Answer::Never => {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A config file and data directory for one test.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!("{FAST}[servers.p]\ntarget = \"unix:///var/run/docker.sock\"\nenvironment = \"staging\"\n{extra}"),
        )
        .unwrap();
        Env { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn audit(&self) -> Vec<berth::runbook::AuditEntry> {
        AuditLog::at(self.data().join("audit.jsonl"))
            .read_last(100)
            .unwrap()
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(self.data().join("audit.jsonl")).unwrap_or_default()
    }

    fn berth(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        common::isolate(&mut c, &self.dir.path().join("home"))
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(args)
            .env("BERTH_DATA_DIR", self.data())
            .output_within(BERTH_TIMEOUT)
            .unwrap()
    }
}

fn entry(kind: &str, url: &str, extra: &str) -> String {
    format!("[[notify]]\nkind = \"{kind}\"\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn a_restart_posts_started_and_finished_to_each_kind() {
    let scope = Scope::new("notify");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let r = Receiver::start(Answer::Status(204));
    let env = Env::new(&format!(
        "{}{}{}",
        entry("discord", &r.url("/discord/SECRET-D"), ""),
        entry("slack", &r.url("/slack/SECRET-S"), ""),
        entry("generic", &r.url("/generic/SECRET-G"), ""),
    ));
    let before = inspect(&name, "{{.State.StartedAt}}");
    let out = env.berth(&["-s", "p", "restart", &name, "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_ne!(inspect(&name, "{{.State.StartedAt}}"), before);
    assert!(r.wait_for(6), "{:?}", r.got());
    assert!(
        !t.contains("could not be delivered"),
        "no failure to report: {t}"
    );

    let generic = r.bodies("/generic/SECRET-G");
    assert_eq!(generic.len(), 2, "{generic:?}");
    let (start, end) = (&generic[0], &generic[1]);
    assert_eq!(
        (&start["action"], &start["phase"], &start["result"]),
        (
            &Value::from("restart"),
            &Value::from("started"),
            &Value::from("started")
        )
    );
    assert_eq!(
        (&end["phase"], &end["result"]),
        (&Value::from("finished"), &Value::from("succeeded"))
    );
    assert_eq!(end["server"], "p");
    assert_eq!(end["environment"], "staging");
    assert_eq!(end["service"], name.as_str());
    assert!(end["duration_ms"].as_u64().unwrap() > 0, "{end}");
    assert!(end["user"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(
        end["message"].as_str().unwrap().contains("restart done"),
        "{end}"
    );

    let discord = r.bodies("/discord/SECRET-D");
    assert_eq!(discord.len(), 2);
    let content = discord[1]["content"].as_str().unwrap();
    assert!(
        content.contains(&format!("restart of {name} on p (staging) succeeded")),
        "{content}"
    );
    assert!(discord[1]["embeds"][0]["fields"].is_array());
    let slack = r.bodies("/slack/SECRET-S");
    assert_eq!(slack.len(), 2);
    assert!(slack[0]["text"].as_str().unwrap().contains("started"));
    assert_eq!(slack[1]["blocks"][0]["type"], "section");

    let audit = env.audit();
    assert!(
        audit.iter().all(|e| e.action == "restart"),
        "no delivery failed: {audit:?}"
    );
}

#[test]
fn a_failed_rollback_says_restored_the_images_and_the_failing_step() {
    let scope = Scope::new("notify");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let r = Receiver::start(Answer::Status(200));
    let env = Env::new(&entry("generic", &r.url("/g"), "events = [\"rollback\"]"));
    let out = env.berth(&[
        "-s",
        "p",
        "rollback",
        &name,
        "--to",
        "berth-test/web:bad",
        "--yes",
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(r.wait_for(2), "{:?}", r.got());
    let bodies = r.bodies("/g");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies[0]["from_image"]
            .as_str()
            .unwrap()
            .starts_with("berth-test/web:v1 (sha256:")
            && bodies[0]["to_image"]
                .as_str()
                .unwrap()
                .starts_with("berth-test/web:bad (sha256:"),
        "{}",
        bodies[0]
    );
    let end = &bodies[1];
    assert_eq!(end["result"], "restored", "{end}");
    assert!(
        end["failed_step"].as_str().is_some_and(|s| !s.is_empty()),
        "{end}"
    );
    let error = end["error"].as_str().unwrap();
    assert!(!error.is_empty() && error.lines().count() <= 6, "{error}");
}

#[test]
fn a_receiver_answering_500_is_retried_reported_and_audited_and_the_action_succeeds() {
    let scope = Scope::new("notify");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let r = Receiver::start(Answer::Status(500));
    let env = Env::new(&entry("slack", &r.url("/services/T0/B0/S3CRET"), ""));
    let out = env.berth(&["-s", "p", "restart", &name, "--yes"]);
    let t = text(&out);
    assert!(
        out.status.success(),
        "the action does not fail with its notice: {t}"
    );
    assert_eq!(r.got().len(), 6, "two notices, three tries each");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let masked = format!("http://127.0.0.1:{}/…", r.port);
    assert!(
        stderr.contains(&format!(
            "the notice “restart of {name} started” could not be delivered to {masked}: HTTP 500"
        )) && stderr.contains("after 3 tries"),
        "{stderr}"
    );
    let failed: Vec<_> = env
        .audit()
        .into_iter()
        .filter(|e| e.action == "notify")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|e| e.result == "failed" && e.target == masked)
    );
    assert!(!t.contains("S3CRET") && !env.audit_text().contains("S3CRET"));
}

#[test]
fn a_receiver_that_never_answers_does_not_hold_the_action() {
    let scope = Scope::new("notify");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let r = Receiver::start(Answer::Never);
    let env = Env::new(&entry("discord", &r.url("/api/webhooks/1/H4NG"), ""));
    let out = env.berth(&["-s", "p", "restart", &name, "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("OK: "), "{t}");
    assert!(
        t.contains("still undelivered when berth exited") || t.contains("no answer within 5 s"),
        "{t}"
    );
    // The run ended (its `ok` line) before any notice gave up: nothing waited for the receiver.
    let audit = env.audit();
    let ok = audit
        .iter()
        .position(|e| e.action == "restart" && e.result == "ok");
    let first_failure = audit.iter().position(|e| e.action == "notify");
    assert!(
        matches!((ok, first_failure), (Some(a), Some(b)) if a < b),
        "{audit:?}"
    );
    assert!(!t.contains("H4NG") && !env.audit_text().contains("H4NG"));
}

#[test]
fn events_and_servers_choose_the_webhooks() {
    let scope = Scope::new("notify");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let r = Receiver::start(Answer::Status(200));
    let env = Env::new(&format!(
        "{}{}{}{}",
        entry(
            "generic",
            &r.url("/rollbacks"),
            "events = [\"rollback\", \"deploy\"]"
        ),
        entry("generic", &r.url("/other-server"), "servers = [\"prod\"]"),
        entry(
            "generic",
            &r.url("/this-server"),
            "servers = [\"p\"]\nevents = [\"restart\"]"
        ),
        entry("generic", &r.url("/all"), ""),
    ));
    let out = env.berth(&["-s", "p", "restart", &name, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(r.wait_for(4));
    let mut paths: Vec<String> = r.got().into_iter().map(|(p, _)| p).collect();
    paths.sort();
    assert_eq!(paths, vec!["/all", "/all", "/this-server", "/this-server"]);
}

#[test]
fn a_bad_webhook_url_is_one_line_naming_the_entry() {
    let env = Env::new(&format!(
        "{}{}",
        entry("generic", "https://example.invalid/ok", ""),
        entry("slack", "hooks.example.invalid/services/SECRET", ""),
    ));
    let out = env.berth(&["-s", "p", "ps"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("config.toml:13:")
            && stderr.contains("[[notify]] entry 2: url has no scheme"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECRET"), "{stderr}");
    let env = Env::new(&entry("teams", "https://example.invalid/x", ""));
    let out = env.berth(&["notify", "test"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("[[notify]] entry 1: kind \"teams\" is unknown"),
        "{stderr}"
    );
}

#[test]
fn notify_test_says_ok_or_why_not_for_each_webhook() {
    let ok = Receiver::start(Answer::Status(204));
    let refused = Receiver::start(Answer::Status(403));
    let env = Env::new(&format!(
        "{}{}",
        entry("discord", &ok.url("/d/S3CRET"), ""),
        entry("generic", &refused.url("/g/S3CRET"), ""),
    ));
    let out = env.berth(&["notify", "test"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!("ok      discord  http://127.0.0.1:{}/…", ok.port))
            && t.contains(&format!(
                "failed  generic  http://127.0.0.1:{}/…: HTTP 403",
                refused.port
            )),
        "{t}"
    );
    assert!(!t.contains("S3CRET"), "{t}");
    assert!(
        ok.bodies("/d/S3CRET")[0]["content"]
            .as_str()
            .unwrap()
            .contains("berth test notification")
    );
    let none = Env::new("");
    let out = none.berth(&["notify", "test"]);
    assert!(!out.status.success() && text(&out).contains("no [[notify]] webhook is configured"));
}

#[test]
fn the_console_posts_too_and_shows_a_failed_delivery_in_the_status_line() {
    use common::pty::Session;
    let scope = Scope::new("notify");
    let name = scope.name("app");
    common::docker(&["create", "--name", &name, "berth-test/web:v1"]);
    let r = Receiver::start(Answer::Status(500));
    let env = Env::new(&entry("generic", &r.url("/console/S3CRET"), ""));
    let config = env.dir.path().join("config.toml").display().to_string();
    let data = env.data().display().to_string();
    let mut s = Session::start(
        &["--config", &config, "-s", "p"],
        &[("BERTH_DATA_DIR", data.as_str())],
    );
    s.expect(&name, Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    assert!(s.wait_for("filter “", Duration::from_secs(5)));
    s.type_keys("U");
    s.expect("y / Enter go ahead", Duration::from_secs(10));
    s.type_keys("y");
    s.expect("done in", Duration::from_secs(40));
    s.expect("HTTP 500", Duration::from_secs(20));
    assert!(!s.text().contains("S3CRET"));
    // The "HTTP 500" on screen may be the start notice's: the end notice is posted (and retried)
    // after the run, so wait for it, bounded.
    let both = |bodies: &[Value]| {
        bodies
            .iter()
            .any(|b| b["action"] == "start" && b["phase"] == "started")
            && bodies.iter().any(|b| b["result"] == "succeeded")
    };
    common::wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        both(&r.bodies("/console/S3CRET"))
    });
    let bodies = r.bodies("/console/S3CRET");
    assert!(both(&bodies), "{bodies:?}");
    s.type_keys("q");
    assert!(
        s.wait_exit(Duration::from_secs(15))
            .is_some_and(|st| st.success())
    );
    let audit = env.audit();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "start" && e.result == "ok")
            && audit
                .iter()
                .any(|e| e.action == "notify" && e.result == "failed"),
        "{audit:?}"
    );
    assert!(!env.audit_text().contains("S3CRET"));
}
