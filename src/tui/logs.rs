//! The runner's log commands: a log view's stream opened and closed, its lines saved to a file.

use tokio::sync::mpsc;

use super::runner::{Runner, forward};
use crate::action::{Action, Level};

/// Log batches between a log stream and the loop's queue.
const LOG_QUEUE: usize = 16;

impl Runner {
    /// `Command::OpenLogs`: the stream of view `view`, replacing any earlier one.
    pub(super) fn open_logs(
        &mut self,
        ids: Vec<String>,
        view: u64,
        options: crate::logs::LogOptions,
    ) {
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

    /// `Command::CloseLogs`.
    pub(super) fn close_logs(&mut self) {
        self.logs.cancel();
        // The view's lines were freed by the update before this command ran.
        release_freed_memory();
    }

    /// `Command::SaveLogs`: formatted and written off the loop.
    pub(super) fn save_logs(
        &mut self,
        file: std::path::PathBuf,
        lines: Vec<crate::logs::LogLine>,
        sources: Vec<crate::logs::LogSource>,
        timestamps: bool,
    ) {
        let tx = self.tx.clone();
        let count = lines.len();
        tokio::spawn(async move {
            let saved = tokio::task::spawn_blocking(move || {
                let text = crate::logs::format_lines(&sources, timestamps, &lines);
                crate::logs::save::save_log_file(&file, &text)
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
}

impl Runner {
    /// `Command::SaveAllLogs`: the range streamed once more, without following, straight into the
    /// file as it comes: nothing is held in memory, so no bound drops a line.
    pub(super) fn save_all_logs(
        &mut self,
        file: std::path::PathBuf,
        ids: Vec<String>,
        sources: Vec<crate::logs::LogSource>,
        options: crate::logs::LogOptions,
    ) {
        let Some(engine) = self.engine_or_say("not connected: nothing saved") else {
            return;
        };
        let tx = self.tx.clone();
        let cancel = self.session.child_token();
        tokio::spawn(async move {
            let note = match crate::logs::save::save_range(
                &engine.docker,
                file,
                ids,
                sources,
                options,
                cancel,
            )
            .await
            {
                Ok((path, count)) => Action::Notify(
                    Level::Info,
                    format!("saved all {count} lines of the range to {}", path.display()),
                ),
                Err(e) => Action::Notify(Level::Error, format!("saving the whole log: {e}")),
            };
            let _ = tx.send(note).await;
        });
    }
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
