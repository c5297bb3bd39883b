//! `berth stats` and `berth df`: the console's numbers as a table or JSON, for scripts.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::{DfArgs, StatsArgs};
use crate::config::Preference;
use crate::context::Context;
use crate::engine::model::Container;
use crate::format::{bytes, printable, truncate};
use crate::format::{compact_bytes, pair, percent};
use crate::stats::df::{DiskUsage, UsageRow};
use crate::stats::{Collector, StatsStore};

/// Time between the two readings that make a rate.
const GAP: Duration = Duration::from_secs(1);

#[derive(Serialize)]
struct StatsEntry<'a> {
    name: &'a str,
    id: &'a str,
    cpu_percent: Option<f64>,
    mem_used: Option<u64>,
    mem_limit: Option<u64>,
    mem_percent: Option<f64>,
    net_rx_per_s: Option<f64>,
    net_tx_per_s: Option<f64>,
    block_read_per_s: Option<f64>,
    block_write_per_s: Option<f64>,
    pids: Option<u64>,
}

#[derive(Serialize)]
struct StatsOutput<'a> {
    method: String,
    containers: Vec<StatsEntry<'a>>,
}

/// Running containers each of `names` means, as `berth logs NAME` picks them (all when empty).
fn chosen<'a>(containers: &'a [Container], names: &[String]) -> Result<Vec<&'a Container>, String> {
    let running: Vec<&Container> = containers.iter().filter(|c| c.state.is_up()).collect();
    if names.is_empty() {
        return Ok(running);
    }
    let mut shown: Vec<&Container> = Vec::new();
    for n in names {
        let found = crate::logs::containers_named(&running, n)
            .map_err(|e| format!("no running container matches {n}: {e}"))?;
        for c in found {
            if !shown.iter().any(|s| s.id == c.id) {
                shown.push(c);
            }
        }
    }
    Ok(shown)
}

/// The running containers of swarm services or stacks that run on this engine's own node (the
/// manager's); tasks on other nodes are named on stderr with why they have no figures.
async fn swarm_tasks<'a>(
    engine: &crate::engine::Engine,
    containers: &'a [Container],
    names: &[String],
    not_found: String,
) -> color_eyre::Result<Vec<&'a Container>> {
    if !crate::swarm::detect(engine).await?.is_manager() {
        return Err(color_eyre::eyre::eyre!(not_found));
    }
    let snapshot = crate::swarm::snapshot(engine).await?;
    let mut shown: Vec<&Container> = Vec::new();
    let mut elsewhere: Vec<String> = Vec::new();
    for n in names {
        let services = match snapshot.find(n) {
            Some(crate::swarm::Named::Service(s)) => vec![s],
            Some(crate::swarm::Named::Stack(_, m)) => m,
            None => match crate::logs::containers_named(
                &containers
                    .iter()
                    .filter(|c| c.state.is_up())
                    .collect::<Vec<_>>(),
                n,
            ) {
                Ok(found) => {
                    shown.extend(found);
                    continue;
                }
                Err(_) => {
                    return Err(color_eyre::eyre::eyre!(
                        "no running container, service or stack named '{}'; list them with `berth ps` and `berth services`",
                        printable(n)
                    ));
                }
            },
        };
        for s in services {
            for t in snapshot
                .tasks_of(&s.id)
                .into_iter()
                .filter(|t| t.is_running())
            {
                let local = t
                    .container_id
                    .as_deref()
                    .and_then(|id| containers.iter().find(|c| c.id == id && c.state.is_up()));
                match local {
                    Some(c) if !shown.iter().any(|x| x.id == c.id) => shown.push(c),
                    Some(_) => {}
                    None => elsewhere.push(format!("{} on {}", t.label(), t.node)),
                }
            }
        }
    }
    if !elsewhere.is_empty() {
        eprintln!(
            "berth: — for {}: their node is not the one this session reaches (name it with -s to read it there)",
            printable(&elsewhere.join(", "))
        );
    }
    Ok(shown)
}

pub async fn run_stats(ctx: &Context, args: &StatsArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let containers = engine.containers().await?;
    let shown = match chosen(&containers, &args.names) {
        Ok(shown) => shown,
        // Not a container here: the local tasks of a swarm service or stack, on a manager.
        Err(not_found) => swarm_tasks(&engine, &containers, &args.names, not_found).await?,
    };
    if shown.is_empty() {
        return Err(color_eyre::eyre::eyre!("no running containers"));
    }
    let ids: Vec<String> = shown.iter().map(|c| c.id.clone()).collect();
    let remote = crate::remote::SshShell::for_engine(&engine);
    let prefer = args.method.unwrap_or(ctx.config.stats.method);
    let mut collector = Collector::new(&engine, remote, prefer).await;
    let mut store = StatsStore::new(GAP);
    store.ingest(&collector.sample(&ids).await);
    tokio::time::sleep(GAP).await;
    store.ingest(&collector.sample(&ids).await);
    let method = collector.method().label();
    let entries: Vec<StatsEntry> = shown
        .iter()
        .map(|c| {
            let p = store.latest(&c.id).copied().unwrap_or_default();
            StatsEntry {
                name: &c.name,
                id: &c.id,
                cpu_percent: p.cpu,
                mem_used: p.mem_used,
                mem_limit: p.mem_limit,
                mem_percent: p.mem_percent(),
                net_rx_per_s: p.net_rx,
                net_tx_per_s: p.net_tx,
                block_read_per_s: p.blk_read,
                block_write_per_s: p.blk_write,
                pids: p.pids,
            }
        })
        .collect();
    let text = if args.json {
        serde_json::to_string_pretty(&StatsOutput {
            method,
            containers: entries,
        })
        .unwrap_or_default()
            + "\n"
    } else {
        stats_table(&entries, &method)
    };
    print(&text)
}

fn stats_table(entries: &[StatsEntry], method: &str) -> String {
    let dash = || "—".to_string();
    let mut s = format!(
        "{:<32} {:>7} {:>17} {:>6} {:>15} {:>15} {:>5}\n",
        "NAME", "CPU%", "MEM / LIMIT", "MEM%", "NET ↓↑/s", "BLOCK r w/s", "PIDS"
    );
    for e in entries {
        let mem = match (e.mem_used, e.mem_limit) {
            (Some(u), Some(l)) => format!("{} / {}", compact_bytes(u), compact_bytes(l)),
            (Some(u), None) => compact_bytes(u),
            _ => dash(),
        };
        s.push_str(&format!(
            "{:<32} {:>7} {:>17} {:>6} {:>15} {:>15} {:>5}\n",
            truncate(&printable(e.name), 32),
            e.cpu_percent.map(percent).unwrap_or_else(dash),
            mem,
            e.mem_percent
                .map(|p| format!("{p:.1}%"))
                .unwrap_or_else(dash),
            pair(e.net_rx_per_s, e.net_tx_per_s),
            pair(e.block_read_per_s, e.block_write_per_s),
            e.pids.map(|n| n.to_string()).unwrap_or_else(dash),
        ));
    }
    s.push_str(&format!(
        "read by {method}; rates over {} s\n",
        GAP.as_secs()
    ));
    s
}

#[derive(Serialize)]
struct DfRow<'a> {
    kind: &'a str,
    total: u64,
    active: u64,
    size: u64,
    reclaimable: u64,
}

pub async fn run_df(ctx: &Context, args: &DfArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let usage = crate::stats::df::disk_usage(&engine)
        .await
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let text = if args.json {
        let rows: Vec<DfRow> = usage
            .rows()
            .iter()
            .map(|(kind, r)| DfRow {
                kind,
                total: r.total,
                active: r.active,
                size: r.size,
                reclaimable: r.reclaimable,
            })
            .collect();
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    } else {
        df_table(&usage)
    };
    print(&text)
}

/// The table `docker system df` prints.
pub fn df_table(usage: &DiskUsage) -> String {
    let mut s = format!(
        "{:<15} {:>6} {:>7} {:>12} {:>20}\n",
        "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"
    );
    for (kind, row) in usage.rows() {
        let share = row.reclaimable_percent();
        let UsageRow {
            total,
            active,
            size,
            reclaimable,
        } = row;
        s.push_str(&format!(
            "{kind:<15} {total:>6} {active:>7} {:>12} {:>20}\n",
            bytes(size),
            format!("{} ({share:.0}%)", bytes(reclaimable))
        ));
    }
    s
}

/// Writes a command's output: JSON with C1 controls escaped, text with every line cleaned (names and
/// sizes come from the server).
fn print(text: &str) -> color_eyre::Result<ExitCode> {
    let text = if text.starts_with(['[', '{']) {
        crate::logs::sanitize::json_safe(text)
    } else {
        crate::logs::sanitize::plain_lines(text)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`berth stats | head`) is not an error worth a message.
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

impl Preference {
    pub fn parse(text: &str) -> Result<Preference, String> {
        match text {
            "auto" => Ok(Preference::Auto),
            "cgroup" => Ok(Preference::Cgroup),
            "api" => Ok(Preference::Api),
            other => Err(format!(
                "unknown stats method {other:?}: auto, cgroup or api"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_table_reads_like_docker() {
        let usage = DiskUsage {
            images: UsageRow {
                total: 4,
                active: 2,
                size: 2048,
                reclaimable: 1024,
            },
            ..Default::default()
        };
        let t = df_table(&usage);
        assert!(t.starts_with("TYPE"));
        assert!(t.contains("Images"));
        assert!(t.contains("1.0 KiB (50%)"), "{t}");
        assert!(t.contains("Build cache"));
        assert_eq!(Preference::parse("api"), Ok(Preference::Api));
        assert!(Preference::parse("x").is_err());
    }
}
