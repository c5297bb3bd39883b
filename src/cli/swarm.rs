//! `berth services`, `berth nodes`, and `berth ps SERVICE|STACK`: a swarm manager's services,
//! nodes and tasks as plain text or JSON. Every name from the server is cleaned on its way out.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use super::{NodesArgs, ServicesArgs};
use crate::context::Context;
use crate::engine::Engine;
use crate::format::{age, compact_bytes, printable, truncate};
use crate::swarm::{Named, NodeInfo, Role, ServiceInfo, Snapshot, TaskInfo};

/// Connects and reads the swarm; an engine that is not a manager is a one-line error saying why.
pub async fn manager(ctx: &Context) -> color_eyre::Result<(Engine, Snapshot)> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let role = crate::swarm::detect(&engine).await?;
    require_manager(&role)?;
    let mut snapshot = crate::swarm::snapshot(&engine).await?;
    if let Ok(containers) = engine.containers().await {
        crate::swarm::add_local_health(&mut snapshot, &containers);
    }
    Ok((engine, snapshot))
}

/// The engine of a swarm node the config lists as `server`, or why it cannot be reached (within
/// `[fleet] connect_timeout`).
pub async fn connect_node(ctx: &Context, server: &str) -> Result<Engine, String> {
    let target =
        crate::target::resolve_named(server, &ctx.config, &ctx.env).map_err(|e| e.to_string())?;
    let timeout = ctx.config.fleet.connect_timeout()?;
    match tokio::time::timeout(timeout, ctx.connect(&target)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
    }
}

/// Fills the health of running tasks on other nodes the config lists as servers, read on each
/// node (the manager reports task states, not health); a node that cannot be read is named on
/// stderr, its tasks' health left unknown.
pub async fn add_node_health(ctx: &Context, current: &str, snapshot: &mut Snapshot) {
    let servers = crate::swarm::reach::remote_running_containers(snapshot, &ctx.config, current);
    for server in servers.keys() {
        let listed = match connect_node(ctx, server).await {
            Ok(engine) => engine.containers().await.map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        match listed {
            Ok(containers) => crate::swarm::add_local_health(snapshot, &containers),
            Err(why) => eprintln!(
                "berth: the health of the tasks on server {server} is unknown: {}",
                printable(&why)
            ),
        }
    }
}

/// The error for an engine that cannot answer for the swarm.
pub fn require_manager(role: &Role) -> color_eyre::Result<()> {
    match role {
        Role::Manager { .. } => Ok(()),
        Role::Worker { managers, .. } => Err(color_eyre::eyre::eyre!(
            "{}",
            crate::swarm::worker_message(managers)
        )),
        Role::None => Err(color_eyre::eyre::eyre!(
            "this engine is not in a swarm: there are no services or nodes (`docker swarm init` makes it a manager; `berth ps` lists its containers)"
        )),
    }
}

fn write_out(text: &str) -> color_eyre::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

pub async fn run_services(ctx: &Context, args: &ServicesArgs) -> color_eyre::Result<ExitCode> {
    let (_, snapshot) = manager(ctx).await?;
    write_out(&render_services(&snapshot, args.json))
}

pub async fn run_nodes(ctx: &Context, args: &NodesArgs) -> color_eyre::Result<ExitCode> {
    let (_, snapshot) = manager(ctx).await?;
    write_out(&render_nodes(&snapshot, args.json))
}

#[derive(Serialize)]
struct ServiceEntry<'a> {
    name: &'a str,
    id: &'a str,
    stack: Option<&'a str>,
    mode: &'a str,
    running: u64,
    desired: u64,
    image: &'a str,
    update_state: Option<&'a str>,
    update_message: Option<&'a str>,
    ports: Vec<String>,
}

fn service_entry(s: &ServiceInfo) -> ServiceEntry<'_> {
    ServiceEntry {
        name: &s.name,
        id: &s.id,
        stack: s.stack.as_deref(),
        mode: s.mode.as_str(),
        running: s.running,
        desired: s.desired,
        image: &s.image,
        update_state: s.update_state.as_deref(),
        update_message: s.update_message.as_deref(),
        ports: s.ports.iter().map(|p| p.short()).collect(),
    }
}

/// The update column: `rollback_completed: update rolled back due to …`.
pub fn update_text(s: &ServiceInfo) -> String {
    match (&s.update_state, &s.update_message) {
        (Some(st), Some(m)) => format!("{st}: {m}"),
        (Some(st), None) => st.clone(),
        _ => "—".into(),
    }
}

pub fn render_services(snapshot: &Snapshot, json: bool) -> String {
    if json {
        let entries: Vec<ServiceEntry> = snapshot.services.iter().map(service_entry).collect();
        let json = serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n";
        return crate::logs::sanitize::json_safe(&json);
    }
    if snapshot.services.is_empty() {
        return "no services\n".into();
    }
    let mut s = format!(
        "{:<30} {:<10} {:>8}  {:<30} {:<28} {}\n",
        "NAME", "MODE", "REPLICAS", "IMAGE", "UPDATE", "PORTS"
    );
    for (stack, members) in snapshot.stacks() {
        s.push_str(&match &stack {
            Some(st) => format!("{}\n", printable(st)),
            None => "(no stack)\n".into(),
        });
        for m in members {
            s.push_str(&format!(
                "  {:<28} {:<10} {:>8}  {:<30} {:<28} {}\n",
                truncate(&printable(&m.name), 28),
                m.mode.as_str(),
                m.replicas(),
                truncate(&printable(&m.image), 30),
                truncate(&printable(&update_text(m)), 28),
                m.ports
                    .iter()
                    .map(|p| p.short())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
    crate::logs::sanitize::plain_lines(&s)
}

#[derive(Serialize)]
struct NodeEntry<'a> {
    hostname: &'a str,
    id: &'a str,
    role: &'a str,
    leader: bool,
    availability: &'a str,
    status: &'a str,
    engine_version: &'a str,
    address: &'a str,
    tasks: usize,
    cpus: f64,
    memory_bytes: u64,
}

fn node_entry(n: &NodeInfo) -> NodeEntry<'_> {
    NodeEntry {
        hostname: &n.hostname,
        id: &n.id,
        role: &n.role,
        leader: n.leader,
        availability: &n.availability,
        status: &n.status,
        engine_version: &n.engine_version,
        address: &n.address,
        tasks: n.tasks,
        cpus: n.cpus,
        memory_bytes: n.memory_bytes,
    }
}

pub fn render_nodes(snapshot: &Snapshot, json: bool) -> String {
    if json {
        let entries: Vec<NodeEntry> = snapshot.nodes.iter().map(node_entry).collect();
        let json = serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n";
        return crate::logs::sanitize::json_safe(&json);
    }
    let mut s = format!(
        "{:<24} {:<8} {:<6} {:<12} {:<8} {:<10} {:>5}  {}\n",
        "HOSTNAME", "ROLE", "LEADER", "AVAILABILITY", "STATUS", "ENGINE", "TASKS", "RESOURCES"
    );
    for n in &snapshot.nodes {
        s.push_str(&format!(
            "{:<24} {:<8} {:<6} {:<12} {:<8} {:<10} {:>5}  {}\n",
            truncate(&printable(&n.hostname), 24),
            printable(&n.role),
            if n.leader { "yes" } else { "" },
            printable(&n.availability),
            printable(&n.status),
            truncate(&printable(&n.engine_version), 10),
            n.tasks,
            resources(n),
        ));
    }
    crate::logs::sanitize::plain_lines(&s)
}

/// `4 CPU · 7.6G`.
pub fn resources(n: &NodeInfo) -> String {
    format!("{:.0} CPU · {}", n.cpus, compact_bytes(n.memory_bytes))
}

#[derive(Serialize)]
struct TaskEntry<'a> {
    task: String,
    id: &'a str,
    service: &'a str,
    slot: Option<i64>,
    node: &'a str,
    state: &'a str,
    since: Option<chrono::DateTime<chrono::Utc>>,
    desired_state: &'a str,
    error: Option<&'a str>,
    container_id: Option<&'a str>,
    image: &'a str,
    health: Option<&'static str>,
}

/// The tasks of a service or a stack, as `berth ps NAME` prints them.
pub fn render_tasks(
    snapshot: &Snapshot,
    named: &Named<'_>,
    json: bool,
    all: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let services = match named {
        Named::Service(s) => vec![*s],
        Named::Stack(_, m) => m.clone(),
    };
    let tasks: Vec<&TaskInfo> = services
        .iter()
        .flat_map(|s| snapshot.tasks_of(&s.id))
        .filter(|t| all || t.wants_running())
        .collect();
    if json {
        let entries: Vec<TaskEntry> = tasks
            .iter()
            .map(|t| TaskEntry {
                task: t.label(),
                id: &t.id,
                service: &t.service,
                slot: t.slot,
                node: &t.node,
                state: &t.state,
                since: t.since,
                desired_state: &t.desired_state,
                error: t.error.as_deref(),
                container_id: t.container_id.as_deref(),
                image: &t.image,
                health: t.health.map(|h| h.as_str()),
            })
            .collect();
        let json = serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n";
        return crate::logs::sanitize::json_safe(&json);
    }
    if tasks.is_empty() {
        return if all {
            "no tasks\n".into()
        } else {
            "no tasks wanted running (--all shows earlier ones)\n".into()
        };
    }
    let mut s = format!(
        "{:<28} {:<16} {:<18} {:<9} {:<10} {:<13} {:<28} {}\n",
        "TASK", "NODE", "STATE", "DESIRED", "HEALTH", "CONTAINER", "IMAGE", "ERROR"
    );
    for t in tasks {
        s.push_str(&format!(
            "{:<28} {:<16} {:<18} {:<9} {:<10} {:<13} {:<28} {}\n",
            truncate(&printable(&t.label()), 28),
            truncate(&printable(&t.node), 16),
            format!("{} {}", printable(&t.state), age(t.since, now)),
            printable(&t.desired_state),
            t.health.map(|h| h.as_str()).unwrap_or("—"),
            t.container_id
                .as_deref()
                .map(crate::engine::model::short_id)
                .unwrap_or("—"),
            truncate(&printable(&t.image), 28),
            printable(t.error.as_deref().unwrap_or("")),
        ));
    }
    crate::logs::sanitize::plain_lines(&s)
}
