//! `berth fleet`: every configured server at once, one line (or JSON object) each, trouble
//! first; the exit code fails when a server is unreachable or runs something unhealthy.

use std::io::Write;
use std::process::ExitCode;

use tokio::sync::mpsc;

use super::FleetArgs;
use crate::context::Context;
use crate::fleet::{self, GroupRow, ProbeOptions, ServerRow};
use crate::format::{printable, truncate};
use crate::target::Target;

/// The servers the fleet shows: every `[servers.NAME]`, resolved like `-s NAME`. A server whose
/// target cannot be resolved is a row with its error, not a failure of the whole command.
pub fn targets(ctx: &Context) -> (Vec<Target>, Vec<ServerRow>) {
    let mut targets = Vec::new();
    let mut broken = Vec::new();
    for (name, resolved) in crate::target::resolve_servers(&ctx.config, &ctx.env) {
        match resolved {
            Ok(mut t) => {
                t.read_only |= ctx.global.read_only || ctx.config.read_only;
                targets.push(t)
            }
            Err(e) => broken.push(ServerRow {
                environment: ctx
                    .config
                    .servers
                    .get(&name)
                    .and_then(|s| s.environment.clone()),
                server: name,
                reachable: Some(false),
                error: Some("bad target".into()),
                error_detail: Some(e.to_string()),
                ..Default::default()
            }),
        }
    }
    (targets, broken)
}

pub fn probe_options(ctx: &Context) -> color_eyre::Result<ProbeOptions> {
    let audit = crate::runbook::audit::AuditLog::from_env()
        .read_last(10_000)
        .unwrap_or_default();
    Ok(ProbeOptions {
        ssh: ctx.ssh_options(),
        connect_timeout: ctx
            .config
            .fleet
            .connect_timeout()
            .map_err(|e| color_eyre::eyre::eyre!(e))?,
        parallel: ctx.config.fleet.parallel(),
        audit: std::sync::Arc::new(audit),
    })
}

pub async fn run(ctx: &Context, args: &FleetArgs) -> color_eyre::Result<ExitCode> {
    if ctx.config.servers.is_empty() {
        return Err(color_eyre::eyre::eyre!(
            "no servers in the config: add [servers.NAME] target = \"user@host\" entries (see `berth --help`) to watch a fleet"
        ));
    }
    let options = probe_options(ctx)?;
    let (targets, mut rows) = targets(ctx);
    let (tx, mut rx) = mpsc::channel(64);
    let probing = tokio::spawn(fleet::probe_all(targets, options, tx));
    while let Some(row) = rx.recv().await {
        rows.push(row);
    }
    let _ = probing.await;
    fleet::sort_rows(&mut rows);
    let groups = GroupRow::of(&ctx.config.group_list(), &rows);
    let text = if args.json {
        // Groups follow the servers, told apart by their `group` key.
        let mut values: Vec<serde_json::Value> = rows
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        values.extend(groups.iter().filter_map(|g| serde_json::to_value(g).ok()));
        let json = serde_json::to_string_pretty(&values).unwrap_or_default() + "\n";
        crate::logs::sanitize::json_safe(&json)
    } else {
        crate::logs::sanitize::plain_lines(&(render(&rows) + &render_groups(&groups)))
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if rows.iter().any(ServerRow::is_failing) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn percent(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.0}%")).unwrap_or_else(|| "-".into())
}

/// The rows as a table, one line per server.
pub fn render(rows: &[ServerRow]) -> String {
    let mut s = format!(
        "{:<20} {:<11} {:<18} {:>6} {:<14} {:>9} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5}  {}\n",
        "SERVER",
        "ENV",
        "STATUS",
        "RTT",
        "ENGINE",
        "RUN/ALL",
        "UNHLT",
        "RSTRT",
        "EXIT",
        "CPU",
        "MEM",
        "DISK",
        "LAST CHANGE"
    );
    for r in rows {
        let status = match (r.reachable, &r.error) {
            (Some(true), _) => "ok".to_string(),
            (Some(false), Some(e)) => format!("✖ {e}"),
            (Some(false), None) => "✖ unreachable".into(),
            (None, _) => "…".into(),
        };
        let up = r.reachable == Some(true);
        let n = |v: usize| if up { v.to_string() } else { "-".into() };
        s.push_str(&format!(
            "{:<20} {:<11} {:<18} {:>6} {:<14} {:>9} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5}  {}\n",
            truncate(&printable(&r.server), 20),
            truncate(&printable(r.environment.as_deref().unwrap_or("-")), 11),
            truncate(&printable(&status), 18),
            r.rtt_ms
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_else(|| "-".into()),
            truncate(&printable(r.engine.as_deref().unwrap_or("-")), 14),
            if up {
                format!("{}/{}", r.containers.running, r.containers.total)
            } else {
                "-".into()
            },
            n(r.containers.unhealthy),
            n(r.containers.restarting),
            n(r.containers.exited_recently),
            percent(r.cpu_percent),
            percent(r.mem_percent),
            r.disk_percent
                .map(|d| format!("{d}%"))
                .unwrap_or_else(|| "-".into()),
            printable(r.last_change.as_deref().unwrap_or("-")),
        ));
    }
    for r in rows.iter().filter(|r| r.error_detail.is_some()) {
        s.push_str(&format!(
            "{}: {}\n",
            printable(&r.server),
            printable(r.error_detail.as_deref().unwrap_or(""))
        ));
    }
    s
}

/// One line per group under the servers: its members, how many are up, their containers summed.
pub fn render_groups(groups: &[GroupRow]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n{:<20} {:<30} {:>7} {:>9} {:>5} {:>5} {:>5}\n",
        "GROUP", "SERVERS", "UP", "RUN/ALL", "UNHLT", "RSTRT", "EXIT"
    );
    for g in groups {
        s.push_str(&format!(
            "{:<20} {:<30} {:>7} {:>9} {:>5} {:>5} {:>5}\n",
            truncate(&printable(&g.group), 20),
            truncate(&printable(&g.servers.join(", ")), 30),
            format!("{}/{}", g.reachable, g.servers.len()),
            format!("{}/{}", g.containers.running, g.containers.total),
            g.containers.unhealthy,
            g.containers.restarting,
            g.containers.exited_recently,
        ));
    }
    s
}
