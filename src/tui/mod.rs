//! The terminal: setup and restore (also on panic), the one event loop and render scheduling. The
//! runner (`runner.rs`, with the runbook's, the log view's and the fleet's commands in their own
//! files) turns the `Command`s `update` returns into background tasks; `shell.rs` hands the
//! terminal to a shell in a container and takes it back.

mod fleet;
mod forward;
mod logs;
mod node_stats;
mod runbook;
mod runner;
mod shell;
mod timeline;

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
use tokio::time::Instant;

use crate::action::{Action, Level};
use crate::app::App;
use crate::context::Context;
use crate::keymap::Keymap;
use crate::theme::Theme;
use runner::Runner;

pub use logs::release_freed_memory;

/// Frames are drawn at most this often; a burst of engine news becomes one frame.
const FRAME: Duration = Duration::from_millis(16);

/// Hands text to the terminal's clipboard with OSC 52; written between frames, never by a view.
pub(super) fn copy_to_clipboard(text: &str) -> io::Result<()> {
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
pub(super) fn leave_screen() {
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
    // A closed terminal (SIGHUP) or a SIGTERM ends the console, not the runs in flight: the loop
    // ends and berth waits for them below.
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let ended: color_eyre::Result<()> = async {
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            match draw(&mut terminal, &app) {
                Ok(()) => {}
                Err(e) if terminal_gone(&e) => break,
                Err(e) => return Err(e.into()),
            }
            last_draw = Instant::now();
            dirty = false;
            if panic_for_test {
                panic!("BERTH_TEST_PANIC: deliberate panic after the first frame");
            }
        }
        let next_frame = last_draw + FRAME;
        tokio::select! {
            // The engine first: a connect task hands it over before its watcher starts, so the
            // first snapshot, and the commands it leads to (reading compose files for the drift
            // marker), always find it here. Unbiased, a busy frame could take the snapshot first.
            biased;
            Some((session, engine)) = runner.engines.recv() => runner.connected(session, engine),
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) if terminal_gone(&e) => break,
                    Err(e) => return Err(e.into()),
                };
                let action = match ev {
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
            _ = tick.tick() => batch.push(Action::Tick(chrono::Utc::now())),
            _ = hangup.recv() => break,
            _ = terminate.recv() => break,
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
            let (note, audit_failed) = shell::hand_over(runner.engine(), &id, &name).await;
            terminal = enter_screen()?;
            events = EventStream::new();
            app.update(note);
            if let Some(e) = audit_failed {
                app.update(Action::Notify(Level::Error, e));
            }
            dirty = true;
        }
    }
    Ok(())
    }
    .await;
    // Not dropped: ratatui's drop shows the cursor and, when that fails (a terminal that hung
    // up), reports it with eprintln!, which panics on the same dead terminal and aborts berth
    // after its run. restore_terminal shows the cursor, letting a failure pass.
    std::mem::forget(terminal);
    // A run in flight goes on to its end, audited and its notices sent, whatever became of the
    // terminal; a second SIGTERM (or SIGINT, SIGHUP) stops it at its next safe point and restores.
    runner.runs.close();
    if !runner.runs.is_empty() {
        restore_terminal();
        crate::cli::out::errln!(
            "berth: a run is in flight: waiting for it to end (audited, notices sent); SIGTERM again stops it at the next safe point and restores"
        );
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = runner.runs.wait() => {}
            _ = terminate.recv() => runner.runs_cancel.cancel(),
            _ = interrupt.recv() => runner.runs_cancel.cancel(),
        }
        runner.runs.wait().await;
    }
    runner.shutdown();
    // A notice queued just before quitting still goes out, unless its webhook keeps berth waiting.
    if let Some(n) = &runner.notifier {
        n.finish(Duration::from_secs(3)).await;
    }
    ended
}

/// The terminal hung up (its window closed, the SSH to the bastion dropped): it fails every read
/// and write with EIO from then on. The console ends as on SIGHUP, which is no failure: a run in
/// flight goes on to its end.
fn terminal_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::ENXIO))
}

fn draw(terminal: &mut Terminal<CrosstermBackend<io::Stdout>>, app: &App) -> io::Result<()> {
    // Synchronized update: the terminal shows the whole frame at once, never half of it.
    execute!(io::stdout(), BeginSynchronizedUpdate)?;
    let r = terminal.draw(|f| crate::ui::draw(f, app));
    execute!(io::stdout(), EndSynchronizedUpdate)?;
    r.map(|_| ())
}

#[cfg(test)]
mod tests;
