//! Keeping a session honest: keepalives measure the round trip, a link that stops answering is
//! reported within the keepalive interval and dropped after `ServerAliveCountMax` of them, and a lost
//! one is re-established in the background so the header always says what is true.

use std::time::{Duration, Instant};

use super::SshError;
use super::hostkey::ClientHandle;
use super::session::Inner;

/// A keepalive unanswered this long marks the link `Unanswered` even when the interval is longer:
/// a healthy answer takes milliseconds.
const UNANSWERED_AFTER: Duration = Duration::from_secs(2);

/// The state of the link to the server, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    Connecting,
    Connected {
        rtt: Duration,
    },
    Reconnecting {
        attempt: u32,
        last_error: String,
    },
    /// A keepalive is out and the server has not answered for `silent`: the link may be frozen
    /// (TCP open, peer stopped). What was read over it is no longer known to be true.
    Unanswered {
        silent: Duration,
    },
    /// Given up: the host key changed, authentication fails, … Only a new `connect` helps.
    Failed {
        error: String,
    },
}

pub(super) async fn ping_handle(h: &ClientHandle, limit: Duration) -> Result<Duration, SshError> {
    let start = Instant::now();
    match tokio::time::timeout(limit, h.send_ping()).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(SshError::Other(format!("keepalive failed: {e}"))),
        Err(_) => Err(SshError::Timeout {
            what: "keepalive".into(),
            secs: limit.as_secs(),
        }),
    }
}

impl LinkStatus {
    /// Whether what was read over the link can still be taken as current.
    pub fn is_fresh(&self) -> bool {
        matches!(self, LinkStatus::Connected { .. })
    }
}

impl Inner {
    /// Marks the current link dead (a keepalive went unanswered) so the next use reconnects.
    pub(super) async fn drop_link(&self, why: &str) {
        let dead = self.link.lock().await.take();
        self.status.send_replace(LinkStatus::Reconnecting {
            attempt: 0,
            last_error: why.to_string(),
        });
        if let Some(l) = dead {
            // The peer is silent: say goodbye without waiting on it. Dropping the handle ends the
            // session task, which closes every channel, so open streams fail now, not at TCP timeout.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    l.handle.disconnect(
                        russh::Disconnect::ByApplication,
                        "keepalive timeout",
                        "en",
                    ),
                )
                .await;
            });
        }
    }
}

/// How often the supervisor looks at the link: the resolution of "stale for N s".
const TICK: Duration = Duration::from_millis(500);

/// Keepalives and reconnects for as long as the session lives. A keepalive runs beside the loop, so
/// a silent peer is reported while its answer is awaited: `Unanswered` once it has been silent for
/// longer than the keepalive interval, the link dropped (and redialled) after
/// `ServerAliveCountMax` intervals without an answer.
pub(super) async fn supervise(weak: std::sync::Weak<Inner>) {
    let mut last_answer = Instant::now();
    let mut pending: Option<(Instant, tokio::task::JoinHandle<Result<Duration, SshError>>)> = None;
    loop {
        tokio::time::sleep(TICK).await;
        let Some(inner) = weak.upgrade() else {
            if let Some((_, task)) = pending {
                task.abort();
            }
            return;
        };
        if inner.fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
        }
        let interval = inner.resolved.alive_interval;
        let give_up = interval * inner.resolved.alive_count_max;
        let current = inner
            .link
            .try_lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.handle.clone()));
        match current {
            Some(h) if !h.is_closed() => match pending.take() {
                Some((_, task)) if task.is_finished() => match task.await {
                    Ok(Ok(rtt)) => {
                        last_answer = Instant::now();
                        inner.status.send_replace(LinkStatus::Connected { rtt });
                    }
                    Ok(Err(e)) => inner.drop_link(&e.to_string()).await,
                    Err(_) => {}
                },
                Some((started, task)) => {
                    let silent = last_answer.elapsed();
                    if started.elapsed() >= give_up {
                        task.abort();
                        inner
                            .drop_link(&format!(
                                "no answer to keepalives for {} s",
                                silent.as_secs()
                            ))
                            .await;
                    } else {
                        if started.elapsed() >= interval.min(UNANSWERED_AFTER) {
                            inner.status.send_replace(LinkStatus::Unanswered { silent });
                        }
                        pending = Some((started, task));
                    }
                }
                None if last_answer.elapsed() >= interval => {
                    let task = tokio::spawn(async move { ping_handle(&h, give_up).await });
                    pending = Some((Instant::now(), task));
                }
                None => {}
            },
            // Being re-established by a request right now.
            None if inner.link.try_lock().is_err() => {}
            _ => {
                if let Some((_, task)) = pending.take() {
                    task.abort();
                }
                // Lost: reconnect now rather than on the next request, so the header shows it.
                let _ = inner.handle().await;
                last_answer = Instant::now();
            }
        }
    }
}
