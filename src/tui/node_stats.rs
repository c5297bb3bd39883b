//! The runner's readers of other swarm nodes: the manager lists every task, but a task's CPU and
//! memory can only be read on its own node. For each node the config lists as a server, one
//! session to that server and one stats collector, reading only the tasks the swarm view shows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::runner::{Runner, forward};
use crate::action::{Action, EngineEvent};
use crate::context::Context;
use crate::ssh::SshOptions;
use crate::stats::StatsBatch;

/// How long reaching a node's server may take before its tasks say why they have no numbers,
/// when `[fleet] connect_timeout` does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One node's reader: cancelled when its server is no longer wanted or the session ends.
pub(super) struct NodeReader {
    cancel: CancellationToken,
    wanted: watch::Sender<Vec<String>>,
}

impl Runner {
    /// `Command::WatchNodeStats`: servers no longer wanted stop, new ones start, the others read
    /// their new set of containers.
    pub(super) fn watch_node_stats(&mut self, session: u64, wanted: BTreeMap<String, Vec<String>>) {
        self.node_readers.retain(|server, reader| {
            let keep = wanted.contains_key(server);
            if !keep {
                reader.cancel.cancel();
            }
            keep
        });
        for (server, ids) in wanted {
            if let Some(reader) = self.node_readers.get(&server) {
                reader.wanted.send_replace(ids);
                continue;
            }
            let cancel = self.session.child_token();
            let (wanted_tx, wanted_rx) = watch::channel(ids);
            tokio::spawn(read_node(
                self.ctx.clone(),
                server.clone(),
                wanted_rx,
                self.stats_interval.subscribe(),
                session,
                self.tx.clone(),
                cancel.clone(),
            ));
            self.node_readers.insert(
                server,
                NodeReader {
                    cancel,
                    wanted: wanted_tx,
                },
            );
        }
    }
}

/// Connects to `server` without prompting (a question per node would interrupt the view; the
/// reason shows in the rows instead), then reads the wanted containers at the list's interval.
async fn read_node(
    ctx: Arc<Context>,
    server: String,
    wanted: watch::Receiver<Vec<String>>,
    interval: watch::Receiver<Duration>,
    session: u64,
    tx: mpsc::Sender<Action>,
    cancel: CancellationToken,
) {
    let event = {
        let server = server.clone();
        move |reading: Result<StatsBatch, String>| Action::Engine {
            session,
            event: EngineEvent::NodeStats {
                server: server.clone(),
                reading,
            },
        }
    };
    let resolved = {
        let ctx = ctx.clone();
        let server = server.clone();
        // Resolving a name may read ~/.ssh/config: off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            crate::target::resolve_named(&server, &ctx.config, &ctx.env)
        })
        .await
    };
    let target = match resolved {
        Ok(Ok(target)) => target,
        Ok(Err(e)) => {
            let _ = tx.send(event(Err(e.to_string()))).await;
            return;
        }
        Err(_) => return,
    };
    let options = SshOptions {
        batch: true,
        ..ctx.ssh_options()
    };
    let timeout = ctx
        .config
        .fleet
        .connect_timeout()
        .unwrap_or(CONNECT_TIMEOUT);
    let connected = tokio::select! {
        _ = cancel.cancelled() => return,
        r = tokio::time::timeout(timeout, crate::engine::connect(&target, &options)) => r,
    };
    let engine = match connected {
        Ok(Ok(engine)) => engine,
        Ok(Err(e)) => {
            let _ = tx.send(event(Err(e.to_string()))).await;
            return;
        }
        Err(_) => {
            let why = format!("no answer within {} s", timeout.as_secs_f64());
            let _ = tx.send(event(Err(why))).await;
            return;
        }
    };
    tokio::spawn(read_health(
        engine.clone(),
        server.clone(),
        wanted.clone(),
        interval.clone(),
        session,
        tx.clone(),
        cancel.clone(),
    ));
    let remote = crate::remote::SshShell::for_engine(&engine);
    let collector = tokio::select! {
        _ = cancel.cancelled() => return,
        c = crate::stats::Collector::new(&engine, remote, ctx.config.stats.method) => c,
    };
    // Only the latest reading matters: a small queue, and the collector waits when it is full.
    let (batch_tx, batch_rx) = mpsc::channel(2);
    tokio::spawn(forward(batch_rx, tx, move |batch| event(Ok(batch))));
    crate::stats::run(collector, wanted, interval, batch_tx, cancel).await;
}

/// The health of the wanted containers on the node, from one container listing there per
/// interval: the manager reports a task's state, not its container's health.
async fn read_health(
    engine: crate::engine::Engine,
    server: String,
    mut wanted: watch::Receiver<Vec<String>>,
    mut interval: watch::Receiver<Duration>,
    session: u64,
    tx: mpsc::Sender<Action>,
    cancel: CancellationToken,
) {
    loop {
        let ids = wanted.borrow_and_update().clone();
        if !ids.is_empty() {
            let listed = tokio::select! {
                _ = cancel.cancelled() => return,
                l = engine.containers() => l,
            };
            if let Ok(list) = listed {
                let health = list
                    .iter()
                    .filter(|c| ids.contains(&c.id))
                    .map(|c| (c.id.clone(), c.current_health()))
                    .collect();
                let event = EngineEvent::NodeHealth {
                    server: server.clone(),
                    health,
                };
                if tx.send(Action::Engine { session, event }).await.is_err() {
                    return;
                }
            }
        }
        let pause = *interval.borrow_and_update();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
            // A new set is read at once, not an interval later.
            changed = wanted.changed() => if changed.is_err() { return },
        }
    }
}
