//! The runner's fleet commands: every configured server watched through one kept session each,
//! each closed alone when nobody looked at it for a while and reopened on demand.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::runner::{Runner, forward};
use crate::action::{Action, Level};
use crate::context::Context;
use crate::ssh::SshOptions;

impl Runner {
    /// `Command::WatchFleet`: a new watch of every configured server, replacing any earlier one.
    pub(super) fn start_fleet_watch(&mut self, round: u64) {
        self.fleet.cancel();
        self.fleet = CancellationToken::new();
        self.fleet_servers.clear();
        let names: Vec<String> = self.ctx.config.servers.keys().cloned().collect();
        self.watch_fleet_servers(round, names);
    }

    /// `Command::CloseFleetServers`.
    pub(super) fn close_fleet_servers(&mut self, names: Vec<String>) {
        for name in names {
            if let Some(token) = self.fleet_servers.remove(&name) {
                token.cancel();
            }
        }
    }

    /// Watches `names` (configured servers not watched now) under the fleet's token, each with
    /// its own child token so it can be closed alone.
    pub(super) fn watch_fleet_servers(&mut self, round: u64, names: Vec<String>) {
        let mut servers = std::collections::HashMap::new();
        for name in names {
            let token = self.fleet.child_token();
            if let Some(old) = self.fleet_servers.insert(name.clone(), token.clone()) {
                old.cancel();
            }
            servers.insert(name, token);
        }
        tokio::spawn(watch_fleet(
            self.ctx.clone(),
            round,
            self.tx.clone(),
            servers,
            self.fleet.clone(),
        ));
    }
}

/// The fleet view's data: the configured servers named in `servers` resolved and read off the
/// loop, then watched through one kept session each (its events stream, the host read every
/// [`FLEET_REFRESH`]) until their token (or the whole watch's `cancel`) is cancelled. No prompts:
/// a server that needs one shows its reason instead of asking fifty times.
async fn watch_fleet(
    ctx: std::sync::Arc<Context>,
    round: u64,
    tx: mpsc::Sender<Action>,
    mut servers: std::collections::HashMap<String, CancellationToken>,
    cancel: CancellationToken,
) {
    let setup = {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || {
            let (targets, broken) = crate::cli::fleet::targets(&ctx);
            let options = crate::cli::fleet::probe_options(&ctx).map_err(|e| e.to_string());
            (targets, broken, options)
        })
    };
    let (targets, broken, options) = tokio::select! {
        _ = cancel.cancelled() => return,
        setup = setup => match setup {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Action::Notify(Level::Error, format!("fleet: {e}"))).await;
                return;
            }
        },
    };
    for row in broken
        .into_iter()
        .filter(|r| servers.contains_key(&r.server))
    {
        if tx.send(Action::Fleet { round, row }).await.is_err() {
            return;
        }
    }
    let mut options = match options {
        Ok(o) => o,
        Err(e) => {
            let _ = tx.send(Action::Notify(Level::Error, e)).await;
            return;
        }
    };
    options.ssh = SshOptions {
        batch: true,
        prompter: None,
        ..options.ssh
    };
    let (rows_tx, rows_rx) = mpsc::channel(64);
    tokio::spawn(forward(rows_rx, tx, move |row| Action::Fleet {
        round,
        row,
    }));
    let watched = targets
        .into_iter()
        .filter_map(|t| servers.remove(&t.name).map(|token| (t, token)))
        .collect();
    crate::fleet::watch_each(watched, options, FLEET_REFRESH, rows_tx).await;
}

/// How often the fleet reads each server's host (and retries an unreachable one).
pub const FLEET_REFRESH: Duration = Duration::from_secs(10);
