//! The local journal of a rollback in flight: one small JSON file per run in the data directory
//! (`runs/<rollback id>.json`), written before the first change and removed when the run ends.
//! A file left behind is a run that was cut off (berth killed, laptop closed) — the only trace of
//! one cut during the very first stop, before anything on the server was renamed or created.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::super::audit::data_dir;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Entry {
    pub rollback_id: String,
    /// The server's name as berth knows it (journals of other servers are not this one's business).
    pub server: String,
    /// Each replica the run touches: (name it serves under, container id).
    pub replicas: Vec<(String, String)>,
    /// The `.env` pin the run writes before its first container change: only the journal knows of
    /// it when the run is cut before it touched a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinRecord>,
    /// The retag the run does after its health check: a recovery completes it (finish) or points
    /// the tag back (restore), so the next `docker compose up -d` starts what serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retag: Option<RetagRecord>,
}

/// The tag a run moves: `repo:tag` from `displaced` to `image_id`, the displaced image kept
/// reachable as `repo:keep_tag`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct RetagRecord {
    pub repo: String,
    pub tag: String,
    pub keep_tag: String,
    pub displaced: String,
    pub image_id: String,
}

/// Where a pin wrote and what it kept. The file's text is not here (a `.env` holds secrets): the
/// copy the pin made on the server (`backup`) is what a restore writes back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct PinRecord {
    pub env_path: String,
    pub backup: String,
    pub var: String,
    /// The value the pin wrote: with the copy, it tells the pinned file from one changed since.
    pub value: String,
}

fn dir() -> Option<PathBuf> {
    data_dir().map(|d| d.join("runs"))
}

fn path(id: &str) -> Option<PathBuf> {
    // The id is berth's own (timestamp-hex); keep it a plain file name whatever it holds.
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    dir().map(|d| d.join(format!("{safe}.json")))
}

/// Records a run before its first change. An error is returned for a warning; the run goes on.
pub(crate) fn write(e: &Entry) -> Result<(), String> {
    let p = path(&e.rollback_id).ok_or("no data directory for the run journal")?;
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|x| format!("{}: {x}", d.display()))?;
    }
    let text = serde_json::to_string(e).map_err(|x| x.to_string())?;
    std::fs::write(&p, text).map_err(|x| format!("{}: {x}", p.display()))
}

pub(crate) fn remove(id: &str) {
    if let Some(p) = path(id) {
        let _ = std::fs::remove_file(p);
    }
}

/// Runs on `server` that never ended.
pub(crate) fn open_runs(server: &str) -> Vec<Entry> {
    let Some(d) = dir() else {
        return Vec::new();
    };
    let Ok(files) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    files
        .flatten()
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .filter_map(|t| serde_json::from_str::<Entry>(&t).ok())
        .filter(|e| e.server == server)
        .collect()
}
