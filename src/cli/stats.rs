//! `berth stats` and `berth df`: the console's numbers as a table or JSON, for scripts.

use std::collections::BTreeMap;
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

/// What `berth stats SERVICE|STACK` reads: the running tasks on this engine's own node (the
/// manager's), and those on other nodes the config lists as servers, by server.
struct SwarmTasks<'a> {
    here: Vec<&'a Container>,
    /// Server → the containers of its node's running tasks, with the task's label.
    elsewhere: BTreeMap<String, Vec<(String, String)>>,
}

/// The running tasks of swarm services or stacks named: on this node, or on a node the config
/// lists as a server; the tasks on other nodes are named on stderr with why they have no figures.
async fn swarm_tasks<'a>(
    ctx: &Context,
    target: &crate::target::Target,
    engine: &crate::engine::Engine,
    containers: &'a [Container],
    names: &[String],
    not_found: String,
) -> color_eyre::Result<SwarmTasks<'a>> {
    if !crate::swarm::detect(engine).await?.is_manager() {
        return Err(color_eyre::eyre::eyre!(not_found));
    }
    let snapshot = crate::swarm::snapshot(engine).await?;
    let servers =
        crate::swarm::reach::remote_running_containers(&snapshot, &ctx.config, &target.name);
    let mut shown = SwarmTasks {
        here: Vec::new(),
        elsewhere: BTreeMap::new(),
    };
    let mut unread: Vec<String> = Vec::new();
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
                    shown.here.extend(found);
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
                let id = t.container_id.as_deref().unwrap_or_default();
                let local = containers
                    .iter()
                    .find(|c| !id.is_empty() && c.id == id && c.state.is_up());
                if let Some(c) = local {
                    if !shown.here.iter().any(|x| x.id == c.id) {
                        shown.here.push(c);
                    }
                } else if let Some(server) = crate::swarm::reach::server_of_task(&servers, id) {
                    let tasks = shown.elsewhere.entry(server.to_string()).or_default();
                    if !tasks.iter().any(|(_, c)| c == id) {
                        tasks.push((t.label(), id.to_string()));
                    }
                } else {
                    unread.push(format!("{} on {}", t.label(), t.node));
                }
            }
        }
    }
    if !unread.is_empty() {
        eprintln!(
            "berth: — for {}: their node is not the one this session reaches and no server in the config is that node (add it as [servers.HOSTNAME], or name it with -s)",
            printable(&unread.join(", "))
        );
    }
    Ok(shown)
}

/// One server's collector with the containers it reads there, and their names.
struct Reader {
    collector: Collector,
    store: StatsStore,
    /// (name, container id)
    shown: Vec<(String, String)>,
}

impl Reader {
    async fn sample(&mut self) {
        let ids: Vec<String> = self.shown.iter().map(|(_, id)| id.clone()).collect();
        self.store.ingest(&self.collector.sample(&ids).await);
    }
}

/// A collector on another node's server, or why it cannot be read (said on stderr; its tasks
/// are left out).
async fn node_reader(
    ctx: &Context,
    server: &str,
    tasks: Vec<(String, String)>,
    prefer: Preference,
) -> Option<Reader> {
    let engine = match super::swarm::connect_node(ctx, server).await {
        Ok(engine) => engine,
        Err(why) => {
            let labels: Vec<&str> = tasks.iter().map(|(l, _)| l.as_str()).collect();
            eprintln!(
                "berth: — for {}: their node is server {server}, which cannot be read: {}",
                printable(&labels.join(", ")),
                printable(&why)
            );
            return None;
        }
    };
    // Named as the node's engine names the container, so the rows look like the local ones.
    let names = engine.containers().await.unwrap_or_default();
    let shown = tasks
        .into_iter()
        .map(|(label, id)| {
            let name = names
                .iter()
                .find(|c| c.id == id)
                .map_or(label, |c| c.name.clone());
            (format!("{name} @{server}"), id)
        })
        .collect();
    let remote = crate::remote::SshShell::for_engine(&engine);
    Some(Reader {
        collector: Collector::new(&engine, remote, prefer).await,
        store: StatsStore::new(GAP),
        shown,
    })
}

fn entry<'a>(name: &'a str, id: &'a str, store: &StatsStore) -> StatsEntry<'a> {
    let p = store.latest(id).copied().unwrap_or_default();
    StatsEntry {
        name,
        id,
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
}

pub async fn run_stats(ctx: &Context, args: &StatsArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let containers = engine.containers().await?;
    let prefer = args.method.unwrap_or(ctx.config.stats.method);
    let (shown, elsewhere) = match chosen(&containers, &args.names) {
        Ok(shown) => (shown, BTreeMap::new()),
        // Not a container here: the tasks of a swarm service or stack, on a manager.
        Err(not_found) => {
            let tasks =
                swarm_tasks(ctx, &target, &engine, &containers, &args.names, not_found).await?;
            (tasks.here, tasks.elsewhere)
        }
    };
    let mut readers = Vec::new();
    let on_other_nodes = !elsewhere.is_empty();
    for (server, tasks) in elsewhere {
        readers.extend(node_reader(ctx, &server, tasks, prefer).await);
    }
    if shown.is_empty() && readers.is_empty() {
        return Err(color_eyre::eyre::eyre!(if on_other_nodes {
            "no running task could be read: their nodes' servers did not answer (see above)"
        } else {
            "no running containers"
        }));
    }
    let ids: Vec<String> = shown.iter().map(|c| c.id.clone()).collect();
    let remote = crate::remote::SshShell::for_engine(&engine);
    let mut collector = Collector::new(&engine, remote, prefer).await;
    let mut store = StatsStore::new(GAP);
    // Two readings a gap apart make the rates; every server's in the same gap.
    for first in [true, false] {
        if !first {
            tokio::time::sleep(GAP).await;
        }
        let here = collector.sample(&ids);
        let there = futures::future::join_all(readers.iter_mut().map(|r| r.sample()));
        let (batch, _) = tokio::join!(here, there);
        store.ingest(&batch);
    }
    let method = collector.method().label();
    let mut entries: Vec<StatsEntry> = shown
        .iter()
        .map(|c| entry(&c.name, &c.id, &store))
        .collect();
    for r in &readers {
        entries.extend(r.shown.iter().map(|(name, id)| entry(name, id, &r.store)));
    }
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
            fit_name(&printable(e.name), 32),
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

/// The name cut to `max`, keeping a task's ` @SERVER` whole: a swarm task's container name is
/// long, and the server is what tells its row from the manager's own.
fn fit_name(name: &str, max: usize) -> String {
    match name.rsplit_once(" @") {
        Some((base, server)) if name.chars().count() > max => {
            let suffix = format!(" @{server}");
            let room = max.saturating_sub(suffix.chars().count());
            if room < 4 {
                return truncate(name, max);
            }
            format!("{}{suffix}", truncate(base, room))
        }
        _ => truncate(name, max),
    }
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
    fn a_task_on_another_node_keeps_its_server_in_a_cut_name() {
        let long = "flstk_web.2.x2kq8r7m1n0p3s5t7v9w1y3z5 @fl-wkr";
        let fitted = fit_name(long, 32);
        assert!(fitted.ends_with(" @fl-wkr"), "{fitted}");
        assert!(fitted.chars().count() <= 32, "{fitted}");
        assert!(fitted.starts_with("flstk_web.2."), "{fitted}");
        assert_eq!(fit_name("web @a", 32), "web @a");
        assert_eq!(fit_name("shop-web-1", 32), "shop-web-1");
    }

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
