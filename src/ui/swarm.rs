//! The swarm views: stacks → services → tasks in one table, and the nodes. Everything the manager
//! reports (names, labels, images, errors) goes through `printable` before it is drawn.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Wrap};

use crate::app::{App, NodeReach, SwarmRow};
use crate::engine::model::Health;
use crate::format::{age, compact_bytes, printable, truncate};
use crate::stats::Point;
use crate::swarm::{NodeInfo, ServiceInfo, TaskInfo};
use crate::theme::Theme;

/// What the view says while there is no swarm to show: reading, or why not.
fn placeholder(frame: &mut Frame, area: Rect, app: &App, block: Block) -> bool {
    let text = match (&app.swarm.snapshot, &app.swarm.error) {
        (_, Some(e)) => Some((printable(e), app.theme.warning())),
        (None, None) => Some(("reading the swarm …".to_string(), app.theme.dim())),
        _ => None,
    };
    let Some((text, style)) = text else {
        return false;
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(
        Paragraph::new(text).style(style).wrap(Wrap { trim: true }),
        inner,
    );
    true
}

fn table_block<'a>(title: &str, app: &App) -> Block<'a> {
    Block::bordered()
        .title(Span::styled(format!(" {title} "), app.theme.title(true)))
        .border_style(app.theme.border(true))
}

pub fn draw_services(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let block = table_block("swarm: stacks → services → tasks", app);
    if placeholder(frame, area, app, block.clone()) {
        return;
    }
    let view = &app.swarm;
    if view.rows.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(
                "no services: `docker stack deploy` or `docker service create` adds some",
            )
            .style(theme.dim()),
            inner,
        );
        return;
    }
    let header = super::table::header(
        &[
            "NAME",
            "MODE",
            "REPLICAS",
            "IMAGE",
            "STATE",
            "DESIRED",
            "HEALTH",
            "CPU   MEM",
            "UPDATE / ERROR",
        ],
        theme,
    );
    let rows = super::table::windowed(
        view.rows.len(),
        view.selected,
        area.height.saturating_sub(3) as usize,
        theme,
        |i| match &view.rows[i] {
            SwarmRow::Stack(stack) => stack_row(stack.as_deref(), theme),
            SwarmRow::Service(id) => match view.service(id) {
                Some(s) => service_row(s, app),
                None => Row::new(vec![Cell::from("?")]),
            },
            SwarmRow::Task { task, .. } => match view.task(task) {
                Some(t) => task_row(t, app),
                None => Row::new(vec![Cell::from("?")]),
            },
        },
    );
    // Narrow: the name, its replicas, state and health stay; the rest goes, whole columns.
    super::table::draw_fitted(
        frame,
        area,
        header,
        rows,
        block,
        &[
            (28, 0),
            (10, 4),
            (8, 0),
            (20, 2),
            (14, 0),
            (8, 3),
            (9, 1),
            (13, 3),
            (12, 2),
        ],
    );
}

fn stack_row<'a>(stack: Option<&str>, theme: &Theme) -> Row<'a> {
    let name = match stack {
        Some(s) => format!("▾ {}", printable(s)),
        None => "▾ (no stack)".to_string(),
    };
    Row::new(vec![Cell::from(Span::styled(name, theme.group()))])
}

fn service_row<'a>(s: &ServiceInfo, app: &App) -> Row<'a> {
    let theme = &app.theme;
    let short = s.running < s.desired;
    let replicas = Span::styled(
        s.replicas(),
        if short { theme.warning() } else { theme.text() },
    );
    let update = match (&s.update_state, &s.update_message) {
        (Some(st), m) => {
            let style: Style = match st.as_str() {
                "completed" => theme.dim(),
                "rollback_completed" | "paused" | "rollback_paused" => theme.error(),
                _ => theme.warning(),
            };
            let text = match m {
                Some(m) => format!("{st}: {m}"),
                None => st.clone(),
            };
            Span::styled(printable(&text), style)
        }
        (None, _) => Span::styled(
            s.ports
                .iter()
                .map(|p| p.short())
                .collect::<Vec<_>>()
                .join(" "),
            theme.dim(),
        ),
    };
    Row::new(vec![
        Cell::from(format!("  {}", truncate(&printable(s.short_name()), 26))),
        Cell::from(s.mode.as_str()),
        Cell::from(replicas),
        Cell::from(truncate(&printable(&s.image), 20)),
        Cell::from(""),
        Cell::from(""),
        Cell::from(""),
        Cell::from(service_stats(s, app)),
        Cell::from(update),
    ])
}

fn task_row<'a>(t: &TaskInfo, app: &App) -> Row<'a> {
    let theme = &app.theme;
    let label = match t.slot {
        Some(slot) => format!("slot {slot}"),
        None => "global".to_string(),
    };
    let node = if t.node.is_empty() {
        String::new()
    } else {
        format!(" @{}", printable(&t.node))
    };
    let state_style = match t.state.as_str() {
        "running" => theme.success(),
        "failed" | "rejected" | "orphaned" => theme.error(),
        "shutdown" | "complete" => theme.dim(),
        _ => theme.warning(),
    };
    let health = match task_health(t, app) {
        Some(h) => Span::styled(h.as_str(), theme.health(h)),
        None => Span::styled("—", theme.dim()),
    };
    let container = t
        .container_id
        .as_deref()
        .map(crate::engine::model::short_id)
        .unwrap_or("—");
    let detail = match (&t.error, task_usage(t, app)) {
        (Some(e), _) => Span::styled(printable(e), theme.error()),
        // Why its numbers cannot be read, where its container id would be.
        (None, TaskUsage::Unreachable(server, why)) if t.is_running() => {
            Span::styled(printable(&format!("{server}: {why}")), theme.warning())
        }
        (None, TaskUsage::Stale(server, at)) if t.is_running() => Span::styled(
            printable(&format!(
                "{server}: no numbers for {}",
                age(Some(at), app.now)
            )),
            theme.stale(),
        ),
        (None, _) => Span::styled(container.to_string(), theme.dim()),
    };
    Row::new(vec![
        Cell::from(Span::styled(
            truncate(&format!("    {label}{node}"), 28),
            theme.dim(),
        )),
        Cell::from(""),
        Cell::from(""),
        Cell::from(Span::styled(
            truncate(&printable(&t.image), 20),
            theme.dim(),
        )),
        Cell::from(Span::styled(
            format!("{} {}", printable(&t.state), age(t.since, app.now)),
            state_style,
        )),
        Cell::from(printable(&t.desired_state)),
        Cell::from(health),
        Cell::from(task_stats(t, app)),
        Cell::from(detail),
    ])
}

/// What berth reads of a running task's CPU and memory.
enum TaskUsage<'a> {
    /// On a node this session does not reach, and no configured server is that node.
    OtherNode,
    /// On a node berth reads through its server entry, still being reached.
    Reaching,
    /// On a node whose server cannot be read: the server and why.
    Unreachable(&'a str, &'a str),
    /// On a node whose server has brought no numbers for a while: the server and since when.
    Stale(&'a str, chrono::DateTime<chrono::Utc>),
    /// On this engine or a reached node, not read yet (or the link is stale).
    Unread,
    Read(&'a Point),
}

fn task_usage<'a>(t: &TaskInfo, app: &'a App) -> TaskUsage<'a> {
    let id = t.container_id.as_deref();
    if !app.swarm.snapshot.as_ref().is_some_and(|s| s.is_local(t)) {
        let Some((server, node)) = id.and_then(|id| app.node_reading(id)) else {
            return TaskUsage::OtherNode;
        };
        let stale = node.is_stale(app.now, app.monitor.interval);
        return match (
            &node.reach,
            node.read_at,
            id.and_then(|id| node.store.latest(id)),
        ) {
            (NodeReach::Failed(why), ..) => TaskUsage::Unreachable(server, why),
            (_, Some(at), _) if stale => TaskUsage::Stale(server, at),
            (_, _, Some(p)) => TaskUsage::Read(p),
            (NodeReach::Connecting, _, None) => TaskUsage::Reaching,
            (NodeReach::Reading, _, None) => TaskUsage::Unread,
        };
    }
    match id
        .and_then(|id| app.stats.latest(id))
        .filter(|_| !app.is_stale())
    {
        Some(p) => TaskUsage::Read(p),
        None => TaskUsage::Unread,
    }
}

/// A task's container's health: on this engine from the swarm's read, on another node from its
/// server's latest listing while that is current.
fn task_health(t: &TaskInfo, app: &App) -> Option<Health> {
    if t.health.is_some() {
        return t.health;
    }
    let id = t.container_id.as_deref()?;
    let (_, node) = app.node_reading(id)?;
    if node.is_stale(app.now, app.monitor.interval) {
        return None;
    }
    node.health.get(id).copied()
}

/// `—` for a task or service with nothing read, dimmed (or marked stale).
fn unread<'a>(app: &App) -> Span<'a> {
    let style = if app.is_stale() {
        app.theme.stale()
    } else {
        app.theme.dim()
    };
    Span::styled("—", style)
}

fn usage_text(cpu: Option<f64>, mem: Option<u64>) -> String {
    let cpu = cpu.map_or("—".to_string(), |c| format!("{c:.1}%"));
    let mem = mem.map_or("—".to_string(), compact_bytes);
    format!("{cpu:>6} {mem}")
}

/// CPU% and memory of a running task: on the engine berth is connected to, from the same
/// collector as the container list; on another node, from that node's server when the config
/// lists it; otherwise the task says it is on another node.
fn task_stats<'a>(t: &TaskInfo, app: &App) -> Span<'a> {
    if !t.is_running() {
        return Span::raw("");
    }
    match task_usage(t, app) {
        TaskUsage::OtherNode => Span::styled("— other node", app.theme.dim()),
        TaskUsage::Reaching => Span::styled("— reaching", app.theme.dim()),
        TaskUsage::Unreachable(..) => Span::styled("— unreachable", app.theme.warning()),
        TaskUsage::Stale(..) => Span::styled("— stale", app.theme.stale()),
        TaskUsage::Unread => unread(app),
        TaskUsage::Read(p) => Span::styled(usage_text(p.cpu, p.mem_used), app.theme.text()),
    }
}

/// A service's CPU% and memory: the sums over its running tasks that berth reads. A `+` after
/// them says some running tasks are not in the sum (on another node, or not read yet), so the
/// service uses at least that much.
fn service_stats<'a>(s: &ServiceInfo, app: &App) -> Span<'a> {
    let Some(snapshot) = app.swarm.snapshot.as_ref() else {
        return Span::raw("");
    };
    let running: Vec<&TaskInfo> = snapshot
        .tasks_of(&s.id)
        .into_iter()
        .filter(|t| t.is_running())
        .collect();
    if running.is_empty() {
        return Span::raw("");
    }
    let usages: Vec<TaskUsage> = running.iter().map(|t| task_usage(t, app)).collect();
    let read: Vec<&Point> = usages
        .iter()
        .filter_map(|u| match u {
            TaskUsage::Read(p) => Some(*p),
            _ => None,
        })
        .collect();
    if read.is_empty() {
        return if usages.iter().all(|u| matches!(u, TaskUsage::OtherNode)) {
            Span::styled("— other node", app.theme.dim())
        } else {
            unread(app)
        };
    }
    let sum = |f: fn(&Point) -> Option<f64>| -> Option<f64> {
        read.iter().filter_map(|p| f(p)).reduce(|a, b| a + b)
    };
    let cpu = sum(|p| p.cpu);
    let mem = sum(|p| p.mem_used.map(|m| m as f64)).map(|m| m as u64);
    let partial = if read.len() < running.len() { "+" } else { "" };
    Span::styled(
        format!("{}{partial}", usage_text(cpu, mem)),
        app.theme.text(),
    )
}

pub fn draw_nodes(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let block = table_block("swarm nodes", app);
    if placeholder(frame, area, app, block.clone()) {
        return;
    }
    let Some(snapshot) = &app.swarm.snapshot else {
        return;
    };
    let header = super::table::header(
        &[
            "HOSTNAME",
            "ROLE",
            "LEADER",
            "AVAILABILITY",
            "STATUS",
            "ENGINE",
            "TASKS",
            "RESOURCES",
            "ADDRESS",
        ],
        theme,
    );
    let rows = super::table::windowed(
        snapshot.nodes.len(),
        app.swarm.node_selected,
        area.height.saturating_sub(3) as usize,
        theme,
        |i| node_row(&snapshot.nodes[i], theme),
    );
    super::table::draw_fitted(
        frame,
        area,
        header,
        rows,
        block,
        &[
            (20, 0),
            (8, 1),
            (6, 2),
            (12, 0),
            (8, 0),
            (10, 3),
            (5, 2),
            (14, 3),
            (10, 4),
        ],
    );
}

fn node_row<'a>(n: &NodeInfo, theme: &Theme) -> Row<'a> {
    let availability = Span::styled(
        printable(&n.availability),
        if n.availability == "active" {
            theme.text()
        } else {
            theme.warning()
        },
    );
    let status = Span::styled(
        printable(&n.status),
        if n.status == "ready" {
            theme.success()
        } else {
            theme.error()
        },
    );
    Row::new(vec![
        Cell::from(truncate(&printable(&n.hostname), 20)),
        Cell::from(printable(&n.role)),
        Cell::from(if n.leader { "★" } else { "" }),
        Cell::from(availability),
        Cell::from(status),
        Cell::from(truncate(&printable(&n.engine_version), 10)),
        Cell::from(n.tasks.to_string()),
        Cell::from(format!(
            "{:.0} CPU · {}",
            n.cpus,
            compact_bytes(n.memory_bytes)
        )),
        Cell::from(Span::styled(printable(&n.address), theme.dim())),
    ])
}
