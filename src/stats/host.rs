//! The engine's host: CPU, load, memory and disk. Over SSH with [`crate::ssh::health`]'s command
//! through the kept shell; for the local engine from /proc and statvfs directly. CPU% is the difference of two
//! readings of /proc/stat, so the monitor keeps the previous one.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::RemoteExec;
use crate::engine::Engine;
use crate::ssh::health::{self, CpuTimes, DiskUse, HostHealth};
use crate::target::Endpoint;

/// The host never needs reading more often than this, whatever the stats interval.
pub const MIN_HOST_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostReport {
    pub health: HostHealth,
    /// Busy percent of all CPUs since the previous reading.
    pub cpu_percent: Option<f64>,
    /// "local /proc" or "ssh exec".
    pub source: String,
}

/// Reads this machine's health; `paths` as for [`health::command`].
pub fn read_local(paths: &[&str]) -> Option<HostHealth> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let sep = "--berth--";
    let text = format!(
        "{}\n{sep}\n{}\n{sep}\n\n{sep}\n{}",
        read("/proc/loadavg"),
        read("/proc/meminfo"),
        read("/proc/stat")
    );
    let mut h = health::parse(&text)?;
    h.disks = paths.iter().filter_map(|p| statvfs(p)).collect();
    Some(h)
}

fn statvfs(path: &str) -> Option<DiskUse> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statvfs only writes into the struct we own; the path is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    let total = s.f_blocks as u64 * frsize;
    let available = s.f_bavail as u64 * frsize;
    let used = (s.f_blocks as u64).saturating_sub(s.f_bfree as u64) * frsize;
    // As df: used against what a user can have, rounded up.
    let usable = used + available;
    let used_percent = if usable == 0 {
        0
    } else {
        (used * 100).div_ceil(usable).min(100) as u8
    };
    Some(DiskUse {
        mount: path.to_string(),
        total,
        available,
        used_percent,
    })
}

/// Why the host cannot be read, if it cannot: neither SSH nor this machine for a local socket.
fn out_of_reach(engine: &Engine) -> Option<&'static str> {
    (engine.ssh.is_none() && !matches!(engine.target.endpoint, Endpoint::Unix(_)))
        .then_some("the engine's host is out of reach over tcp")
}

/// One reading of the engine's host; over SSH through `remote` (the kept shell), else from this
/// machine for a local socket.
pub async fn read(
    engine: &Engine,
    remote: Option<&dyn RemoteExec>,
    paths: &[String],
) -> Result<(HostHealth, &'static str), String> {
    if engine.ssh.is_some() {
        let remote = remote.ok_or("the engine's host is read through the kept ssh shell")?;
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let cmd = health::command(&refs);
        let out = remote.exec(&cmd).await?;
        return health::parse_output(&cmd, &out).map(|h| (h, "ssh exec"));
    }
    if let Some(why) = out_of_reach(engine) {
        return Err(why.into());
    }
    let owned: Vec<String> = paths.to_vec();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        read_local(&refs)
    })
    .await
    .map_err(|e| e.to_string())?
    .map(|h| (h, "local /proc"))
    .ok_or_else(|| "cannot read /proc on this machine".into())
}

/// The file systems worth showing: `/` and the engine's data root.
pub async fn disk_paths(engine: &Engine) -> Vec<String> {
    disk_paths_of(engine.docker.info().await.ok().as_ref())
}

/// [`disk_paths`] from an `/info` answer already read.
pub fn disk_paths_of(info: Option<&bollard::models::SystemInfo>) -> Vec<String> {
    let mut paths = vec!["/".to_string()];
    if let Some(root) = info.and_then(|i| i.docker_root_dir.clone())
        && root != "/"
    {
        paths.push(root);
    }
    paths
}

/// Reads the host every `interval` (at least [`MIN_HOST_INTERVAL`]) until cancelled.
pub async fn run_monitor(
    engine: Engine,
    remote: Option<Arc<dyn RemoteExec>>,
    mut interval: watch::Receiver<Duration>,
    tx: mpsc::Sender<Result<HostReport, String>>,
    cancel: CancellationToken,
) {
    if let Some(why) = out_of_reach(&engine) {
        let _ = tx.send(Err(why.into())).await;
        return;
    }
    let paths = tokio::select! {
        _ = cancel.cancelled() => return,
        p = disk_paths(&engine) => p,
    };
    let mut previous: Option<CpuTimes> = None;
    loop {
        let reading = tokio::select! {
            _ = cancel.cancelled() => return,
            r = read(&engine, remote.as_deref(), &paths) => r,
        };
        let report = reading.map(|(health, source)| {
            let cpu_percent = match (previous, health.cpu) {
                (Some(a), Some(b)) => b.percent_since(&a),
                _ => None,
            };
            previous = health.cpu;
            HostReport {
                health,
                cpu_percent,
                source: source.into(),
            }
        });
        if tx.send(report).await.is_err() {
            return;
        }
        // A new interval counts from this reading: CPU% needs a real span between two.
        let read_at = tokio::time::Instant::now();
        let mut next = read_at + (*interval.borrow_and_update()).max(MIN_HOST_INTERVAL);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => break,
                changed = interval.changed() => {
                    if changed.is_err() { return }
                    next = read_at + (*interval.borrow_and_update()).max(MIN_HOST_INTERVAL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_machine() {
        let h = super::read_local(&["/"]).expect("/proc is readable");
        assert!(h.mem_total > 0 && h.mem_available <= h.mem_total);
        assert!(h.cpus >= 1);
        assert!(h.cpu.is_some());
        assert_eq!(h.disks.len(), 1);
        assert!(h.disks[0].total > 0 && h.disks[0].used_percent <= 100);
        assert!(
            super::read_local(&["/no/such/dir"])
                .unwrap()
                .disks
                .is_empty()
        );
    }
}
