//! Watching the fleet cheaply: per server one kept session, one events stream and one host reading
//! per interval. The container list is read once when the server is connected (the row's reading
//! lists it and the events watcher starts from that list; again only when the events stream
//! broke); after that each event updates it (one inspect of the container it names),
//! so a quiet server costs a host reading per interval and nothing per container.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{ContainerSummary, Kept, ProbeOptions, ServerRow, read, short_reason};
use crate::engine::model::Container;
use crate::engine::watch::WatchEvent;
use crate::ssh::LinkStatus;
use crate::target::Target;

/// Watches `targets` until `cancel` (or until nobody reads the rows): each server connected (at
/// most `parallel` connecting together, each within the connect timeout) and read once, then
/// followed through its events and read for its host every `every`. A row is sent whenever
/// something about its server changed. A server that cannot be reached is tried again every
/// `every`. Cancelling closes every session.
pub async fn watch(
    targets: Vec<Target>,
    options: ProbeOptions,
    every: Duration,
    rows: mpsc::Sender<ServerRow>,
    cancel: CancellationToken,
) {
    let servers = targets
        .into_iter()
        .map(|t| (t, cancel.child_token()))
        .collect();
    watch_each(servers, options, every, rows).await;
}

/// [`watch`] with a token per server: cancelling one closes that server's session alone (the
/// console closes the sessions of servers nobody looked at for a while, one by one). Returns
/// when every server's watch has ended.
pub async fn watch_each(
    servers: Vec<(Target, CancellationToken)>,
    options: ProbeOptions,
    every: Duration,
    rows: mpsc::Sender<ServerRow>,
) {
    let connecting = Arc::new(Semaphore::new(options.parallel.max(1)));
    let mut watches = tokio::task::JoinSet::new();
    for (target, cancel) in servers {
        watches.spawn(watch_server(
            target,
            options.clone(),
            every,
            rows.clone(),
            cancel,
            connecting.clone(),
        ));
    }
    drop(rows);
    // Each task returns once its token is cancelled, closing its session.
    while watches.join_next().await.is_some() {}
}

/// One server, until cancelled or the rows are no longer read.
async fn watch_server(
    target: Target,
    options: ProbeOptions,
    every: Duration,
    rows: mpsc::Sender<ServerRow>,
    cancel: CancellationToken,
    connecting: Arc<Semaphore>,
) {
    loop {
        let mut kept = Kept::default();
        let row = {
            let Ok(_slot) = (tokio::select! {
                _ = cancel.cancelled() => return,
                slot = connecting.acquire() => slot,
            }) else {
                return;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                row = read(&target, &options, Utc::now(), &mut kept) => row,
            }
        };
        let reachable = row.reachable == Some(true);
        if rows.send(row.clone()).await.is_err() {
            return;
        }
        if reachable {
            // Returns only when cancelled or nobody reads the rows.
            follow(row, kept, every, &rows, &cancel).await;
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A connected server followed through its events stream (the engine watcher without its periodic
/// re-list) and its host read every `every`.
async fn follow(
    mut row: ServerRow,
    mut kept: Kept,
    every: Duration,
    rows: &mpsc::Sender<ServerRow>,
    cancel: &CancellationToken,
) {
    let Some(engine) = kept.engine.clone() else {
        return;
    };
    // The link's own news (each reconnect attempt and why it failed) updates the row's reason
    // while the events stream waits on the link.
    let mut link = engine.ssh.as_ref().map(|s| s.status());
    let (events_tx, mut events) = mpsc::channel(64);
    // The link coming back asks for a re-list at once: the stream would otherwise wait out its
    // backoff (up to 10 s), or never notice that it was opened over the link that dropped.
    let (resync_tx, resync) = mpsc::channel(1);
    let mut link_down = false;
    let stop = cancel.child_token();
    let _stop_on_return = stop.clone().drop_guard();
    // The row's reading has just listed the containers: the watcher starts from that list.
    tokio::spawn(crate::engine::watch::watch_every(
        engine,
        events_tx,
        resync,
        stop,
        None,
        kept.listed_at.take(),
    ));
    let mut listing: Vec<Container> = (*row.listing).clone();
    let mut host_at = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    host_at.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut changed = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.recv() => match event {
                Some(event) => apply(&mut listing, &mut row, event),
                None => return,
            },
            _ = host_at.tick() => {
                kept.read_host(&mut row).await;
                true
            }
            Some(status) = next_link_status(&mut link) => {
                match status {
                    LinkStatus::Connected { .. } => {
                        if std::mem::take(&mut link_down) {
                            let _ = resync_tx.try_send(());
                        }
                    }
                    LinkStatus::Connecting => {}
                    _ => link_down = true,
                }
                link_news(&mut row, &status)
            }
        };
        // A burst of events (a compose project starting) makes one row.
        while let Ok(event) = events.try_recv() {
            changed |= apply(&mut listing, &mut row, event);
        }
        if changed {
            row.containers = ContainerSummary::of(&listing, Utc::now());
            row.listing = Arc::new(listing.clone());
            if rows.send(row.clone()).await.is_err() {
                return;
            }
        }
    }
}

/// The link's next status; pending forever for a server reached without SSH (or once the
/// session is gone).
async fn next_link_status(
    link: &mut Option<tokio::sync::watch::Receiver<LinkStatus>>,
) -> Option<LinkStatus> {
    if let Some(rx) = link {
        if rx.changed().await.is_ok() {
            return Some(rx.borrow_and_update().clone());
        }
        *link = None;
    }
    std::future::pending().await
}

/// What the link's status says about the row: while it is not connected, why, updated with each
/// reconnect attempt; false when nothing shown changed (the events stream says when it is back).
fn link_news(row: &mut ServerRow, status: &LinkStatus) -> bool {
    let (reason, detail) = match status {
        LinkStatus::Connected { .. } | LinkStatus::Connecting => return false,
        LinkStatus::Reconnecting {
            attempt,
            last_error,
        } => (
            short_reason(last_error),
            format!("reconnecting (attempt {attempt}): {last_error}"),
        ),
        LinkStatus::Unanswered { silent } => (
            "no answer".to_string(),
            format!(
                "the server has not answered a keepalive for {} s",
                silent.as_secs()
            ),
        ),
        LinkStatus::Failed { error } => (short_reason(error), error.clone()),
    };
    row.reachable = Some(false);
    row.rtt_ms = None;
    row.error = Some(reason);
    row.error_detail = Some(detail);
    true
}

/// What an event changes in the server's listing and row; false when nothing shown changed.
fn apply(listing: &mut Vec<Container>, row: &mut ServerRow, event: WatchEvent) -> bool {
    match event {
        WatchEvent::Snapshot(list) => {
            *listing = list;
            mark_live(row);
        }
        WatchEvent::Changed(c) => {
            match listing.iter_mut().find(|old| old.id == c.id) {
                Some(old) => *old = *c,
                None => listing.push(*c),
            }
            row.read_at = Some(Utc::now());
        }
        WatchEvent::Gone(id) => {
            listing.retain(|c| c.id != id);
            row.read_at = Some(Utc::now());
        }
        WatchEvent::Live => mark_live(row),
        // The stream broke: the server is shown unreachable with why until it heals.
        WatchEvent::Stale(why) => {
            row.reachable = Some(false);
            row.error = Some(short_reason(&why));
            row.error_detail = Some(why);
        }
        WatchEvent::Event(_) => return false,
    }
    true
}

fn mark_live(row: &mut ServerRow) {
    row.read_at = Some(Utc::now());
    row.reachable = Some(true);
    row.error = None;
    row.error_detail = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// Each reconnect attempt's failure replaces the row's reason; a link that is down has no
    /// round trip (the figure would be the outage's length).
    #[test]
    fn the_link_s_news_updates_the_reason_with_each_attempt() {
        let mut row = ServerRow {
            reachable: Some(true),
            rtt_ms: Some(3),
            read_at: Some(crate::fixtures::now()),
            ..Default::default()
        };
        let refused = LinkStatus::Reconnecting {
            attempt: 1,
            last_error: "cannot connect to 127.0.0.1:22: Connection refused (os error 111)".into(),
        };
        assert!(link_news(&mut row, &refused));
        assert_eq!(row.reachable, Some(false));
        assert_eq!(row.error.as_deref(), Some("refused"));
        assert_eq!(row.rtt_ms, None);
        assert!(row.stale(), "the last figures are kept, as stale");
        let timeout = LinkStatus::Reconnecting {
            attempt: 2,
            last_error: "ssh handshake timed out after 10 s".into(),
        };
        assert!(link_news(&mut row, &timeout));
        assert_eq!(row.error.as_deref(), Some("timeout"));
        assert!(
            row.error_detail.as_deref().unwrap().contains("attempt 2"),
            "{row:?}"
        );
        let auth = LinkStatus::Failed {
            error: "permission denied for root@127.0.0.1 (tried: publickey)".into(),
        };
        assert!(link_news(&mut row, &auth));
        assert_eq!(row.error.as_deref(), Some("auth refused"));
        // Back: the events stream's re-list says so, not the link alone.
        assert!(!link_news(
            &mut row,
            &LinkStatus::Connected {
                rtt: Duration::from_millis(2)
            }
        ));
    }

    #[test]
    fn events_change_the_listing_and_the_row() {
        let mut listing = fixtures::shop();
        let total = listing.len();
        let mut row = ServerRow {
            reachable: Some(true),
            ..Default::default()
        };
        let mut new = listing[0].clone();
        new.id = "new-one".into();
        assert!(apply(
            &mut listing,
            &mut row,
            WatchEvent::Changed(Box::new(new))
        ));
        assert_eq!(listing.len(), total + 1);
        let mut stopped = listing[0].clone();
        stopped.state = crate::engine::model::State::Exited;
        assert!(apply(
            &mut listing,
            &mut row,
            WatchEvent::Changed(Box::new(stopped))
        ));
        assert_eq!(listing.len(), total + 1, "a known container is replaced");
        assert_eq!(listing[0].state, crate::engine::model::State::Exited);
        assert!(apply(
            &mut listing,
            &mut row,
            WatchEvent::Gone("new-one".into())
        ));
        assert_eq!(listing.len(), total);

        let broke = WatchEvent::Stale("ssh: connection timed out".into());
        assert!(apply(&mut listing, &mut row, broke));
        assert_eq!(row.reachable, Some(false));
        assert_eq!(row.error.as_deref(), Some("timeout"));
        assert!(apply(&mut listing, &mut row, WatchEvent::Live));
        assert_eq!((row.reachable, row.error.as_deref()), (Some(true), None));
    }
}
