//! berth's own history of the engine events it saw on a server while watching it: one JSON line
//! per event in `events/<server>.jsonl` in the data directory, bounded, so a timeline reaches
//! further back than the engine's last few hundred events (and past an engine restart).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::EngineEvent;

/// Past this size the file is cut to its newer half.
pub const MAX_BYTES: u64 = 4 << 20;

/// One server's history file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub path: PathBuf,
}

impl History {
    /// `$BERTH_DATA_DIR/events/<server>.jsonl` (the server's name with anything but letters,
    /// digits, `-`, `_` and `.` replaced).
    pub fn for_server(server: &str) -> History {
        let dir = crate::runbook::audit::data_dir().unwrap_or_else(|| PathBuf::from("."));
        History::in_dir(&dir, server)
    }

    pub fn in_dir(dir: &Path, server: &str) -> History {
        let file: String = server
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let file = file.trim_start_matches('.');
        let file = if file.is_empty() { "local" } else { file };
        History {
            path: dir.join("events").join(format!("{file}.jsonl")),
        }
    }

    /// Appends the events (one `write` for the batch, on an append-mode file), then bounds the
    /// file.
    pub fn append(&self, events: &[EngineEvent]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = String::new();
        for e in events {
            if let Ok(line) = serde_json::to_string(e) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        if f.metadata()?.len() > MAX_BYTES {
            self.cut()?;
        }
        Ok(())
    }

    /// Keeps the newer half, written aside and renamed over the file so a reader never sees half.
    fn cut(&self) -> std::io::Result<()> {
        let text = std::fs::read_to_string(&self.path)?;
        let half = text.len() / 2;
        let start = text[half..]
            .find('\n')
            .map(|i| half + i + 1)
            .unwrap_or(text.len());
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, &text[start..])?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Every event kept, oldest first; lines that are not events are skipped.
    pub fn read(&self) -> std::io::Result<Vec<EngineEvent>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// Events waiting for the writer; past this the watcher's news is not held up and the event is
/// left out of the history (the console still shows it).
const RECORD_QUEUE: usize = 1024;

/// Records the events the console's watcher sees into a server's [`History`]. The watcher's
/// news passes through [`Recorder::see`] on its way to the loop; a writer task appends them in
/// batches off the async threads.
pub struct Recorder {
    /// Compose and swarm labels by container id, from the listings (an event carries only the
    /// container's name).
    labels: std::sync::Mutex<std::collections::HashMap<String, Labels>>,
    tx: tokio::sync::mpsc::Sender<EngineEvent>,
}

#[derive(Debug, Clone, Default)]
struct Labels {
    project: Option<String>,
    service: Option<String>,
    swarm_service: Option<String>,
}

impl Labels {
    fn of(c: &crate::engine::model::Container) -> Labels {
        Labels {
            project: c.project.clone(),
            service: c.service.clone(),
            swarm_service: c.labels.get("com.docker.swarm.service.name").cloned(),
        }
    }
}

impl Recorder {
    /// Starts the writer (call inside the runtime); it ends when the recorder is dropped.
    pub fn spawn(history: History) -> std::sync::Arc<Recorder> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<EngineEvent>(RECORD_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 256).await > 0 {
                let events = std::mem::take(&mut batch);
                let history = history.clone();
                // The history is a convenience: a failed write must not disturb the console.
                let _ = tokio::task::spawn_blocking(move || history.append(&events)).await;
            }
        });
        std::sync::Arc::new(Recorder {
            labels: std::sync::Mutex::new(std::collections::HashMap::new()),
            tx,
        })
    }

    /// Learns labels from listings; queues each container event that matters.
    pub fn see(&self, event: &crate::engine::watch::WatchEvent) {
        use crate::engine::watch::WatchEvent;
        let Ok(mut labels) = self.labels.lock() else {
            return;
        };
        match event {
            WatchEvent::Snapshot(list) => {
                *labels = list.iter().map(|c| (c.id.clone(), Labels::of(c))).collect();
            }
            WatchEvent::Changed(c) => {
                labels.insert(c.id.clone(), Labels::of(c));
            }
            WatchEvent::Event(r) => {
                // A destroy is the container's last event: its labels go with it, so the map
                // holds what exists, however many containers come and go between listings.
                let l = if r.action == "destroy" {
                    labels.remove(&r.id)
                } else {
                    labels.get(&r.id).cloned()
                }
                .unwrap_or_default();
                let event = EngineEvent {
                    time: r.time,
                    kind: "container".into(),
                    action: r.action.clone(),
                    id: r.id.clone(),
                    name: r.name.clone(),
                    exit_code: r.exit_code.as_deref().and_then(|c| c.parse().ok()),
                    project: l.project,
                    service: l.service,
                    swarm_service: l.swarm_service,
                    from_state: false,
                };
                if event.matters() {
                    let _ = self.tx.try_send(event);
                }
            }
            // `Gone` keeps the labels: a destroy's own event is still to come.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> EngineEvent {
        EngineEvent {
            time: chrono::DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap(),
            kind: "container".into(),
            action: "die".into(),
            id: format!("{n:064}"),
            name: "shop-web-1".into(),
            exit_code: Some(n),
            project: Some("shop".into()),
            service: Some("web".into()),
            swarm_service: None,
            from_state: false,
        }
    }

    #[test]
    fn appends_reads_back_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::in_dir(dir.path(), "ssh://ana@prod:22/x");
        assert!(h.path.ends_with("events/ssh___ana_prod_22_x.jsonl"));
        assert!(h.read().unwrap().is_empty());
        h.append(&[event(1), event(2)]).unwrap();
        assert_eq!(h.read().unwrap(), vec![event(1), event(2)]);
        // ~300 bytes a line: enough lines to pass the bound twice.
        let batch: Vec<EngineEvent> = (3..100).map(event).collect();
        let rounds = (2 * MAX_BYTES as usize) / (300 * batch.len()) + 1;
        for _ in 0..rounds {
            h.append(&batch).unwrap();
        }
        let size = std::fs::metadata(&h.path).unwrap().len();
        assert!(size <= MAX_BYTES, "{size} bytes kept");
        let kept = h.read().unwrap();
        assert!(kept.len() > 1000);
        assert_eq!(kept.last(), Some(&event(99)), "the newest is kept");
        assert!(!kept.contains(&event(1)), "the oldest went first");
    }
}
