//! The runner: turns the `Command`s `update` returns into background tasks, whose news come back
//! to the loop as `Action`s. The current server's session (connect, watcher, stats, compose files,
//! swarm) is here; the runbook's, the log view's and the fleet's commands are in their own files.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::copy_to_clipboard;
use crate::action::{Action, EngineEvent, Level, Reply};
use crate::app::{App, Command};
use crate::context::Context;
use crate::engine;
use crate::ssh::{LinkStatus, PromptAnswer, PromptRequest, Prompter, SshOptions};
use crate::theme::Theme;

/// Background tasks can run ahead of the screen by this many messages before they wait.
const ACTION_QUEUE: usize = 1024;
/// Watcher news between the watcher and the loop's queue.
const WATCH_QUEUE: usize = 64;

/// Answers the SSH layer's questions in a popup: the question travels to the app as an action,
/// the answer comes back through the reply.
pub(super) struct TuiPrompter {
    pub(super) tx: mpsc::Sender<Action>,
}

impl Prompter for TuiPrompter {
    fn ask(&self, request: PromptRequest) -> futures::future::BoxFuture<'static, PromptAnswer> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, answer) = Reply::new();
            if tx.send(Action::Prompt(request, reply)).await.is_err() {
                return PromptAnswer::Cancel;
            }
            answer.await.unwrap_or(PromptAnswer::Cancel)
        })
    }
}

/// Passes the SSH link's state (round-trip time, reconnects) to the header.
async fn forward_link_status(
    mut status: tokio::sync::watch::Receiver<LinkStatus>,
    session: u64,
    tx: mpsc::Sender<Action>,
    cancel: CancellationToken,
) {
    loop {
        let current = status.borrow_and_update().clone();
        if tx
            .send(Action::Engine {
                session,
                event: EngineEvent::Link(current),
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = status.changed() => if changed.is_err() { return },
        }
    }
}

/// The stats collector and the host monitor of one server, started once it is connected.
struct Monitors {
    wanted: watch::Receiver<Vec<String>>,
    interval: watch::Receiver<Duration>,
    prefer: crate::config::Preference,
    /// `[stats] enabled`: off, only the host is watched.
    collect: bool,
}

impl Monitors {
    fn spawn(
        self,
        engine: &engine::Engine,
        session: u64,
        tx: &mpsc::Sender<Action>,
        cancel: &CancellationToken,
    ) {
        // One shell on the server for both: its login runs once, not at every reading.
        let remote = crate::remote::SshShell::for_engine(engine);
        let host_remote = remote.clone();
        // Only the latest readings matter: a small queue, and the collector waits when it is full.
        let (batch_tx, batch_rx) = mpsc::channel(2);
        let (host_tx, host_rx) = mpsc::channel(2);
        if self.collect {
            let engine = engine.clone();
            let cancel = cancel.clone();
            let interval = self.interval.clone();
            let prefer = self.prefer;
            tokio::spawn(async move {
                let collector = tokio::select! {
                    _ = cancel.cancelled() => return,
                    c = crate::stats::Collector::new(&engine, remote, prefer) => c,
                };
                crate::stats::run(collector, self.wanted, interval, batch_tx, cancel).await;
            });
        }
        tokio::spawn(crate::stats::host::run_monitor(
            engine.clone(),
            host_remote,
            self.interval,
            host_tx,
            cancel.clone(),
        ));
        let engine_event = move |event| Action::Engine { session, event };
        tokio::spawn(forward(batch_rx, tx.clone(), move |b| {
            engine_event(EngineEvent::Stats(b))
        }));
        tokio::spawn(forward(host_rx, tx.clone(), move |h| {
            engine_event(EngineEvent::Host(h))
        }));
    }
}

/// Passes a background task's news to the loop, as the action `wrap` makes of each.
pub(super) async fn forward<T>(
    mut rx: mpsc::Receiver<T>,
    tx: mpsc::Sender<Action>,
    wrap: impl Fn(T) -> Action,
) {
    while let Some(item) = rx.recv().await {
        if tx.send(wrap(item)).await.is_err() {
            return;
        }
    }
}

/// Starts and stops the background tasks that `Command`s ask for.
pub(super) struct Runner {
    pub(super) ctx: std::sync::Arc<Context>,
    pub(super) tx: mpsc::Sender<Action>,
    pub(super) rx: mpsc::Receiver<Action>,
    /// Cancels every task of the current server.
    pub(super) session: CancellationToken,
    pub(super) resync: Option<mpsc::Sender<()>>,
    /// The current server's engine once its connect task sends it.
    pub(super) engine: Option<engine::Engine>,
    /// Which session `engine` belongs to; an older connect task's engine is dropped.
    pub(super) session_id: u64,
    /// Connect tasks send the engine here; the loop hands it to `connected`.
    pub(super) engine_tx: mpsc::Sender<(u64, engine::Engine)>,
    pub(super) engines: mpsc::Receiver<(u64, engine::Engine)>,
    /// A shell the app asked for: the loop runs it, since it owns the terminal.
    pub(super) shell: Option<(String, String)>,
    /// Cancels the open log view's stream.
    pub(super) logs: CancellationToken,
    /// Cancels the fleet watch, closing its sessions.
    pub(super) fleet: CancellationToken,
    /// Each watched server's own token (children of `fleet`): cancelled, its session closes.
    pub(super) fleet_servers: std::collections::HashMap<String, CancellationToken>,
    /// What the stats collector reads (only the latest matters) and how often.
    pub(super) stats_wanted: watch::Sender<Vec<String>>,
    pub(super) stats_interval: watch::Sender<Duration>,
    /// Readers of the tasks on other swarm nodes, by the server each node is.
    pub(super) node_readers: std::collections::HashMap<String, super::node_stats::NodeReader>,
    /// Posts runbook runs to the `[[notify]]` webhooks; its failures come back as footer messages.
    pub(super) notifier: Option<std::sync::Arc<crate::notify::Notifier>>,
    /// The runbook runs in flight: berth leaving (quit, a closed terminal, SIGTERM) waits for
    /// them to end, audited, rather than cut one mid-switch.
    pub(super) runs: tokio_util::task::TaskTracker,
    /// Stops every run at its next safe point (a rollback then restores): a second SIGTERM.
    pub(super) runs_cancel: CancellationToken,
    /// The console's port forwards by id, each stopped by its token (a child of `session`).
    pub(super) forwards: std::collections::HashMap<u64, CancellationToken>,
}

impl Runner {
    pub(super) fn new(ctx: Context) -> Runner {
        let (tx, rx) = mpsc::channel(ACTION_QUEUE);
        let (engine_tx, engines) = mpsc::channel(4);
        let interval = ctx.config.stats.interval_or_default();
        let (report_tx, mut reports) = mpsc::channel(crate::notify::REPORTS);
        let notifier = crate::notify::Notifier::from_config(&ctx.config.notify, Some(report_tx));
        if notifier.is_some() {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(report) = reports.recv().await {
                    if tx.send(Action::Notify(Level::Error, report)).await.is_err() {
                        break;
                    }
                }
            });
        }
        Runner {
            notifier,
            runs: tokio_util::task::TaskTracker::new(),
            runs_cancel: CancellationToken::new(),
            engine_tx,
            engines,
            session_id: 0,
            shell: None,
            stats_wanted: watch::channel(Vec::new()).0,
            stats_interval: watch::channel(interval).0,
            node_readers: Default::default(),
            ctx: std::sync::Arc::new(ctx),
            tx,
            rx,
            session: CancellationToken::new(),
            resync: None,
            engine: None,
            logs: CancellationToken::new(),
            fleet: CancellationToken::new(),
            fleet_servers: Default::default(),
            forwards: Default::default(),
        }
    }

    pub(super) fn engine(&self) -> Option<engine::Engine> {
        self.engine.clone()
    }

    /// A connect task's engine arrived; kept when it is the current session's.
    pub(super) fn connected(&mut self, session: u64, engine: engine::Engine) {
        if session == self.session_id {
            self.engine = Some(engine);
        }
    }

    /// The engine, or `None` after telling the user `why` nothing happens.
    pub(super) fn engine_or_say(&self, why: &str) -> Option<engine::Engine> {
        let engine = self.engine();
        if engine.is_none() {
            let _ = self.tx.try_send(Action::Notify(Level::Error, why.into()));
        }
        engine
    }

    pub(super) fn run(&mut self, command: Command, app: &App) {
        match command {
            Command::Connect(target) => {
                self.session.cancel();
                self.session = CancellationToken::new();
                // The old session's node readers and forwards were its children: cancelled with it.
                self.node_readers.clear();
                self.forwards.clear();
                let cancel = self.session.clone();
                let (resync_tx, resync_rx) = mpsc::channel(4);
                self.resync = Some(resync_tx);
                let tx = self.tx.clone();
                let session = app.session;
                self.session_id = session;
                self.engine = None;
                let engine_tx = self.engine_tx.clone();
                let prompter: std::sync::Arc<dyn Prompter> = std::sync::Arc::new(TuiPrompter {
                    tx: self.tx.clone(),
                });
                let options = SshOptions {
                    batch: false,
                    prompter: Some(prompter),
                    ..self.ctx.ssh_options()
                };
                self.stats_wanted.send_replace(Vec::new());
                let monitors = Monitors {
                    wanted: self.stats_wanted.subscribe(),
                    interval: self.stats_interval.subscribe(),
                    prefer: self.ctx.config.stats.method,
                    collect: self.ctx.config.stats.enabled,
                };
                tokio::spawn(async move {
                    let connected = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = engine::connect(&target, &options) => r,
                    };
                    match connected {
                        Ok(engine) => {
                            let event = EngineEvent::Connected {
                                transport: engine.transport.clone(),
                                version: engine.version.clone(),
                            };
                            if tx.send(Action::Engine { session, event }).await.is_err() {
                                return;
                            }
                            if engine_tx.send((session, engine.clone())).await.is_err() {
                                return;
                            }
                            if let Some(line) = engine
                                .ssh
                                .as_ref()
                                .and_then(|s| s.resolved().unhonoured_line())
                                && tx.send(Action::Notify(Level::Warn, line)).await.is_err()
                            {
                                return;
                            }
                            if let Some(ssh) = &engine.ssh {
                                tokio::spawn(forward_link_status(
                                    ssh.status(),
                                    session,
                                    tx.clone(),
                                    cancel.clone(),
                                ));
                            }
                            monitors.spawn(&engine, session, &tx, &cancel);
                            let (watch_tx, watch_rx) = mpsc::channel(WATCH_QUEUE);
                            // What the watcher sees is kept for the timeline too.
                            let recorder = crate::timeline::history::Recorder::spawn(
                                crate::timeline::history::History::for_server(&target.name),
                            );
                            tokio::spawn(forward(
                                watch_rx,
                                tx,
                                move |event: engine::watch::WatchEvent| {
                                    recorder.see(&event);
                                    Action::Engine {
                                        session,
                                        event: event.into(),
                                    }
                                },
                            ));
                            engine::watch::watch(engine, watch_tx, resync_rx, cancel).await;
                        }
                        Err(e) => {
                            let _ = tx
                                .send(Action::Engine {
                                    session,
                                    event: EngineEvent::ConnectFailed(e.to_string()),
                                })
                                .await;
                        }
                    }
                });
            }
            Command::Resync => {
                if let Some(r) = &self.resync {
                    let _ = r.try_send(());
                }
            }
            Command::Shell { id, name } => self.shell = Some((id, name)),
            Command::Answer(reply, answer) => reply.send(answer),
            Command::PlanRunbook(request) => self.plan_runbook(request),
            Command::RunPlan(plan) => self.run_plan(plan),
            Command::PlanGroup {
                group,
                members,
                request,
            } => self.plan_group(group, members, request),
            Command::RunGroup(plan) => self.run_group(plan),
            Command::NotifyTest => self.notify_test(),
            Command::LoadAudit => self.load_audit(),
            Command::LoadTimeline(names) => self.load_timeline(app.session, names),
            Command::LoadCandidates {
                name,
                project,
                forward,
            } => self.load_candidates(name, project, forward),
            Command::WatchStats(ids) => {
                self.stats_wanted.send_replace(ids);
            }
            Command::WatchNodeStats(wanted) => self.watch_node_stats(app.session, wanted),
            Command::StatsInterval(interval) => {
                self.stats_interval.send_replace(interval);
            }
            Command::LoadComposeFiles(keys) => {
                let session = app.session;
                let tx = self.tx.clone();
                let files = self
                    .engine()
                    .map(|engine| crate::remote::SshFiles::for_engine(&engine));
                let cancel = self.session.clone();
                tokio::spawn(async move {
                    let why_not = |why: &str| crate::compose::ProjectView::Unreadable {
                        path: "the compose files".into(),
                        reason: why.into(),
                    };
                    let mut views = Vec::with_capacity(keys.len());
                    for key in keys {
                        let view = match &files {
                            None => why_not("not connected"),
                            Some(None) => why_not("berth reaches this engine over TCP only"),
                            Some(Some(files)) => tokio::select! {
                                _ = cancel.cancelled() => return,
                                v = crate::compose::load(files.as_ref(), &key) => v,
                            },
                        };
                        views.push((key, view));
                    }
                    let event = EngineEvent::ComposeFiles(views);
                    let _ = tx.send(Action::Engine { session, event }).await;
                });
            }
            Command::LoadDiskUsage => {
                let session = app.session;
                let tx = self.tx.clone();
                let Some(engine) = self.engine() else {
                    let _ = tx.try_send(Action::Engine {
                        session,
                        event: EngineEvent::DiskUsage(Err("not connected".into())),
                    });
                    return;
                };
                let cancel = self.session.clone();
                tokio::spawn(async move {
                    let usage = tokio::select! {
                        _ = cancel.cancelled() => return,
                        u = crate::stats::df::disk_usage(&engine) => u,
                    };
                    let event = EngineEvent::DiskUsage(usage);
                    let _ = tx.send(Action::Engine { session, event }).await;
                });
            }
            Command::OpenLogs {
                ids, view, options, ..
            } => self.open_logs(ids, view, options),
            Command::CloseLogs => self.close_logs(),
            Command::SaveLogs {
                file,
                lines,
                sources,
                timestamps,
            } => self.save_logs(file, lines, sources, timestamps),
            Command::SaveAllLogs {
                file,
                ids,
                sources,
                options,
            } => self.save_all_logs(file, ids, sources, options),
            Command::Copy(text) => {
                // Between frames: the loop runs commands after `update`, before it draws.
                if let Err(e) = copy_to_clipboard(&text) {
                    let _ = self
                        .tx
                        .try_send(Action::Notify(Level::Error, format!("copy: {e}")));
                }
            }
            Command::LoadServers => {
                let tx = self.tx.clone();
                let config = self.ctx.config.clone();
                tokio::spawn(async move {
                    let env = crate::target::Environment::from_process();
                    if let Ok(list) = tokio::task::spawn_blocking(move || {
                        crate::target::known_servers(&config, &env)
                    })
                    .await
                    {
                        let _ = tx.send(Action::Servers(list)).await;
                    }
                });
            }
            Command::ResolveServer(name) => {
                let tx = self.tx.clone();
                let config = self.ctx.config.clone();
                tokio::spawn(async move {
                    let env = crate::target::Environment::from_process();
                    let result = tokio::task::spawn_blocking(move || {
                        crate::target::resolve_named(&name, &config, &env)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                    let _ = tx.send(Action::ServerResolved(result)).await;
                });
            }
            Command::LoadSwarm => {
                let session = app.session;
                let tx = self.tx.clone();
                let Some(engine) = self.engine() else {
                    let result = Err("not connected".into());
                    let _ = tx.try_send(Action::Swarm { session, result });
                    return;
                };
                let cancel = self.session.clone();
                tokio::spawn(async move {
                    let result = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = crate::swarm::read_for_view(&engine) => r,
                    };
                    let _ = tx.send(Action::Swarm { session, result }).await;
                });
            }
            Command::WatchFleet { round } => self.start_fleet_watch(round),
            Command::CloseFleetServers(names) => self.close_fleet_servers(names),
            Command::ReopenFleetServers { round, servers } => {
                self.watch_fleet_servers(round, servers)
            }
            Command::StartForward {
                id,
                container_id,
                container,
                port,
                local,
            } => self.start_forward(app.session, id, container_id, container, port, local),
            Command::StopForward(id) => self.stop_forward(id),
            Command::LoadTheme(name) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let file = name.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        Theme::load(&file).map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                    let _ = tx.send(Action::ThemeLoaded { name, result }).await;
                });
            }
        }
    }

    pub(super) fn shutdown(&mut self) {
        self.session.cancel();
        self.fleet.cancel();
    }
}
