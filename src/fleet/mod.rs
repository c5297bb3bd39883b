//! The fleet: every configured server probed at once, with a bound on how many connect together,
//! each summed up in one row (reachable, engine, containers in trouble, host load, berth's last
//! change there). Shared by `berth fleet` and the console; knows nothing of the terminal.

pub mod find;
pub mod group;
pub mod summary;
mod watch;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::engine::Engine;
use crate::runbook::audit::AuditEntry;
use crate::ssh::SshOptions;
use crate::ssh::health::CpuTimes;
use crate::stats::host;
use crate::target::Target;

pub use summary::ContainerSummary;
pub use watch::{watch, watch_each};

/// The host's CPU% is the difference of two readings at least this far apart.
const CPU_WINDOW: Duration = Duration::from_millis(500);

/// One server as the fleet shows it. Text fields hold what the server said, unsanitised: the
/// front ends clean them (`format::printable`, `json_safe`) on the way out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerRow {
    pub server: String,
    pub environment: Option<String>,
    /// `None` while the server has not answered yet.
    pub reachable: Option<bool>,
    /// Why it is unreachable, short: `host key changed`, `auth refused`, `timeout`, `refused`.
    pub error: Option<String>,
    /// The whole error, for a detail line.
    pub error_detail: Option<String>,
    /// One SSH round trip (the keepalive's own answer time, never the wait for a reconnect).
    pub rtt_ms: Option<u64>,
    pub engine: Option<String>,
    /// The engine's ID (`/info`): server entries that reach one engine share it, and the fleet
    /// counts that engine's containers once.
    pub engine_id: Option<String>,
    /// When the server was last read (its listing, an event, its host): what the row shows is
    /// from then. With the link lost, the figures are that old (see [`ServerRow::stale`]).
    #[serde(skip)]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub containers: ContainerSummary,
    pub cpu_percent: Option<f64>,
    pub mem_percent: Option<f64>,
    /// Use of the file system holding the Docker root.
    pub disk_percent: Option<u8>,
    /// The last change berth made there: `restart shop/web ok · 2026-12-02 03:10`.
    pub last_change: Option<String>,
    /// The containers as last listed, for searching across servers (`find`).
    #[serde(skip)]
    pub listing: std::sync::Arc<Vec<crate::engine::model::Container>>,
}

impl ServerRow {
    pub fn pending(target: &Target) -> ServerRow {
        ServerRow {
            server: target.name.clone(),
            environment: target.environment.clone(),
            ..Default::default()
        }
    }

    /// Whether the figures shown are left over from a reading before the link was lost.
    pub fn stale(&self) -> bool {
        self.reachable == Some(false) && self.read_at.is_some()
    }

    /// How long ago the server was last read, while its figures are stale: `1m`, `45s`.
    pub fn stale_for(&self, now: DateTime<Utc>) -> Option<String> {
        let at = self.read_at.filter(|_| self.stale())?;
        Some(crate::format::duration((now - at).num_seconds()))
    }

    /// A new reading that failed keeps what the last good one showed, marked stale by its time,
    /// instead of blanking the row: the operator sees what was there and how old it is.
    pub fn keep_stale_from(&mut self, old: &ServerRow) {
        if self.reachable != Some(false) || self.read_at.is_some() || old.read_at.is_none() {
            return;
        }
        self.read_at = old.read_at;
        self.rtt_ms = old.rtt_ms;
        self.engine = self.engine.take().or_else(|| old.engine.clone());
        self.engine_id = self.engine_id.take().or_else(|| old.engine_id.clone());
        self.containers = old.containers.clone();
        self.cpu_percent = old.cpu_percent;
        self.mem_percent = old.mem_percent;
        self.disk_percent = old.disk_percent;
    }

    /// Trouble first: unreachable, then unhealthy, crash-looping, recently failed, waiting, fine.
    pub fn trouble_rank(&self) -> u8 {
        match self.reachable {
            Some(false) => 0,
            None => 5,
            Some(true) if self.containers.unhealthy > 0 => 1,
            Some(true) if self.containers.restarting > 0 => 2,
            Some(true) if self.containers.exited_recently > 0 => 3,
            Some(true) => 4,
        }
    }

    /// Whether `berth fleet` should fail: unreachable, or something unhealthy.
    pub fn is_failing(&self) -> bool {
        self.reachable != Some(true) || self.containers.unhealthy > 0
    }

    pub fn is_production(&self) -> bool {
        self.environment
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("production") || e.eq_ignore_ascii_case("prod"))
    }
}

/// A group of servers summed up: how many answered and what their containers add up to.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupRow {
    pub group: String,
    pub servers: Vec<String>,
    /// Members that answered and are reachable.
    pub reachable: usize,
    /// Members that answered and are not.
    pub unreachable: usize,
    #[serde(flatten)]
    pub containers: ContainerSummary,
}

impl GroupRow {
    /// `groups` as (name, members); members with no row yet count as neither reachable nor not.
    pub fn of(groups: &[(String, Vec<String>)], rows: &[ServerRow]) -> Vec<GroupRow> {
        groups
            .iter()
            .map(|(name, members)| {
                let mut g = GroupRow {
                    group: name.clone(),
                    servers: members.clone(),
                    ..Default::default()
                };
                let mut counted: Vec<&str> = Vec::new();
                for r in rows.iter().filter(|r| members.contains(&r.server)) {
                    match r.reachable {
                        Some(true) => {
                            g.reachable += 1;
                            // Two entries reaching one engine: its containers once.
                            if let Some(id) = r.engine_id.as_deref() {
                                if counted.contains(&id) {
                                    continue;
                                }
                                counted.push(id);
                            }
                            let c = &r.containers;
                            g.containers.running += c.running;
                            g.containers.total += c.total;
                            g.containers.unhealthy += c.unhealthy;
                            g.containers.restarting += c.restarting;
                            g.containers.exited_recently += c.exited_recently;
                        }
                        Some(false) => g.unreachable += 1,
                        None => {}
                    }
                }
                g
            })
            .collect()
    }

    pub fn is_failing(&self) -> bool {
        self.unreachable > 0 || self.containers.unhealthy > 0
    }
}

/// The reachable rows with each engine once: server entries that reach the same engine (the
/// same engine ID) are one engine, counted by the first of them. Sum containers over these.
pub fn distinct_engines(rows: &[ServerRow]) -> Vec<&ServerRow> {
    let mut seen: Vec<&str> = Vec::new();
    rows.iter()
        .filter(|r| r.reachable == Some(true))
        .filter(|r| match r.engine_id.as_deref() {
            Some(id) if seen.contains(&id) => false,
            Some(id) => {
                seen.push(id);
                true
            }
            None => true,
        })
        .collect()
}

/// The other server entry an earlier row reaches the same engine through, if any.
pub fn same_engine_as<'a>(rows: &'a [ServerRow], row: &ServerRow) -> Option<&'a str> {
    let id = row.engine_id.as_deref()?;
    rows.iter()
        .find(|r| r.server != row.server && r.engine_id.as_deref() == Some(id))
        .map(|r| r.server.as_str())
}

/// Sorts rows trouble first, then production first, then by name.
///
/// Entries that reach one engine (two aliases of one server) read the same containers at
/// different moments: one may catch a container unhealthy that the other read a second later as
/// healthy. They sort at the worse of their ranks, so they stay together and by name, and the
/// row under the cursor does not swap with its twin from one reading to the next.
pub fn sort_rows(rows: &mut [ServerRow]) {
    let mut engine_rank: std::collections::HashMap<String, u8> = Default::default();
    for r in rows.iter().filter(|r| r.reachable == Some(true)) {
        if let Some(id) = &r.engine_id {
            let rank = engine_rank.entry(id.clone()).or_insert(u8::MAX);
            *rank = (*rank).min(r.trouble_rank());
        }
    }
    let rank = |r: &ServerRow| match (&r.engine_id, r.reachable) {
        (Some(id), Some(true)) => engine_rank.get(id).copied().unwrap_or(r.trouble_rank()),
        _ => r.trouble_rank(),
    };
    rows.sort_by(|a, b| {
        (rank(a), !a.is_production(), &a.server).cmp(&(rank(b), !b.is_production(), &b.server))
    });
}

/// The short reason an error message stands for, as the fleet's column shows it.
pub fn short_reason(message: &str) -> String {
    let m = message.to_ascii_lowercase();
    let reason = if m.contains("identification has changed") {
        "host key changed"
    } else if m.contains("@revoked") {
        "host key revoked"
    } else if m.contains("is not known") {
        "host key unknown"
    } else if m.contains("permission denied for") || m.contains("authentication") {
        "auth refused"
    } else if m.contains("timed out") || m.contains("timeout") {
        "timeout"
    } else if m.contains("refused") {
        "refused"
    } else if m.contains("cannot resolve") {
        "unknown host"
    } else if m.contains("permission denied") {
        "docker socket denied"
    } else if m.contains("cannot reach the docker engine") {
        "no docker engine"
    } else {
        "error"
    };
    reason.to_string()
}

/// What the fleet needs to probe servers.
#[derive(Clone)]
pub struct ProbeOptions {
    pub ssh: SshOptions,
    pub connect_timeout: Duration,
    pub parallel: usize,
    /// berth's audit log, newest last, for each server's last change.
    pub audit: std::sync::Arc<Vec<AuditEntry>>,
}

/// Probes every target, at most `parallel` at once, sending each row as soon as it is known. Rows
/// come in the order servers answer; a slow one holds up only its own slot.
pub async fn probe_all(targets: Vec<Target>, options: ProbeOptions, rows: mpsc::Sender<ServerRow>) {
    let parallel = options.parallel.max(1);
    let mut answers = futures::stream::iter(targets.into_iter().map(|t| {
        let options = options.clone();
        async move { probe(t, &options, Utc::now()).await.0 }
    }))
    .buffer_unordered(parallel);
    while let Some(row) = answers.next().await {
        if rows.send(row).await.is_err() {
            return;
        }
    }
}

/// One server's row, and the engine when it answered (the console keeps it to open the server).
pub async fn probe(
    target: Target,
    options: &ProbeOptions,
    now: DateTime<Utc>,
) -> (ServerRow, Option<Engine>) {
    let mut kept = Kept::default();
    let row = read(&target, options, now, &mut kept).await;
    (row, kept.engine)
}

/// What the fleet keeps of a server between readings: its one session (the engine), the shell
/// the host is read through, and the last CPU counters, so a later reading needs no second sample.
#[derive(Default)]
pub struct Kept {
    pub engine: Option<Engine>,
    remote: Option<std::sync::Arc<dyn crate::stats::RemoteExec>>,
    paths: Vec<String>,
    cpu: Option<CpuTimes>,
    /// The engine's ID, read once per session.
    engine_id: Option<String>,
    /// When the last reading listed the containers (Unix seconds, taken just before): the watch
    /// follows events from then instead of listing them a second time.
    listed_at: Option<i64>,
}

impl Kept {
    /// One host reading through the kept session into `row` (CPU since the last reading), and
    /// one SSH round trip; nothing about containers. While the link is down it reads nothing:
    /// waiting on a reconnect would hold up the row's news and measure the wait as a round trip.
    async fn read_host(&mut self, row: &mut ServerRow) {
        let Some(engine) = self.engine.clone() else {
            return;
        };
        if let Some(ssh) = &engine.ssh {
            if !ssh.status().borrow().is_fresh() {
                return;
            }
            row.rtt_ms = round_trip(ssh).await;
        }
        // Bounded like the round trip: a link that drops under the reading waits on its
        // reconnect, and the row's other news must not wait with it.
        let reading = host::read(&engine, self.remote.as_deref(), &self.paths);
        let Ok(Ok((reading, _))) = tokio::time::timeout(PING_LIMIT, reading).await else {
            return;
        };
        row.read_at = Some(Utc::now());
        if let (Some(now), Some(before)) = (&reading.cpu, &self.cpu) {
            row.cpu_percent = now.percent_since(before);
        }
        self.cpu = reading.cpu;
        row.mem_percent = reading.mem_percent();
        row.disk_percent = reading.disks.last().map(|d| d.used_percent);
    }
}

/// One server's row, through the kept session when there is one (else a new one, kept for next
/// time). Any failure drops the session: the next reading connects afresh.
pub async fn read(
    target: &Target,
    options: &ProbeOptions,
    now: DateTime<Utc>,
    kept: &mut Kept,
) -> ServerRow {
    let mut row = ServerRow::pending(target);
    row.last_change = last_change(&options.audit, &target.name);
    let timeout = options.connect_timeout;
    let answered =
        tokio::time::timeout(timeout, read_server(target, options, now, &mut row, kept)).await;
    match answered {
        Ok(Ok(())) => row.reachable = Some(true),
        Ok(Err(message)) => {
            row.reachable = Some(false);
            row.error = Some(short_reason(&message));
            row.error_detail = Some(message);
        }
        Err(_) => {
            row.reachable = Some(false);
            row.error = Some("timeout".into());
            row.error_detail = Some(format!(
                "no answer within the connect timeout ({} s)",
                timeout.as_secs_f64()
            ));
        }
    }
    if row.reachable != Some(true) {
        *kept = Kept::default();
    }
    row
}

async fn read_server(
    target: &Target,
    options: &ProbeOptions,
    now: DateTime<Utc>,
    row: &mut ServerRow,
    kept: &mut Kept,
) -> Result<(), String> {
    let engine = match &kept.engine {
        Some(engine) => engine.clone(),
        None => {
            let engine = crate::engine::connect(target, &options.ssh)
                .await
                .map_err(|e| e.to_string())?;
            kept.remote = crate::remote::SshShell::for_engine(&engine);
            let info = engine.docker.info().await.ok();
            kept.engine_id = info
                .as_ref()
                .and_then(|i| i.id.clone())
                .filter(|id| !id.is_empty());
            kept.paths = host::disk_paths_of(info.as_ref());
            kept.cpu = None;
            kept.engine = Some(engine.clone());
            engine
        }
    };
    row.engine = Some(engine.version.engine.clone());
    row.engine_id = kept.engine_id.clone();
    if let Some(ssh) = &engine.ssh {
        row.rtt_ms = round_trip(ssh).await;
    }
    let remote = kept.remote.clone();
    let first = host::read(&engine, remote.as_deref(), &kept.paths)
        .await
        .ok();
    let first_at = Instant::now();
    let listed_at = Utc::now().timestamp();
    let containers = engine.containers().await.map_err(|e| e.to_string())?;
    kept.listed_at = Some(listed_at);
    row.read_at = Some(now);
    row.containers = ContainerSummary::of(&containers, now);
    row.listing = std::sync::Arc::new(containers);
    let Some((mut reading, _)) = first else {
        return Ok(());
    };
    // CPU% is a difference of two readings: the kept one, else a second one a moment later.
    let before = match kept.cpu {
        Some(before) => Some(before),
        None => {
            tokio::time::sleep(CPU_WINDOW.saturating_sub(first_at.elapsed())).await;
            let before = reading.cpu;
            if let Ok((second, _)) = host::read(&engine, remote.as_deref(), &kept.paths).await {
                reading = second;
            }
            before
        }
    };
    row.cpu_percent = match (&reading.cpu, &before) {
        (Some(now), Some(before)) => now.percent_since(before),
        _ => None,
    };
    kept.cpu = reading.cpu;
    row.mem_percent = reading.mem_percent();
    // The Docker root's file system: the last path asked for.
    row.disk_percent = reading.disks.last().map(|d| d.used_percent);
    Ok(())
}

/// The longest a keepalive may take to count as a round trip: a slower answer is no figure.
const PING_LIMIT: Duration = Duration::from_secs(5);

/// One SSH round trip: the keepalive's own answer time, bounded. `None` when it did not answer
/// in time (a figure from a link that is reconnecting would be the length of the outage).
async fn round_trip(ssh: &crate::ssh::SshSession) -> Option<u64> {
    match tokio::time::timeout(PING_LIMIT, ssh.ping()).await {
        Ok(Ok(rtt)) if rtt < PING_LIMIT => Some(rtt.as_millis() as u64),
        _ => None,
    }
}

/// berth's last change on `server`, from the audit log (newest last).
pub fn last_change(audit: &[AuditEntry], server: &str) -> Option<String> {
    let e = audit.iter().rev().find(|e| e.server == server)?;
    Some(format!(
        "{} {} {} · {}",
        e.action,
        e.target,
        e.result,
        e.time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_short() {
        assert_eq!(
            short_reason("REMOTE HOST IDENTIFICATION HAS CHANGED for [127.0.0.1]:22: …"),
            "host key changed"
        );
        assert_eq!(
            short_reason("permission denied for deploy@h (tried: publickey): check …"),
            "auth refused"
        );
        assert_eq!(
            short_reason("ssh handshake timed out after 10 s: the server or the network"),
            "timeout"
        );
        assert_eq!(
            short_reason(
                "cannot connect to 127.0.0.1:1: Connection refused (os error 111); is sshd …"
            ),
            "refused"
        );
    }

    /// Entries reaching one engine count its containers once, in the header's sums and a
    /// group's; entries without an engine ID count as their own.
    #[test]
    fn one_engine_reached_twice_is_counted_once() {
        let row = |name: &str, id: Option<&str>, unhealthy: usize| ServerRow {
            server: name.into(),
            reachable: Some(true),
            engine_id: id.map(Into::into),
            containers: ContainerSummary {
                running: 3,
                total: 3,
                unhealthy,
                ..Default::default()
            },
            ..Default::default()
        };
        let rows: Vec<ServerRow> = (0..10)
            .map(|i| row(&format!("s{i}"), Some("ENGINE-A"), 1))
            .chain([row("b", Some("ENGINE-B"), 0), row("c", None, 2)])
            .collect();
        let engines = distinct_engines(&rows);
        assert_eq!(engines.len(), 3);
        let unhealthy: usize = engines.iter().map(|r| r.containers.unhealthy).sum();
        assert_eq!(unhealthy, 3, "one from ENGINE-A, two from c");
        assert_eq!(same_engine_as(&rows, &rows[3]), Some("s0"));
        assert_eq!(same_engine_as(&rows, &rows[11]), None);
        let groups = GroupRow::of(
            &[(
                "all".to_string(),
                rows.iter().map(|r| r.server.clone()).collect(),
            )],
            &rows,
        );
        assert_eq!(groups[0].reachable, 12);
        assert_eq!(groups[0].containers.unhealthy, 3);
        assert_eq!(groups[0].containers.total, 9);
    }

    #[test]
    fn trouble_first_then_production() {
        let row =
            |name: &str, env: Option<&str>, reachable: Option<bool>, unhealthy: usize| ServerRow {
                server: name.into(),
                environment: env.map(Into::into),
                reachable,
                containers: ContainerSummary {
                    unhealthy,
                    ..Default::default()
                },
                ..Default::default()
            };
        let mut rows = vec![
            row("a-fine", None, Some(true), 0),
            row("b-pending", None, None, 0),
            row("c-sick", None, Some(true), 2),
            row("d-dead", None, Some(false), 0),
            row("e-fine-prod", Some("production"), Some(true), 0),
        ];
        sort_rows(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(
            names,
            ["d-dead", "c-sick", "e-fine-prod", "a-fine", "b-pending"]
        );
        assert!(rows[0].is_failing() && rows[1].is_failing() && !rows[2].is_failing());
    }

    /// Two entries of one engine that read it a moment apart (one caught a container unhealthy)
    /// sort together, by name, at the worse rank; an unreachable entry keeps its own rank.
    #[test]
    fn entries_of_one_engine_sort_together_by_name() {
        let row = |name: &str, id: &str, reachable: bool, unhealthy: usize| ServerRow {
            server: name.into(),
            reachable: Some(reachable),
            engine_id: Some(id.into()),
            containers: ContainerSummary {
                unhealthy,
                ..Default::default()
            },
            ..Default::default()
        };
        for (first, second) in [(0, 1), (1, 0)] {
            let mut rows = vec![
                row("app-2", "ENGINE-A", true, first),
                row("app-1", "ENGINE-A", true, second),
                row("b-sick", "ENGINE-B", true, 1),
                row("c-dead", "ENGINE-A", false, 0),
            ];
            sort_rows(&mut rows);
            let names: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
            assert_eq!(names, ["c-dead", "app-1", "app-2", "b-sick"]);
        }
    }
}
