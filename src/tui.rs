//! The terminal: setup and restore (also on panic), the one event loop, render scheduling, and the
//! runner that turns `Command`s into background tasks.

use std::io::{self, Write};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::action::{Action, EngineEvent, Level, Reply};
use crate::action::{RunbookMsg, SharedGroupPlan, SharedPlan};
use crate::app::{App, Command};
use crate::context::Context;
use crate::engine;
use crate::keymap::Keymap;
use crate::runbook;
use crate::ssh::{LinkStatus, PromptAnswer, PromptRequest, Prompter, SshOptions};
use crate::theme::Theme;

/// Frames are drawn at most this often; a burst of engine news becomes one frame.
const FRAME: Duration = Duration::from_millis(16);
/// Background tasks can run ahead of the screen by this many messages before they wait.
const ACTION_QUEUE: usize = 1024;
/// Watcher news between the watcher and the loop's queue.
const WATCH_QUEUE: usize = 64;
/// Log batches between a log stream and the loop's queue.
const LOG_QUEUE: usize = 16;

/// Writes a saved log into the current directory, or the data directory when that fails. Never
/// overwrites: the name carries the time, and an existing file is an error.
fn save_log_file(file: &std::path::Path, text: &[u8]) -> Result<std::path::PathBuf, String> {
    let write = |path: &std::path::Path| -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        // Logs hold secrets: the saved copy is the user's alone.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text)
    };
    let first = match write(file) {
        Ok(()) => return Ok(std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())),
        Err(e) => e,
    };
    match crate::runbook::audit::data_dir() {
        Some(dir) => {
            let path = dir.join(file.file_name().unwrap_or(file.as_os_str()));
            std::fs::create_dir_all(&dir)
                .and_then(|_| write(&path))
                .map(|_| path)
                .map_err(|e| format!("{}: {first}; {}: {e}", file.display(), dir.display()))
        }
        None => Err(format!("{}: {first}", file.display())),
    }
}

/// Writes one audit line of a shell session, locally and (with `remote_audit`) on the server.
/// Returns what failed, for the status line.
async fn audit_shell(
    engine: &engine::Engine,
    container: &str,
    phase: crate::runbook::audit::ShellPhase,
    message: &str,
    opened: std::time::Instant,
) -> Option<String> {
    let mut entry = crate::runbook::AuditEntry::shell(
        &engine.target,
        container,
        phase,
        message,
        opened.elapsed(),
        chrono::Utc::now(),
    );
    entry.ssh_user = engine.ssh.as_ref().map(|s| s.resolved().user.clone());
    let mut failed = crate::runbook::AuditLog::from_env()
        .append(&entry)
        .err()
        .map(|e| e.to_string());
    if let Some(path) = engine.target.remote_audit.as_deref() {
        let remote = crate::remote::SshAppend::run_options(engine).remote;
        let e = match remote {
            Some(r) => r.append(path, &entry.to_line()).await.err(),
            None => Some("the server is not reached over SSH".into()),
        };
        if let Some(e) = e {
            failed = failed.or(Some(format!("remote audit {path}: {e}")));
        }
    }
    failed
}

/// Gives memory freed by a closed log view back to the system. glibc keeps freed blocks in its
/// arenas (RSS stayed at the peak after a large view closed); `malloc_trim` returns every whole
/// free page of every arena.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointer of ours is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Hands text to the terminal's clipboard with OSC 52; written between frames, never by a view.
fn copy_to_clipboard(text: &str) -> io::Result<()> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = io::stdout();
    write!(out, "\x1b]52;c;{encoded}\x07")?;
    out.flush()
}

/// Leaves raw mode and the alternate screen. Safe to call more than once.
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    leave_screen();
}

/// Back to the normal screen, raw mode untouched (the shell needs it on).
fn leave_screen() {
    let mut out = io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = out.flush();
}

/// Into the alternate screen with mouse and paste reporting, and a fresh terminal to draw on (its
/// first frame is drawn in full).
fn enter_screen() -> io::Result<Terminal<CrosstermBackend<io::Stdout>>> {
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Restores the terminal before the panic report is printed, so the report is readable and the
/// shell is usable afterwards.
pub fn install_panic_hook() {
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .into_hooks();
    let _ = eyre_hook.install();
    let panic_hook = panic_hook.into_panic_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        panic_hook(info);
    }));
}

struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Resolves everything that can fail before the terminal is touched, then runs the console.
pub async fn run(ctx: Context) -> color_eyre::Result<()> {
    let theme_name = ctx
        .global
        .theme
        .clone()
        .or_else(|| ctx.config.theme.clone())
        .unwrap_or_else(|| "dark".into());
    let theme = Theme::load(&theme_name)?;
    let keymap = Keymap::new(&ctx.config.keys).map_err(|e| {
        let path = ctx
            .config_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        color_eyre::eyre::eyre!("config {path}: {e}")
    })?;
    let target = ctx.target()?;

    enable_raw_mode()?;
    let _guard = TerminalGuard;
    let terminal = enter_screen()?;

    // --read-only holds for the whole console, as `read_only = true` at the config's top does:
    // every server it opens and every group's run.
    let mut config = ctx.config.clone();
    config.read_only |= ctx.global.read_only;
    let mut app = App::new(config, theme, keymap, chrono::Utc::now());
    let size = terminal.size()?;
    app.update(Action::Resize(size.width, size.height));
    let mut runner = Runner::new(ctx);
    for c in app.start(target) {
        runner.run(c, &app);
    }

    let mut events = EventStream::new();
    let mut terminal = terminal;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<Action> = Vec::with_capacity(256);
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    // The end-to-end test of the panic hook needs a panic on demand; only debug builds (what
    // `cargo test` runs) obey it, so no variable can crash a release binary on purpose.
    let panic_for_test = cfg!(debug_assertions) && std::env::var_os("BERTH_TEST_PANIC").is_some();
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            draw(&mut terminal, &app)?;
            last_draw = Instant::now();
            dirty = false;
            if panic_for_test {
                panic!("BERTH_TEST_PANIC: deliberate panic after the first frame");
            }
        }
        let next_frame = last_draw + FRAME;
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let action = match ev? {
                    Event::Key(k) => Action::Key(k),
                    Event::Mouse(m) => Action::Mouse(m),
                    Event::Resize(w, h) => Action::Resize(w, h),
                    Event::Paste(p) => Action::Paste(p),
                    _ => continue,
                };
                batch.push(action);
            }
            n = runner.rx.recv_many(&mut batch, 256) => {
                if n == 0 { break; }
            }
            Some((session, engine)) = runner.engines.recv() => runner.connected(session, engine),
            _ = tick.tick() => batch.push(Action::Tick(chrono::Utc::now())),
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
        }
        for action in batch.drain(..) {
            dirty = true;
            for command in app.update(action) {
                runner.run(command, &app);
            }
        }
        if app.should_quit {
            break;
        }
        if let Some((id, name)) = runner.shell.take() {
            // The shell owns the terminal until it exits: stop reading events, leave the alternate
            // screen, keep raw mode so every key reaches the container.
            drop(events);
            let mut audit_failed = None;
            let result = match runner.engine.clone() {
                Some(engine) => {
                    use crate::runbook::audit::ShellPhase;
                    let opened = std::time::Instant::now();
                    // The line is written before the first key reaches the container.
                    audit_failed =
                        audit_shell(&engine, &name, ShellPhase::Started, "", opened).await;
                    leave_screen();
                    print!(
                        "berth: shell in {}; exit the shell to return to berth\r\n",
                        crate::logs::sanitize::plain(&name)
                    );
                    let result = crate::shell::run(&engine.docker, &id).await;
                    let (phase, message) = match &result {
                        Ok(code) => (ShellPhase::Ended(Some(*code)), format!("exit {code}")),
                        Err(e) => (ShellPhase::Ended(None), e.to_string()),
                    };
                    audit_failed =
                        audit_failed.or(audit_shell(&engine, &name, phase, &message, opened).await);
                    result
                }
                None => Err(color_eyre::eyre::eyre!("not connected")),
            };
            terminal = enter_screen()?;
            events = EventStream::new();
            let note = match result {
                Ok(0) => Action::Notify(Level::Info, format!("shell in {name} ended")),
                Ok(code) => {
                    Action::Notify(Level::Warn, format!("shell in {name} exited with {code}"))
                }
                Err(e) => Action::Notify(Level::Error, format!("shell in {name}: {e}")),
            };
            app.update(note);
            if let Some(e) = audit_failed {
                app.update(Action::Notify(Level::Error, e));
            }
            dirty = true;
        }
    }
    runner.shutdown();
    // A notice queued just before quitting still goes out, unless its webhook keeps berth waiting.
    if let Some(n) = &runner.notifier {
        n.finish(Duration::from_secs(3)).await;
    }
    Ok(())
}

fn draw(terminal: &mut Terminal<CrosstermBackend<io::Stdout>>, app: &App) -> io::Result<()> {
    // Synchronized update: the terminal shows the whole frame at once, never half of it.
    execute!(io::stdout(), BeginSynchronizedUpdate)?;
    let r = terminal.draw(|f| crate::ui::draw(f, app));
    execute!(io::stdout(), EndSynchronizedUpdate)?;
    r.map(|_| ())
}

/// Answers the SSH layer's questions in a popup: the question travels to the app as an action,
/// the answer comes back through the reply.
struct TuiPrompter {
    tx: mpsc::Sender<Action>,
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
async fn forward<T>(
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
struct Runner {
    ctx: std::sync::Arc<Context>,
    tx: mpsc::Sender<Action>,
    rx: mpsc::Receiver<Action>,
    /// Cancels every task of the current server.
    session: CancellationToken,
    resync: Option<mpsc::Sender<()>>,
    /// The current server's engine once its connect task sends it.
    engine: Option<engine::Engine>,
    /// Which session `engine` belongs to; an older connect task's engine is dropped.
    session_id: u64,
    /// Connect tasks send the engine here; the loop hands it to `connected`.
    engine_tx: mpsc::Sender<(u64, engine::Engine)>,
    engines: mpsc::Receiver<(u64, engine::Engine)>,
    /// A shell the app asked for: the loop runs it, since it owns the terminal.
    shell: Option<(String, String)>,
    /// Cancels the open log view's stream.
    logs: CancellationToken,
    /// Cancels the fleet watch, closing its sessions.
    fleet: CancellationToken,
    /// Each watched server's own token (children of `fleet`): cancelled, its session closes.
    fleet_servers: std::collections::HashMap<String, CancellationToken>,
    /// What the stats collector reads (only the latest matters) and how often.
    stats_wanted: watch::Sender<Vec<String>>,
    stats_interval: watch::Sender<Duration>,
    /// Posts runbook runs to the `[[notify]]` webhooks; its failures come back as footer messages.
    notifier: Option<std::sync::Arc<crate::notify::Notifier>>,
}

impl Runner {
    fn new(ctx: Context) -> Runner {
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
            engine_tx,
            engines,
            session_id: 0,
            shell: None,
            stats_wanted: watch::channel(Vec::new()).0,
            stats_interval: watch::channel(interval).0,
            ctx: std::sync::Arc::new(ctx),
            tx,
            rx,
            session: CancellationToken::new(),
            resync: None,
            engine: None,
            logs: CancellationToken::new(),
            fleet: CancellationToken::new(),
            fleet_servers: Default::default(),
        }
    }

    fn engine(&self) -> Option<engine::Engine> {
        self.engine.clone()
    }

    /// A connect task's engine arrived; kept when it is the current session's.
    fn connected(&mut self, session: u64, engine: engine::Engine) {
        if session == self.session_id {
            self.engine = Some(engine);
        }
    }

    /// The engine, or `None` after telling the user `why` nothing happens.
    fn engine_or_say(&self, why: &str) -> Option<engine::Engine> {
        let engine = self.engine();
        if engine.is_none() {
            let _ = self.tx.try_send(Action::Notify(Level::Error, why.into()));
        }
        engine
    }

    fn run(&mut self, command: Command, app: &App) {
        match command {
            Command::Connect(target) => {
                self.session.cancel();
                self.session = CancellationToken::new();
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
                            tokio::spawn(forward(
                                watch_rx,
                                tx,
                                move |event: engine::watch::WatchEvent| Action::Engine {
                                    session,
                                    event: event.into(),
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
            Command::PlanRunbook(request) => {
                let Some(engine) = self.engine_or_say("not connected") else {
                    return;
                };
                let tx = self.tx.clone();
                let config = self.ctx.config.clone();
                let files = crate::remote::SshFiles::for_engine(&engine);
                tokio::spawn(async move {
                    let planned = runbook::plan_with(&engine, &config, &request, files)
                        .await
                        .map(|p| SharedPlan(std::sync::Arc::new(p)))
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Action::Runbook(RunbookMsg::Planned(planned))).await;
                });
            }
            Command::RunPlan(plan) => {
                let Some(engine) = self.engine_or_say("not connected: nothing was run") else {
                    return;
                };
                let tx = self.tx.clone();
                let notifier = self.notifier.clone();
                // Not tied to the server session: a rollback finishes (or restores) even if the user
                // switches servers meanwhile.
                tokio::spawn(run_one((*plan.0).clone(), engine, tx, notifier));
            }
            Command::PlanGroup {
                group,
                members,
                request,
            } => {
                let tx = self.tx.clone();
                let ctx = self.ctx.clone();
                let ssh = SshOptions {
                    batch: false,
                    prompter: Some(std::sync::Arc::new(TuiPrompter {
                        tx: self.tx.clone(),
                    })),
                    ..self.ctx.ssh_options()
                };
                tokio::spawn(async move {
                    let planned = plan_group(&ctx, &group, &members, &request, &ssh)
                        .await
                        .map(|p| SharedGroupPlan(std::sync::Arc::new(p)));
                    let _ = tx
                        .send(Action::Runbook(RunbookMsg::GroupPlanned(planned)))
                        .await;
                });
            }
            Command::RunGroup(plan) => {
                let tx = self.tx.clone();
                let notifier = self.notifier.clone();
                let members = plan.0.members.clone();
                tokio::spawn(async move {
                    let outcome = crate::fleet::group::run(members, |index, member| {
                        let tx = tx.clone();
                        let notifier = notifier.clone();
                        async move {
                            let started = RunbookMsg::GroupMember { index };
                            let _ = tx.send(Action::Runbook(started)).await;
                            run_one(member.plan, member.engine, tx, notifier).await
                        }
                    })
                    .await;
                    let _ = tx
                        .send(Action::Runbook(RunbookMsg::GroupDone(outcome)))
                        .await;
                });
            }
            Command::NotifyTest => {
                let tx = self.tx.clone();
                let entries = self.ctx.config.notify.clone();
                tokio::spawn(async move {
                    let results =
                        crate::notify::test_all(&entries, crate::notify::Retry::default()).await;
                    let failed = results.iter().any(|r| r.outcome.is_err());
                    let said: Vec<String> = results
                        .iter()
                        .map(|r| match &r.outcome {
                            Ok(_) => format!("ok {} {}", r.kind, r.url),
                            Err(e) => format!("failed {} {}: {e}", r.kind, r.url),
                        })
                        .collect();
                    let level = if failed { Level::Error } else { Level::Info };
                    let text = format!("notify test: {}", said.join("; "));
                    let _ = tx.send(Action::Notify(level, text)).await;
                });
            }
            Command::LoadAudit => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let entries = tokio::task::spawn_blocking(|| {
                        runbook::AuditLog::from_env().read_last(500)
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    let _ = tx.send(Action::Runbook(RunbookMsg::Audit(entries))).await;
                });
            }
            Command::LoadCandidates {
                name,
                project,
                forward,
            } => {
                let Some(engine) = self.engine_or_say("not connected") else {
                    return;
                };
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result =
                        runbook::candidates_with_registry(&engine, &name, project.as_deref())
                            .await
                            .map_err(|e| e.to_string());
                    let msg = RunbookMsg::Candidates {
                        name,
                        project,
                        forward,
                        result,
                    };
                    let _ = tx.send(Action::Runbook(msg)).await;
                });
            }
            Command::WatchStats(ids) => {
                self.stats_wanted.send_replace(ids);
            }
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
            } => {
                self.logs.cancel();
                let Some(engine) = self.engine() else {
                    // The view is open: say why it stays empty, there.
                    for source in 0..ids.len() {
                        let status = crate::logs::SourceStatus::Failed("not connected".into());
                        let event = crate::logs::LogEvent::Status {
                            source: source as u16,
                            status,
                        };
                        let _ = self.tx.try_send(Action::Logs { view, event });
                    }
                    return;
                };
                // A child of the session: switching servers stops the stream too.
                self.logs = self.session.child_token();
                let (ev_tx, ev_rx) = mpsc::channel(LOG_QUEUE);
                // Cancelled, the stream drops its sender and the forwarding ends with it.
                crate::logs::stream::spawn(
                    engine.docker.clone(),
                    ids,
                    options,
                    ev_tx,
                    self.logs.clone(),
                );
                tokio::spawn(forward(ev_rx, self.tx.clone(), move |event| Action::Logs {
                    view,
                    event,
                }));
            }
            Command::CloseLogs => {
                self.logs.cancel();
                // The view's lines were freed by the update before this command ran.
                release_freed_memory();
            }
            Command::SaveLogs {
                file,
                lines,
                sources,
                timestamps,
            } => {
                let tx = self.tx.clone();
                let count = lines.len();
                tokio::spawn(async move {
                    let saved = tokio::task::spawn_blocking(move || {
                        let text = crate::logs::format_lines(&sources, timestamps, &lines);
                        save_log_file(&file, &text)
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                    let note = match saved {
                        Ok(path) => Action::Notify(
                            Level::Info,
                            format!("saved {count} lines to {}", path.display()),
                        ),
                        Err(e) => Action::Notify(Level::Error, format!("saving the log: {e}")),
                    };
                    let _ = tx.send(note).await;
                });
            }
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
            Command::WatchFleet { round } => {
                self.fleet.cancel();
                self.fleet = CancellationToken::new();
                self.fleet_servers.clear();
                let names: Vec<String> = self.ctx.config.servers.keys().cloned().collect();
                self.watch_fleet_servers(round, names);
            }
            Command::CloseFleetServers(names) => {
                for name in names {
                    if let Some(token) = self.fleet_servers.remove(&name) {
                        token.cancel();
                    }
                }
            }
            Command::ReopenFleetServers { round, servers } => {
                self.watch_fleet_servers(round, servers);
            }
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

    /// Watches `names` (configured servers not watched now) under the fleet's token, each with
    /// its own child token so it can be closed alone.
    fn watch_fleet_servers(&mut self, round: u64, names: Vec<String>) {
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

    fn shutdown(&mut self) {
        self.session.cancel();
        self.fleet.cancel();
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

/// Runs one plan to its end, its events sent to the loop; audited, and posted to the webhooks.
async fn run_one(
    plan: runbook::Plan,
    engine: engine::Engine,
    tx: mpsc::Sender<Action>,
    notifier: Option<std::sync::Arc<crate::notify::Notifier>>,
) -> runbook::RunResult {
    let mut options = crate::remote::SshAppend::run_options(&engine);
    options.notify = notifier.map(|n| n as std::sync::Arc<dyn runbook::RunNotify>);
    let (ev_tx, mut ev_rx) = mpsc::channel(runbook::EVENT_CHANNEL);
    let run = tokio::spawn(runbook::execute_with(
        plan,
        engine,
        ev_tx,
        CancellationToken::new(),
        options,
    ));
    // The loop gone (berth quitting), the run still goes to its end: events are dropped.
    while let Some(ev) = ev_rx.recv().await {
        let _ = tx.send(Action::Runbook(RunbookMsg::Event(ev))).await;
    }
    match run.await {
        Ok(result) => result,
        Err(e) => runbook::RunResult {
            ok: false,
            message: format!("the run stopped: {e}"),
            duration: Duration::ZERO,
            images_before: vec![],
            images_after: vec![],
            metrics: Default::default(),
        },
    }
}

/// A group's run planned as `berth -s GROUP …` plans it: the members resolved (off the loop),
/// then each connected and planned in turn.
async fn plan_group(
    ctx: &Context,
    group: &str,
    members: &[String],
    request: &runbook::Request,
    ssh: &SshOptions,
) -> Result<crate::fleet::group::GroupPlan, String> {
    let timeout = ctx.config.fleet.connect_timeout()?;
    let resolved = {
        let (config, read_only) = (ctx.config.clone(), ctx.global.read_only);
        let (group, members) = (group.to_string(), members.to_vec());
        let mutating = request.mutating();
        tokio::task::spawn_blocking(move || {
            let env = crate::target::Environment::from_process();
            crate::fleet::group::member_targets(
                &config, &env, read_only, &group, &members, mutating,
            )
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let (targets, same_host) = resolved;
    crate::fleet::group::plan(
        group,
        targets,
        same_host,
        request,
        &ctx.config,
        ssh,
        timeout,
    )
    .await
}

/// How often the fleet reads each server's host (and retries an unreachable one).
pub const FLEET_REFRESH: Duration = Duration::from_secs(10);

#[cfg(test)]
#[path = "tui_tests.rs"]
mod tests;
