//! The journal of a rollback in flight, written before the first change and removed when the run
//! ends, in two places: on the server, as the label of a container `berth-run-<rollback id>` that
//! is created and never started (so a run cut off is found from any machine, over any connection
//! to the engine), and locally, one small JSON file per run in the data directory
//! (`runs/<rollback id>.json`, for when the server's copy could not be written). A journal left
//! behind is a run that was cut off (berth killed, laptop closed) — the only trace of one cut during
//! the very first stop, before anything on the server was renamed or created.

use std::path::PathBuf;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptions;
use serde::{Deserialize, Serialize};

use super::super::audit::data_dir;
use super::set_aside::remove_container;
use crate::engine::Engine;
use crate::engine::model::{
    COMPOSE_PREFIX, Container, LABEL_RUN_JOURNAL, NEW_MARK, RUN_JOURNAL_PREFIX, set_aside_base,
};

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
    /// The local copy's note that the server's copy was written: when the server no longer has
    /// it, the run was closed from another machine and the local copy is stale.
    #[serde(default)]
    pub on_server: bool,
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

fn write(e: &Entry) -> Result<(), String> {
    let p = path(&e.rollback_id).ok_or("no data directory for the run journal")?;
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|x| format!("{}: {x}", d.display()))?;
    }
    let text = serde_json::to_string(e).map_err(|x| x.to_string())?;
    std::fs::write(&p, text).map_err(|x| format!("{}: {x}", p.display()))
}

/// Whether a journal can be written here, tried with a small file written and removed in the
/// journals' directory: a read-only or full disk says so before a plan is shown.
pub(crate) fn probe_local() -> Result<(), String> {
    let d = dir().ok_or("no data directory for the run journal")?;
    std::fs::create_dir_all(&d).map_err(|x| format!("{}: {x}", d.display()))?;
    let probe = d.join(format!(".probe-{}", std::process::id()));
    let written =
        std::fs::write(&probe, [b'{'; 512]).map_err(|x| format!("{}: {x}", probe.display()));
    let _ = std::fs::remove_file(&probe);
    written
}

fn remove(id: &str) {
    if let Some(p) = path(id) {
        let _ = std::fs::remove_file(p);
    }
}

/// Records a run before its first change, on the server (from `image`, which is there: a replica
/// runs it) and here. The error is for a warning; the run goes on.
pub(crate) async fn open(engine: &Engine, e: &mut Entry, image: &str) -> Result<(), String> {
    let text = serde_json::to_string(&*e).map_err(|x| x.to_string())?;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some([(LABEL_RUN_JOURNAL.to_string(), text)].into()),
        // Never started; no network, so it holds no address or alias meanwhile.
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        network_disabled: Some(true),
        ..Default::default()
    };
    let on_server = engine
        .docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(server_name(&e.rollback_id)),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|x| format!("the server's copy: {}", super::super::eng(engine, x)));
    e.on_server = on_server.is_ok();
    let local = write(e);
    match (on_server, local) {
        (Ok(_), Ok(())) => Ok(()),
        (Err(a), Ok(())) => Err(a),
        (Ok(_), Err(b)) => Err(b),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

/// How long the removal of the server's copy may take: a dead link must not hold the run's
/// result (a journal left open is what `berth recover` closes).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Ends a run's journal in both places. The local copy goes only with the server's: a server copy
/// that could not be removed (the link down) leaves the run open for `berth recover` from here
/// too (and a local copy whose server copy went later is dropped by [`open_runs`]).
pub(crate) async fn close(engine: &Engine, id: &str) {
    let on_server =
        tokio::time::timeout(CLOSE_WAIT, remove_container(engine, &server_name(id), true))
            .await
            .is_ok_and(|r| r.is_ok());
    if on_server {
        remove(id);
    }
}

fn server_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{RUN_JOURNAL_PREFIX}{safe}")
}

/// Runs on this engine that never ended: the server's journals among `all` (every container on
/// it), and the local ones of `server` the server has no copy of. A local one whose server copy
/// is gone was closed from another machine: it is dropped.
pub(crate) fn open_runs(server: &str, all: &[Container]) -> Vec<Entry> {
    let mut runs: Vec<Entry> = all
        .iter()
        .filter_map(|c| c.labels.get(LABEL_RUN_JOURNAL))
        .filter_map(|t| serde_json::from_str::<Entry>(t).ok())
        .collect();
    for e in local_runs(server) {
        if runs.iter().any(|r| r.rollback_id == e.rollback_id) {
            continue;
        }
        if e.on_server {
            remove(&e.rollback_id);
            continue;
        }
        runs.push(e);
    }
    runs
}

/// The local journals of runs on `server` that never ended.
fn local_runs(server: &str) -> Vec<Entry> {
    let Some(d) = dir() else {
        return Vec::new();
    };
    let Ok(files) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    // A journal is a few hundred bytes: anything much larger is not one, and is not read.
    const MAX_JOURNAL_BYTES: u64 = 1 << 20;
    files
        .flatten()
        .filter(|f| f.metadata().is_ok_and(|m| m.len() <= MAX_JOURNAL_BYTES))
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .filter_map(|t| serde_json::from_str::<Entry>(&t).ok())
        .filter(|e| e.server == server)
        .collect()
}

/// The names of replicas whose rollback was cut off (or runs now from another machine), as the
/// engine shows them: a run journal on the server, an old container renamed aside with compose's
/// labels still on, a new one not yet under its name. For the console to say so on connecting.
pub fn cut_off_runs<'a>(all: impl Iterator<Item = &'a Container>) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for c in all {
        if let Some(e) = c
            .labels
            .get(LABEL_RUN_JOURNAL)
            .and_then(|t| serde_json::from_str::<Entry>(t).ok())
        {
            names.extend(e.replicas.into_iter().map(|(name, _)| name));
        } else if let Some(i) = c.name.find(NEW_MARK) {
            names.insert(c.name[..i].to_string());
        } else if let Some(base) = set_aside_base(&c.name)
            && c.labels.keys().any(|k| k.starts_with(COMPOSE_PREFIX))
        {
            names.insert(base.to_string());
        }
    }
    names.into_iter().collect()
}

/// How long a rollback may still be running from another machine: a journal (or a new container
/// not yet under its name) younger than this may be a live run's, not a cut-off one's.
pub const MAY_STILL_RUN_MINUTES: i64 = 10;

/// How long ago the newest run that left a journal or a new container on the server started,
/// when that is recent enough that the run may still be going from elsewhere.
pub fn may_still_run<'a>(
    all: impl Iterator<Item = &'a Container>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::Duration> {
    let started = all
        .filter(|c| c.labels.contains_key(LABEL_RUN_JOURNAL) || c.name.contains(NEW_MARK))
        .filter_map(|c| c.created)
        .max()?;
    let age = now - started;
    (age < chrono::Duration::minutes(MAY_STILL_RUN_MINUTES))
        .then_some(age.max(chrono::Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, labels: &[(&str, &str)]) -> Container {
        let mut c = crate::runbook::tests::container(name, None, None);
        c.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c
    }

    #[test]
    fn cut_off_runs_are_named_by_their_replicas() {
        let journal = serde_json::to_string(&Entry {
            rollback_id: "20261203-ab".into(),
            server: "prod".into(),
            replicas: vec![("shop-web-1".into(), "c0ffee".into())],
            pin: None,
            retag: None,
            on_server: true,
        })
        .unwrap();
        let all = [
            container("berth-run-20261203-ab", &[(LABEL_RUN_JOURNAL, &journal)]),
            container(
                "shop-api-1-berth-old-20261203",
                &[("com.docker.compose.service", "api")],
            ),
            container("shop-db-1-berth-new-20261203", &[]),
            // Kept by a finished run: compose's labels set aside. Not cut off.
            container(
                "shop-cache-1-berth-old-20261203",
                &[("berth.kept.com.docker.compose.service", "cache")],
            ),
            container("shop-web-1", &[("com.docker.compose.service", "web")]),
        ];
        assert_eq!(
            cut_off_runs(all.iter()),
            vec!["shop-api-1", "shop-db-1", "shop-web-1"]
        );
    }
}
