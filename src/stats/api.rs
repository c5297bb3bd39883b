//! The fallback: the engine's own stats, one one-shot request per container (no stream is held
//! open, and `one-shot` spares the daemon its second reading for `precpu`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures::StreamExt;

use super::Sample;
use crate::engine::Engine;

/// This process's monotonic clock, as a duration since its first use.
pub fn now() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// One reading of each container, `parallel` requests at a time; failures are left out.
pub async fn sample_all(engine: &Engine, ids: &[String], parallel: usize) -> Vec<Sample> {
    let docker = &engine.docker;
    futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let options = StatsOptions {
                stream: false,
                one_shot: true,
            };
            let mut stream = docker.stats(&id, Some(options));
            let response = stream.next().await?.ok()?;
            from_response(&id, &response, now())
        })
        .buffer_unordered(parallel.max(1))
        .filter_map(|s| async move { s })
        .collect()
        .await
}

/// The counters of an API stats answer; `None` for a container that is not running.
pub fn from_response(id: &str, r: &ContainerStatsResponse, at: Duration) -> Option<Sample> {
    let cpu_ns = r.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage?;
    let pids = r.pids_stats.as_ref().and_then(|p| p.current);
    if cpu_ns == 0 && pids.unwrap_or(0) == 0 {
        return None;
    }
    let mem = r.memory_stats.as_ref();
    let mem_used = mem.and_then(|m| {
        let usage = m.usage?;
        let stats = m.stats.as_ref();
        // As `docker stats`: v1 reports total_inactive_file, v2 inactive_file.
        let inactive = stats
            .and_then(|s| {
                s.get("total_inactive_file")
                    .or_else(|| s.get("inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        Some(super::cgroup::memory_used(usage, inactive))
    });
    let (net_rx, net_tx) = r
        .networks
        .as_ref()
        .map(|n| {
            n.values().fold((0u64, 0u64), |(rx, tx), v| {
                (
                    rx.saturating_add(v.rx_bytes.unwrap_or(0)),
                    tx.saturating_add(v.tx_bytes.unwrap_or(0)),
                )
            })
        })
        .unzip();
    let (blk_read, blk_write) = r
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .map(|entries| {
            entries.iter().fold((0u64, 0u64), |(rd, wr), e| {
                let v = e.value.unwrap_or(0);
                match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("read") => (rd.saturating_add(v), wr),
                    Some("write") => (rd, wr.saturating_add(v)),
                    _ => (rd, wr),
                }
            })
        })
        .unzip();
    Some(Sample {
        id: id.to_string(),
        at,
        cpu_ns: Some(cpu_ns),
        mem_used,
        mem_limit: mem.and_then(|m| m.limit),
        net_rx,
        net_tx,
        blk_read,
        blk_write,
        pids,
    })
}
