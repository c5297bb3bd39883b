//! Keeps the container list live: the engine's events stream drives updates (a container started from
//! a shell shows up as soon as its event arrives), and a slow full resync heals anything missed.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::model::Container;

/// What the watcher learnt. The console wraps it in its own message; the watcher knows no app.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The full list, after connecting and at every resync.
    Snapshot(Vec<Container>),
    Changed(Box<Container>),
    Gone(String),
    /// The events stream broke; the shown state may be out of date until it heals.
    Stale(String),
    /// The events stream is flowing again.
    Live,
    /// One engine event, for the events view.
    Event(EventRecord),
}

/// A container event as the events view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub time: chrono::DateTime<chrono::Utc>,
    pub action: String,
    pub id: String,
    pub name: String,
    /// `exitCode` for die events.
    pub exit_code: Option<String>,
}

pub const RESYNC_EVERY: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Container events that change what the list shows. exec_* (every health probe makes three) and
/// attach/resize are left out: they would cost an inspect each and change nothing on screen.
const EVENTS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "destroy",
    "rename",
    "health_status",
    "oom",
    "pause",
    "unpause",
    "update",
];

/// Runs until cancelled. Sends `Snapshot` first, then `Changed` / `Gone` per event, `Stale` when the
/// stream breaks and `Live` once it is back; re-lists every [`RESYNC_EVERY`] to heal anything missed.
pub async fn watch(
    engine: Engine,
    tx: mpsc::Sender<WatchEvent>,
    resync: mpsc::Receiver<()>,
    cancel: CancellationToken,
) {
    watch_every(engine, tx, resync, cancel, Some(RESYNC_EVERY), None).await;
}

/// [`watch`], re-listing every `resync_every`; with `None` only when connecting, when asked and
/// after the stream broke (the fleet: nothing per interval but the host reading). `listed_at`:
/// the caller has just listed the containers itself, starting at this time (Unix seconds), so
/// the first pass follows events from then on without a `Snapshot` of its own (the fleet reads a
/// server's row, listing included, before it follows the server).
pub async fn watch_every(
    engine: Engine,
    tx: mpsc::Sender<WatchEvent>,
    mut resync: mpsc::Receiver<()>,
    cancel: CancellationToken,
    resync_every: Option<Duration>,
    mut listed_at: Option<i64>,
) {
    let send = |event: WatchEvent| {
        let tx = tx.clone();
        async move { tx.send(event).await.is_ok() }
    };
    let mut backoff = Duration::from_millis(500);
    let mut since: Option<i64> = None;
    loop {
        // (Re)list everything, then follow events from the moment just before the list; the
        // caller's own list stands for the first one.
        let started = match listed_at.take() {
            Some(at) => at,
            None => {
                let started = chrono::Utc::now().timestamp();
                let snapshot = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = engine.containers() => r,
                };
                match snapshot {
                    Ok(list) => {
                        if !send(WatchEvent::Snapshot(list)).await {
                            return;
                        }
                        if since.is_some() && !send(WatchEvent::Live).await {
                            return;
                        }
                        backoff = Duration::from_millis(500);
                    }
                    Err(e) => {
                        if !send(WatchEvent::Stale(e.to_string())).await {
                            return;
                        }
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
                started
            }
        };
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        filters.insert(
            "event".to_string(),
            EVENTS.iter().map(|s| s.to_string()).collect(),
        );
        let opts = EventsOptions {
            since: Some(since.unwrap_or(started).to_string()),
            until: None,
            filters: Some(filters),
        };
        let mut events = engine.docker.events(Some(opts));
        let next_resync = || resync_every.map(|every| tokio::time::Instant::now() + every);
        let mut resync_at = next_resync();
        let reason = loop {
            let healing = async {
                match resync_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = healing => {
                    match engine.containers().await {
                        Ok(list) => if !send(WatchEvent::Snapshot(list)).await { return },
                        Err(e) => break Some(e.to_string()),
                    }
                    resync_at = next_resync();
                }
                // Asked (the link came back, or the user): re-list and reopen the events
                // stream at once, from the last event seen; a stream opened over a link that
                // since dropped may never end on its own.
                Some(()) = resync.recv() => break None,
                ev = events.next() => match ev {
                    None => break Some("the events stream ended".to_string()),
                    Some(Err(e)) => break Some(e.to_string()),
                    Some(Ok(msg)) => {
                        let id = msg.actor.as_ref().and_then(|a| a.id.clone()).unwrap_or_default();
                        let action = msg.action.clone().unwrap_or_default();
                        if let Some(t) = msg.time {
                            since = Some(t);
                        }
                        if id.is_empty() {
                            continue;
                        }
                        let event = if action == "destroy" {
                            WatchEvent::Gone(id.clone())
                        } else {
                            match engine.inspect(&id).await {
                                Ok(Some(c)) => WatchEvent::Changed(Box::new(c)),
                                Ok(None) => WatchEvent::Gone(id.clone()),
                                Err(e) => break Some(e.to_string()),
                            }
                        };
                        if !send(event).await {
                            return;
                        }
                        let attrs = msg.actor.as_ref().and_then(|a| a.attributes.as_ref());
                        let record = EventRecord {
                            time: chrono::DateTime::from_timestamp_nanos(msg.time_nano.unwrap_or(0)),
                            action,
                            name: attrs.and_then(|a| a.get("name")).cloned().unwrap_or_default(),
                            exit_code: attrs.and_then(|a| a.get("exitCode")).cloned(),
                            id,
                        };
                        if !send(WatchEvent::Event(record)).await {
                            return;
                        }
                    }
                }
            }
        };
        since = since.or(Some(started));
        let Some(reason) = reason else {
            backoff = Duration::from_millis(500);
            continue;
        };
        if !send(WatchEvent::Stale(reason)).await {
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
            // The link is back (or the user asked): no reason to sit out the backoff.
            Some(()) = resync.recv() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
