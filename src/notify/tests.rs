//! Delivery against real HTTP servers on 127.0.0.1: one that records, one that answers 500, one
//! that never answers.

use super::*;
use crate::config::notify::NotifyKind;
use crate::runbook::notice::{Outcome, Phase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Never,
}

/// A webhook receiver: records each request's path and JSON body, answers as told.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    async fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = got.clone();
        tokio::spawn(async move {
            // Bounded: a test makes a handful of requests.
            for _ in 0..50 {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
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
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
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
                            let text = format!(
                                "HTTP/1.1 {code} X\r\ncontent-length: 9\r\nconnection: close\r\n\r\nsaid {code}"
                            );
                            let _ = sock.write_all(text.as_bytes()).await;
                        }
                        Answer::Never => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                    }
                });
            }
        });
        Receiver { port, got }
    }

    fn url(&self, secret: &str) -> WebhookUrl {
        WebhookUrl::parse(&format!("http://127.0.0.1:{}/hooks/{secret}", self.port)).unwrap()
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

fn entry(kind: NotifyKind, url: WebhookUrl) -> NotifyEntry {
    NotifyEntry {
        kind,
        url,
        events: None,
        servers: None,
    }
}

fn quick() -> Retry {
    Retry {
        tries: 3,
        backoff: Duration::from_millis(20),
        timeout: Duration::from_millis(300),
    }
}

fn notice(phase: Phase, result: Outcome) -> RunNotice {
    RunNotice {
        action: "restart".into(),
        phase,
        server: "prod".into(),
        environment: Some("production".into()),
        service: "shop/web".into(),
        result,
        from_image: None,
        to_image: None,
        user: "ana@laptop".into(),
        duration: Duration::from_millis(1500),
        message: "restarted".into(),
        failed_step: None,
        error: None,
    }
}

#[tokio::test]
async fn posts_started_then_finished_in_order() {
    let r = Receiver::start(Answer::Status(204)).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::at(dir.path().join("audit.jsonl"));
    let n = Notifier::new(
        &[entry(NotifyKind::Generic, r.url("T0KEN"))],
        quick(),
        audit.clone(),
        None,
    );
    n.notify(notice(Phase::Started, Outcome::Started));
    n.notify(notice(Phase::Finished, Outcome::Succeeded));
    n.finish(Duration::from_secs(10)).await;
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "/hooks/T0KEN");
    assert_eq!(got[0].1["phase"], "started");
    assert_eq!(got[1].1["result"], "succeeded");
    assert_eq!(got[1].1["duration_ms"], 1500);
    assert!(
        audit.read_last(10).unwrap().is_empty(),
        "a delivery that worked is not a failure"
    );
}

#[tokio::test]
async fn a_500_is_retried_then_reported_and_audited_without_the_secret() {
    let r = Receiver::start(Answer::Status(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::at(dir.path().join("audit.jsonl"));
    let (tx, mut rx) = mpsc::channel(REPORTS);
    let n = Notifier::new(
        &[entry(NotifyKind::Slack, r.url("S3CRET"))],
        quick(),
        audit.clone(),
        Some(tx),
    );
    n.notify(notice(Phase::Finished, Outcome::Failed));
    n.finish(Duration::from_secs(10)).await;
    assert_eq!(r.count(), 3, "three tries");
    let report = rx.try_recv().unwrap();
    assert!(
        report.contains(&format!("to http://127.0.0.1:{}/…", r.port))
            && report.contains("HTTP 500")
            && report.contains("after 3 tries")
            && !report.contains("S3CRET"),
        "{report}"
    );
    let lines = audit.read_last(10).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].action.as_str(), lines[0].result.as_str()),
        ("notify", "failed")
    );
    let text = std::fs::read_to_string(&audit.path).unwrap();
    assert!(!text.contains("S3CRET"), "{text}");
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_bounded() {
    let r = Receiver::start(Answer::Never).await;
    let secret = r.url("H4NG");
    let e = deliver(&client(quick()), &secret, &Value::Null, quick())
        .await
        .unwrap_err();
    assert_eq!(e.1, 3);
    assert!(e.0.contains("no answer within 0.3 s"), "{}", e.0);
    // At exit berth waits no longer than its bound, then says what it gave up.
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::at(dir.path().join("audit.jsonl"));
    let (tx, mut rx) = mpsc::channel(REPORTS);
    let slow = Retry {
        timeout: Duration::from_secs(30),
        ..quick()
    };
    let n = Notifier::new(
        &[entry(NotifyKind::Discord, secret)],
        slow,
        audit.clone(),
        Some(tx),
    );
    n.notify(notice(Phase::Started, Outcome::Started));
    n.finish(Duration::from_millis(300)).await;
    let report = rx.try_recv().unwrap();
    assert!(
        report.contains("still undelivered when berth exited") && !report.contains("H4NG"),
        "{report}"
    );
    assert_eq!(audit.read_last(10).unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_names_no_secret() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/x/K3Y?token=K3Y")).unwrap();
    let e = deliver(&client(quick()), &url, &Value::Null, quick())
        .await
        .unwrap_err();
    assert!(
        e.0.starts_with("cannot connect") && !e.0.contains("K3Y"),
        "{}",
        e.0
    );
}

#[tokio::test]
async fn filters_choose_the_webhooks() {
    let r = Receiver::start(Answer::Status(200)).await;
    let mut only_rollback = entry(NotifyKind::Generic, r.url("a"));
    only_rollback.events = Some(vec![crate::config::notify::EventName("rollback".into())]);
    let mut only_staging = entry(NotifyKind::Generic, r.url("b"));
    only_staging.servers = Some(vec!["staging".into()]);
    let all = entry(NotifyKind::Generic, r.url("c"));
    let dir = tempfile::tempdir().unwrap();
    let n = Notifier::new(
        &[only_rollback, only_staging, all],
        quick(),
        AuditLog::at(dir.path().join("a.jsonl")),
        None,
    );
    n.notify(notice(Phase::Started, Outcome::Started));
    n.finish(Duration::from_secs(10)).await;
    let paths: Vec<String> = r.got.lock().unwrap().iter().map(|g| g.0.clone()).collect();
    assert_eq!(paths, vec!["/hooks/c".to_string()]);
}

#[tokio::test]
async fn test_all_says_which_worked() {
    let ok = Receiver::start(Answer::Status(200)).await;
    let bad = Receiver::start(Answer::Status(404)).await;
    let results = test_all(
        &[
            entry(NotifyKind::Discord, ok.url("d")),
            entry(NotifyKind::Slack, bad.url("s")),
        ],
        quick(),
    )
    .await;
    assert_eq!(results[0].outcome, Ok(1));
    assert_eq!(results[0].kind, "discord");
    let e = results[1].outcome.clone().unwrap_err();
    assert!(
        e.contains("HTTP 404") && !e.contains("after"),
        "a 404 is not retried: {e}"
    );
    assert_eq!(bad.count(), 1);
    let body = &ok.got.lock().unwrap()[0].1;
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .contains("berth test notification")
    );
}

#[test]
fn every_runbook_action_can_be_chosen() {
    for kind in crate::runbook::ActionKind::ALL {
        assert!(
            crate::config::notify::EVENTS.contains(&kind.as_str()),
            "{} is missing from the [[notify]] events",
            kind.as_str()
        );
    }
    use crate::runbook::swarm::SwarmAction;
    for action in [
        SwarmAction::Scale(1),
        SwarmAction::Restart,
        SwarmAction::Rollback,
        SwarmAction::Drain,
        SwarmAction::Activate,
    ] {
        assert!(
            crate::config::notify::EVENTS.contains(&action.name()),
            "{} is missing from the [[notify]] events",
            action.name()
        );
    }
}
