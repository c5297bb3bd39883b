//! A run's events on their way to whoever shows them (the CLI's printer, the console's run view),
//! without ever waiting for them: a terminal that stops reading (XOFF, a frozen SSH to a bastion,
//! a shell left open in the console) must not stall a rollback mid-switch. When the channel is
//! full, output lines are left out of the view and counted, and one line says how many once there
//! is room again; the steps' starts and ends wait in a queue of their own (a few per step, so it
//! stays small) and are never lost. Every output line also goes to the run's own record, a file in
//! the data directory, so what the view left out is kept.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::RunEvent;

/// Bytes of output the record keeps: past that a last line says it stopped (a migration that
/// prints without end must not fill the disk).
const RECORD_BYTES: u64 = 64 << 20;

pub(crate) struct Outbox {
    tx: mpsc::Sender<RunEvent>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Step starts and ends the reader has not taken yet, in order.
    pending: VecDeque<RunEvent>,
    /// Output lines left out of the view since the last notice, and the step they belong to.
    dropped: u64,
    dropped_step: usize,
    dropped_total: u64,
    record: Option<Record>,
    /// The record could not be opened: not retried for every line.
    record_failed: bool,
    /// What the record file is called: `<time>-<action>`.
    record_name: String,
}

struct Record {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    written: u64,
}

impl Outbox {
    /// `record`: what the run's record file is called (`<UTC time>-<action>`); `None`: none.
    pub(crate) fn new(tx: mpsc::Sender<RunEvent>, record: Option<String>) -> Outbox {
        Outbox {
            tx,
            state: Mutex::new(State {
                record_failed: record.is_none(),
                record_name: record.unwrap_or_default(),
                ..Default::default()
            }),
        }
    }

    /// Hands an event to the reader if it has room, never waiting.
    pub(crate) fn post(&self, ev: RunEvent) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if let RunEvent::Output { line, .. } = &ev {
            s.record(line);
        }
        self.flush(&mut s);
        match ev {
            RunEvent::Output { step, line } => {
                // A pull's progress is only ever worth its latest value: not counted as lost.
                let progress = line.starts_with(super::rollback::registry::PROGRESS_PREFIX);
                let ev = RunEvent::Output { step, line };
                // After the flush, anything still waiting means the reader has no room.
                let waiting = !s.pending.is_empty() || s.dropped > 0;
                if (waiting || matches!(self.try_send(ev), Err(Some(_)))) && !progress {
                    s.dropped += 1;
                    s.dropped_total += 1;
                    s.dropped_step = step;
                }
            }
            other => {
                // The lines left out before this event are said before it.
                if let Some(notice) = s.notice() {
                    s.pending.push_back(notice);
                }
                s.pending.push_back(other);
                self.flush(&mut s);
            }
        }
    }

    /// The last event: the run has ended, so it waits for the reader (one that went away returns
    /// at once), after everything still queued and the count of lines left out.
    pub(crate) async fn close(&self, done: RunEvent) {
        let queued: Vec<RunEvent> = match self.state.lock() {
            Ok(mut s) => {
                if let Some(r) = &mut s.record {
                    let _ = r.file.flush();
                }
                let mut queued: Vec<RunEvent> = s.pending.drain(..).collect();
                if let Some(notice) = s.notice() {
                    queued.push(notice);
                }
                queued
            }
            Err(_) => Vec::new(),
        };
        for ev in queued.into_iter().chain([done]) {
            if self.tx.send(ev).await.is_err() {
                return;
            }
        }
    }

    /// Output lines the view never showed.
    pub(crate) fn dropped(&self) -> u64 {
        self.state.lock().map(|s| s.dropped_total).unwrap_or(0)
    }

    /// `Err(Some(ev))`: full, the event back; `Err(None)`: the reader went away (dropped unheard:
    /// a run must not stop because nobody watches).
    fn try_send(&self, ev: RunEvent) -> Result<(), Option<RunEvent>> {
        match self.tx.try_send(ev) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(ev)) => Err(Some(ev)),
            Err(TrySendError::Closed(_)) => Err(None),
        }
    }

    /// Sends what waits, in order, while there is room: the queued step events first, then the
    /// count of lines left out.
    fn flush(&self, s: &mut State) {
        while let Some(ev) = s.pending.pop_front() {
            match self.try_send(ev) {
                Ok(()) => {}
                Err(Some(ev)) => {
                    s.pending.push_front(ev);
                    return;
                }
                Err(None) => {
                    s.pending.clear();
                    return;
                }
            }
        }
        // Only with room for it: until then the lines left out are counted into one notice.
        if s.dropped > 0
            && self.tx.capacity() > 0
            && let Some(notice) = s.notice()
            && let Err(Some(notice)) = self.try_send(notice)
        {
            s.pending.push_back(notice);
        }
    }
}

impl State {
    /// The line that stands for the lines left out since the last one.
    fn notice(&mut self) -> Option<RunEvent> {
        if self.dropped == 0 {
            return None;
        }
        let kept = match &self.record {
            Some(r) => format!("kept in full in {}", r.path.display()),
            None => "the screen did not keep up".into(),
        };
        let ev = RunEvent::Output {
            step: self.dropped_step,
            line: format!(
                "… {} line{} not shown here ({kept})",
                self.dropped,
                if self.dropped == 1 { "" } else { "s" }
            ),
        };
        self.dropped = 0;
        Some(ev)
    }

    fn record(&mut self, line: &str) {
        if self.record.is_none() && !self.record_failed {
            self.record = open_record(&self.record_name);
            self.record_failed = self.record.is_none();
        }
        let Some(r) = &mut self.record else {
            return;
        };
        if r.written >= RECORD_BYTES {
            return;
        }
        r.written += line.len() as u64 + 1;
        let _ = if r.written >= RECORD_BYTES {
            writeln!(r.file, "… the record stops here: {RECORD_BYTES} bytes kept")
        } else {
            writeln!(r.file, "{line}")
        };
    }
}

/// Records kept in the data directory: the oldest go as new runs start.
const RECORDS_KEPT: usize = 50;

fn open_record(name: &str) -> Option<Record> {
    let dir = super::audit::data_dir()?.join("output");
    std::fs::create_dir_all(&dir).ok()?;
    // Named by their start time: the oldest sort first.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        let excess = (names.len() + 1).saturating_sub(RECORDS_KEPT);
        for old in names.into_iter().take(excess) {
            let _ = std::fs::remove_file(old);
        }
    }
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{safe}.log"));
    let file = std::fs::File::create(&path).ok()?;
    Some(Record {
        path,
        file: std::io::BufWriter::new(file),
        written: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: usize, text: &str) -> RunEvent {
        RunEvent::Output {
            step,
            line: text.into(),
        }
    }

    #[tokio::test]
    async fn a_reader_that_does_not_read_never_holds_the_run_and_loses_no_step() {
        let (tx, mut rx) = mpsc::channel(4);
        let outbox = Outbox::new(tx, None);
        // Nobody reads: every post returns at once.
        outbox.post(RunEvent::StepStarted { step: 0 });
        for i in 0..1000 {
            outbox.post(line(0, &format!("line {i}")));
        }
        outbox.post(RunEvent::StepFinished {
            step: 0,
            outcome: crate::runbook::Outcome {
                ok: true,
                status: crate::runbook::StepStatus::Ok,
                message: "done".into(),
                duration: std::time::Duration::ZERO,
            },
        });
        assert_eq!(outbox.dropped(), 997);
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(ev) = rx.recv().await {
                seen.push(ev);
            }
            seen
        });
        outbox
            .close(RunEvent::Done {
                result: crate::runbook::RunResult {
                    ok: true,
                    message: String::new(),
                    duration: std::time::Duration::ZERO,
                    images_before: vec![],
                    images_after: vec![],
                    metrics: Default::default(),
                },
            })
            .await;
        drop(outbox);
        let seen = reader.await.unwrap();
        let kinds: Vec<String> = seen
            .iter()
            .map(|e| match e {
                RunEvent::StepStarted { .. } => "start".to_string(),
                RunEvent::Output { line, .. } => line.clone(),
                RunEvent::StepFinished { .. } => "finish".into(),
                RunEvent::Done { .. } => "done".into(),
            })
            .collect();
        assert_eq!(kinds[..4], ["start", "line 0", "line 1", "line 2"]);
        assert_eq!(
            kinds[4], "… 997 lines not shown here (the screen did not keep up)",
            "{kinds:?}"
        );
        assert_eq!(kinds[5..], ["finish", "done"]);
    }
}
