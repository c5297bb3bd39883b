//! Telling the team: each `[[notify]]` webhook is posted a message when a runbook run starts and
//! when it ends. Delivery never blocks or fails the action: notices queue (bounded) to one task per
//! webhook, which posts them in order with a per-request timeout and a few retries with backoff;
//! a delivery that fails is reported (the footer, the CLI's stderr) and audited. Webhook URLs are
//! secrets: only their masked form (`https://host/…`) is ever shown, logged or audited.
//! No terminal here: the TUI and the CLI plug a [`Notifier`] into the runbook's `RunOptions`.

pub mod payload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::config::notify::{NotifyEntry, WebhookUrl};
use crate::runbook::notice::{RunNotice, RunNotify};
use crate::runbook::{AuditEntry, AuditLog};

/// Notices waiting for one webhook; past this a notice is dropped, said and audited.
const QUEUE: usize = 64;
/// Failure reports waiting for the front end; past this they are still audited.
pub const REPORTS: usize = 64;
/// How long the CLI waits for deliveries still in flight when it exits.
pub const EXIT_WAIT: Duration = Duration::from_secs(10);
/// Characters of a receiver's error answer kept in the reason.
const ANSWER_CHARS: usize = 200;

/// How hard a delivery tries: `tries` posts, `backoff` before the second and doubling, each post
/// given `timeout` (connect, send and answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub tries: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Default for Retry {
    /// 3 tries, 1 s then 2 s apart, 5 s each: at most ~18 s for a receiver that never answers.
    fn default() -> Retry {
        Retry {
            tries: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One notice on its way to one webhook.
struct Job {
    id: u64,
    body: Value,
    about: About,
}

/// What a delivery was about, for its failure report and audit line.
#[derive(Debug, Clone)]
struct About {
    /// `rollback of shop/web started`
    what: String,
    server: String,
    environment: Option<String>,
}

struct Webhook {
    entry: NotifyEntry,
    queue: mpsc::Sender<Job>,
}

struct Shared {
    client: reqwest::Client,
    retry: Retry,
    audit: AuditLog,
    reports: Option<mpsc::Sender<String>>,
    /// Jobs queued or being posted, by id: what to say about them if berth exits first.
    pending: Mutex<BTreeMap<u64, (String, About)>>,
}

impl Shared {
    /// Says and audits a delivery that did not happen.
    fn failed(&self, url: &str, about: &About, reason: &str, tries: u32, took: Duration) {
        // The notice quoted, then where it did not go and why: one sentence however the notice
        // ends (`… succeeded`, `… failed`).
        let message = format!(
            "the notice “{}” could not be delivered to {url}: {reason}",
            about.what
        );
        let entry = AuditEntry {
            time: chrono::Utc::now(),
            user: crate::runbook::audit::local_user(),
            server: about.server.clone(),
            environment: about.environment.clone(),
            action: "notify".into(),
            target: url.to_string(),
            parameters: serde_json::json!({ "tries": tries }),
            images_before: vec![],
            images_after: vec![],
            result: "failed".into(),
            message: message.clone(),
            duration_ms: took.as_millis() as u64,
            ssh_user: None,
        };
        let audit_failed = self.audit.append(&entry).err();
        if let Some(reports) = &self.reports {
            let _ = reports.try_send(crate::format::printable(&message));
            if let Some(e) = audit_failed {
                let _ = reports.try_send(crate::format::printable(&e.to_string()));
            }
        }
    }
}

/// Posts run notices to the configured webhooks. Cheap to share (`Arc`); the delivery tasks end
/// when it is dropped and their queues are empty.
pub struct Notifier {
    webhooks: Mutex<Vec<Webhook>>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    next_id: AtomicU64,
}

impl Notifier {
    /// `None` when no webhook is configured. `reports` receives one line per failed delivery.
    /// Spawns one task per webhook: call inside the runtime.
    pub fn from_config(
        entries: &[NotifyEntry],
        reports: Option<mpsc::Sender<String>>,
    ) -> Option<Arc<Notifier>> {
        if entries.is_empty() {
            return None;
        }
        Some(Arc::new(Notifier::new(
            entries,
            Retry::default(),
            AuditLog::from_env(),
            reports,
        )))
    }

    pub fn new(
        entries: &[NotifyEntry],
        retry: Retry,
        audit: AuditLog,
        reports: Option<mpsc::Sender<String>>,
    ) -> Notifier {
        let shared = Arc::new(Shared {
            client: client(retry),
            retry,
            audit,
            reports,
            pending: Mutex::new(BTreeMap::new()),
        });
        let tracker = TaskTracker::new();
        let webhooks = entries
            .iter()
            .map(|entry| {
                let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
                let shared = shared.clone();
                let url = entry.url.clone();
                tracker.spawn(async move {
                    while let Some(job) = jobs.recv().await {
                        let started = Instant::now();
                        let result = deliver(&shared.client, &url, &job.body, shared.retry).await;
                        // Gone when `finish` gave up on it already (and said so).
                        let pending = shared
                            .pending
                            .lock()
                            .map(|mut p| p.remove(&job.id).is_some())
                            .unwrap_or(true);
                        if let (Err((reason, tries)), true) = (result, pending) {
                            shared.failed(
                                &url.masked(),
                                &job.about,
                                &reason,
                                tries,
                                started.elapsed(),
                            );
                        }
                    }
                });
                Webhook {
                    entry: entry.clone(),
                    queue,
                }
            })
            .collect();
        Notifier {
            webhooks: Mutex::new(webhooks),
            shared,
            tracker,
            next_id: AtomicU64::new(0),
        }
    }

    /// Lets queued deliveries finish, for at most `bound`; what is still undelivered then is
    /// reported and audited as given up. Later notices are refused (reported as such).
    pub async fn finish(&self, bound: Duration) {
        if let Ok(mut w) = self.webhooks.lock() {
            w.clear();
        }
        self.tracker.close();
        if tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_ok()
        {
            return;
        }
        let left: Vec<(String, About)> = self
            .shared
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_values().collect())
            .unwrap_or_default();
        for (url, about) in left {
            let reason = format!(
                "still undelivered when berth exited ({} s after the last notice was queued)",
                bound.as_secs()
            );
            self.shared.failed(&url, &about, &reason, 0, bound);
        }
    }
}

impl RunNotify for Notifier {
    fn notify(&self, notice: RunNotice) {
        let about = About {
            what: format!(
                "{} of {} {}",
                notice.action,
                notice.service,
                notice.result.as_str()
            ),
            server: notice.server.clone(),
            environment: notice.environment.clone(),
        };
        let Ok(webhooks) = self.webhooks.lock() else {
            return;
        };
        if webhooks.is_empty() {
            self.shared.failed(
                "every webhook",
                &about,
                "berth was already exiting",
                0,
                Duration::ZERO,
            );
        }
        for w in webhooks
            .iter()
            .filter(|w| w.entry.wants(&notice.action, &notice.server))
        {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let masked = w.entry.url.masked();
            if let Ok(mut p) = self.shared.pending.lock() {
                p.insert(id, (masked.clone(), about.clone()));
            }
            let job = Job {
                id,
                body: payload::body(w.entry.kind, &notice),
                about: about.clone(),
            };
            if let Err(e) = w.queue.try_send(job) {
                if let Ok(mut p) = self.shared.pending.lock() {
                    p.remove(&id);
                }
                let reason = match e {
                    mpsc::error::TrySendError::Full(_) => {
                        format!(
                            "{QUEUE} notices already wait for this webhook; this one is dropped"
                        )
                    }
                    mpsc::error::TrySendError::Closed(_) => "its delivery task ended".into(),
                };
                self.shared
                    .failed(&masked, &about, &reason, 0, Duration::ZERO);
            }
        }
    }
}

fn client(retry: Retry) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(retry.timeout)
        .connect_timeout(retry.timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Posts `body` with retries. `Ok(tries)`, or the last reason and how many posts were made.
async fn deliver(
    client: &reqwest::Client,
    url: &WebhookUrl,
    body: &Value,
    retry: Retry,
) -> Result<u32, (String, u32)> {
    let tries = retry.tries.max(1);
    let mut wait = retry.backoff;
    for attempt in 1..=tries {
        let (reason, again) = match client.post(url.secret()).json(body).send().await {
            Ok(answer) if answer.status().is_success() => return Ok(attempt),
            Ok(mut answer) => {
                let status = answer.status();
                let mut text = Vec::new();
                while text.len() < ANSWER_CHARS * 4 {
                    match answer.chunk().await {
                        Ok(Some(c)) => text.extend_from_slice(&c),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&text);
                let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                let text: String = text.chars().take(ANSWER_CHARS).collect();
                let reason = if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {text}")
                };
                // A 4xx other than 429 will not change by asking again.
                let again = status.is_server_error() || status.as_u16() == 429;
                (reason, again)
            }
            Err(e) => (describe(e, url, retry.timeout), true),
        };
        let reason = hide(&reason, url);
        if !again || attempt == tries {
            let tried = if attempt == 1 {
                String::new()
            } else {
                format!(" (after {attempt} tries)")
            };
            return Err((format!("{reason}{tried}"), attempt));
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    Err(("no try was made".into(), 0))
}

/// A client error in words, without the URL (reqwest puts it in its message).
fn describe(e: reqwest::Error, url: &WebhookUrl, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "the request failed"
    };
    let e = e.without_url();
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    causes.dedup();
    let detail = causes.last().cloned().unwrap_or_else(|| e.to_string());
    hide(&format!("{kind}: {detail}"), url)
}

/// Belt and braces: the secret URL (or its path) never survives into a message.
fn hide(text: &str, url: &WebhookUrl) -> String {
    let mut out = text.replace(url.secret(), &url.masked());
    if let Ok(uri) = url.secret().parse::<http::Uri>()
        && let Some(pq) = uri.path_and_query()
        && pq.as_str().len() > 1
    {
        out = out.replace(pq.as_str(), "/…");
    }
    crate::format::printable(&out)
}

/// What `berth notify test` found for one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub kind: &'static str,
    pub url: String,
    pub outcome: Result<u32, String>,
}

/// Posts a test message to every webhook at once (the same retries as a real notice).
pub async fn test_all(entries: &[NotifyEntry], retry: Retry) -> Vec<TestResult> {
    let client = client(retry);
    let user = crate::runbook::audit::local_user();
    let posts = entries.iter().map(|e| {
        let client = &client;
        let body = payload::test_body(e.kind, &user);
        async move {
            TestResult {
                kind: e.kind.as_str(),
                url: e.url.masked(),
                outcome: deliver(client, &e.url, &body, retry)
                    .await
                    .map_err(|(reason, _)| reason),
            }
        }
    });
    futures::future::join_all(posts).await
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
