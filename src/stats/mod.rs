//! Live container stats, collected only for what is on screen and at the user's pace. Where the
//! server allows it the cgroup counters of all wanted containers are read in one go (one read-only
//! exec over SSH, file reads for the local engine) instead of one API stream per container, which is
//! what makes dockerd and containerd busy; otherwise the API one-shot stats are used. No terminal here.

pub mod api;
pub mod cgroup;
pub mod df;
pub mod host;
pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Preference;
use crate::engine::Engine;
use crate::target::Endpoint;
pub use cgroup::CgroupLayout;
pub use store::{Point, StatsStore};

/// Containers inspected (for their pid) or asked for API stats at the same time.
const PARALLEL: usize = 4;

/// Raw counters of one container at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub id: String,
    /// On a clock of the source (the server's uptime, or this process's monotonic clock): only
    /// differences between samples of the same source mean anything.
    pub at: Duration,
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_ns: Option<u64>,
    pub mem_used: Option<u64>,
    pub mem_limit: Option<u64>,
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
    pub blk_read: Option<u64>,
    pub blk_write: Option<u64>,
    pub pids: Option<u64>,
}

/// How stats are read, shown in the stats pane and the host view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Cgroup counters; `detail` e.g. "cgroup v2, one ssh exec per interval".
    Cgroup { detail: String },
    /// The engine's one-shot stats, one request per container; `reason` says why not cgroups.
    Api { reason: String },
}

impl Method {
    pub fn label(&self) -> String {
        match self {
            Method::Cgroup { detail } => detail.clone(),
            Method::Api { reason } => format!("engine API one-shot ({reason})"),
        }
    }
}

/// One interval's readings.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsBatch {
    pub method: Method,
    pub samples: Vec<Sample>,
}

/// Runs a read-only shell command on the server and returns its standard output. Defined here so
/// the stats code does not depend on the SSH module; `crate::remote` implements it for SSH.
pub trait RemoteExec: Send + Sync {
    fn exec<'a>(
        &'a self,
        cmd: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

enum Source {
    Local(CgroupLayout),
    Remote(CgroupLayout, Arc<dyn RemoteExec>),
    Api,
}

/// Reads stats of the containers asked for, by the cheapest method the server allows.
pub struct Collector {
    engine: Engine,
    source: Source,
    method: Method,
    /// Init pid per container, for its network counters; learnt by inspecting once.
    pids: HashMap<String, u32>,
    /// A cgroup read has worked once: later failures are containers going away, not the method.
    proven: bool,
    /// The host's memory: a limit at or above it is no limit.
    mem_total: Option<u64>,
    /// Container and pid whose network counters stayed unreadable after a fresh inspect (e.g.
    /// /proc mounted with hidepid): not inspected again for them.
    net_hidden: std::collections::HashSet<(String, u32)>,
}

impl Collector {
    /// Picks the method: cgroups over `remote` (SSH) or the local file system when the engine is
    /// on this machine, else the API. `/info` says where the cgroups are.
    pub async fn new(
        engine: &Engine,
        remote: Option<Arc<dyn RemoteExec>>,
        prefer: Preference,
    ) -> Collector {
        let info = if prefer == Preference::Api {
            Err("api method chosen".to_string())
        } else {
            engine
                .docker
                .info()
                .await
                .map_err(|e| format!("/info failed: {e}"))
        };
        let mem_total = info
            .as_ref()
            .ok()
            .and_then(|i| i.mem_total)
            .and_then(|m| u64::try_from(m).ok());
        let (source, method) = match info.and_then(|i| choose(engine, remote, i)) {
            Ok((source, detail)) => (source, Method::Cgroup { detail }),
            Err(reason) => (Source::Api, Method::Api { reason }),
        };
        Collector {
            engine: engine.clone(),
            source,
            method,
            pids: HashMap::new(),
            proven: false,
            mem_total,
            net_hidden: Default::default(),
        }
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// One reading of `ids` (running containers). Containers that cannot be read are left out.
    pub async fn sample(&mut self, ids: &[String]) -> StatsBatch {
        self.pids.retain(|id, _| ids.contains(id));
        if ids.is_empty() {
            return self.batch(vec![]);
        }
        let layout = match &self.source {
            Source::Local(l) | Source::Remote(l, _) => Some(l.clone()),
            Source::Api => None,
        };
        let Some(layout) = layout else {
            let samples = api::sample_all(&self.engine, ids, PARALLEL).await;
            return self.batch(samples);
        };
        self.learn_pids(ids).await;
        let targets: Vec<(String, u32)> = ids
            .iter()
            .filter_map(|id| self.pids.get(id).map(|pid| (id.clone(), *pid)))
            .filter(|(_, pid)| *pid > 0)
            .collect();
        let text = match &self.source {
            Source::Local(_) => {
                let t = targets.clone();
                let l = layout.clone();
                tokio::task::spawn_blocking(move || l.read_local(&t))
                    .await
                    .map_err(|e| e.to_string())
            }
            Source::Remote(_, remote) => remote.exec(&layout.script(&targets)).await,
            Source::Api => unreachable!("handled above"),
        };
        let dump = match text {
            Ok(t) => cgroup::parse_dump(&t, &layout, &targets, self.mem_total),
            Err(e) if !self.proven => {
                return self.fall_back(ids, format!("exec failed: {e}")).await;
            }
            Err(_) => cgroup::Dump::default(),
        };
        if dump.samples.is_empty() && !targets.is_empty() && !self.proven {
            let reason = format!(
                "cannot read cgroup files under {} (cgroup {}, {} driver)",
                layout.root,
                if layout.v2 { "v2" } else { "v1" },
                if layout.systemd {
                    "systemd"
                } else {
                    "cgroupfs"
                }
            );
            return self.fall_back(ids, reason).await;
        }
        if !dump.samples.is_empty() {
            self.proven = true;
        }
        // Unreadable: stopped or restarted; a missing network file: restarted with a new pid.
        for id in &dump.unreadable {
            self.pids.remove(id);
        }
        for s in &dump.samples {
            let Some(pid) = self.pids.get(&s.id).copied() else {
                continue;
            };
            if s.net_rx.is_none() && self.net_hidden.insert((s.id.clone(), pid)) {
                self.pids.remove(&s.id);
            }
        }
        self.net_hidden.retain(|(id, _)| ids.contains(id));
        let at = dump.uptime.unwrap_or_else(api::now);
        let samples = dump
            .samples
            .into_iter()
            .map(|mut s| {
                s.at = at;
                s
            })
            .collect();
        self.batch(samples)
    }

    async fn fall_back(&mut self, ids: &[String], reason: String) -> StatsBatch {
        self.source = Source::Api;
        self.method = Method::Api { reason };
        let samples = api::sample_all(&self.engine, ids, PARALLEL).await;
        self.batch(samples)
    }

    fn batch(&self, mut samples: Vec<Sample>) -> StatsBatch {
        // The API reports the host's memory as the limit of a container without one: no limit,
        // as the cgroup reading says, so MEM% is "—" rather than a share of the host.
        if let Some(total) = self.mem_total {
            for s in &mut samples {
                if s.mem_limit.is_some_and(|l| l >= total) {
                    s.mem_limit = None;
                }
            }
        }
        StatsBatch {
            method: self.method.clone(),
            samples,
        }
    }

    async fn learn_pids(&mut self, ids: &[String]) {
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !self.pids.contains_key(*id))
            .cloned()
            .collect();
        let docker = &self.engine.docker;
        let found: Vec<(String, u32)> = futures::stream::iter(unknown)
            .map(|id| async move {
                let pid = docker
                    .inspect_container(&id, None::<InspectContainerOptions>)
                    .await
                    .ok()
                    .and_then(|i| i.state?.pid)
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0);
                (id, pid)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        self.pids.extend(found);
    }
}

fn choose(
    engine: &Engine,
    remote: Option<Arc<dyn RemoteExec>>,
    info: bollard::models::SystemInfo,
) -> Result<(Source, String), String> {
    let version = info
        .cgroup_version
        .map(|v| v.to_string())
        .unwrap_or_default();
    let driver = info
        .cgroup_driver
        .map(|v| v.to_string())
        .unwrap_or_default();
    if !matches!(version.as_str(), "1" | "2") || !matches!(driver.as_str(), "systemd" | "cgroupfs")
    {
        return Err(format!(
            "engine reports cgroup version {version:?}, driver {driver:?}"
        ));
    }
    let rootless = info
        .security_options
        .unwrap_or_default()
        .iter()
        .any(|o| o.contains("rootless"));
    if rootless {
        return Err("rootless engine: its cgroups live under the user's slice".into());
    }
    let layout = CgroupLayout::new(&version, &driver);
    let what = format!("cgroup v{version} ({driver})");
    if let Some(remote) = remote {
        return Ok((
            Source::Remote(layout, remote),
            format!("{what}, one read per interval in a kept ssh shell"),
        ));
    }
    match &engine.target.endpoint {
        Endpoint::Unix(_) if std::path::Path::new(&layout.root).is_dir() => Ok((
            Source::Local(layout),
            format!("{what}, read from /sys/fs/cgroup"),
        )),
        Endpoint::Unix(_) => Err("no /sys/fs/cgroup on this machine".into()),
        _ => Err("remote engine without ssh: its cgroup files are out of reach".into()),
    }
}

/// Reads `wanted` every `interval` until cancelled and sends each batch. Nothing wanted, nothing
/// read; newly wanted containers are read soon instead of at the next tick, at most twice a second.
pub async fn run(
    mut collector: Collector,
    mut wanted: watch::Receiver<Vec<String>>,
    mut interval: watch::Receiver<Duration>,
    tx: mpsc::Sender<StatsBatch>,
    cancel: CancellationToken,
) {
    loop {
        let ids = wanted.borrow_and_update().clone();
        if !ids.is_empty() {
            let batch = tokio::select! {
                _ = cancel.cancelled() => return,
                b = collector.sample(&ids) => b,
            };
            if tx.send(batch).await.is_err() {
                return;
            }
        }
        let read_before = ids;
        let started = tokio::time::Instant::now();
        let mut next_tick = started + *interval.borrow_and_update();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next_tick) => break,
                changed = interval.changed() => {
                    if changed.is_err() { return }
                    // The new pace counts from the last reading: reading at once would make a
                    // rate over a few milliseconds, all noise.
                    next_tick = started + *interval.borrow_and_update();
                }
                changed = wanted.changed() => {
                    if changed.is_err() { return }
                    let now_wanted = wanted.borrow().clone();
                    if now_wanted.iter().any(|id| !read_before.contains(id)) {
                        let soon = started + Duration::from_millis(500);
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep_until(soon.min(next_tick)) => {}
                        }
                        break;
                    }
                }
            }
        }
    }
}
