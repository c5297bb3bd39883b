//! The runbook on a swarm: scale, restart (a forced rolling update), the swarm's own rollback to the
//! previous spec, an update to a chosen image with an update config berth states in the plan, and
//! draining or activating a node. Each is one spec change through the manager, then a bounded wait
//! that watches the tasks converge: every task wanted running is running (swarm holds a task in
//! `starting` until its health check passes) and the update status is final.

use std::collections::BTreeSet;
use std::time::Duration;

use bollard::models::{
    NodeSpecAvailabilityEnum, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListTasksOptions, UpdateNodeOptions, UpdateServiceOptions,
};
use serde::Serialize;

use super::{Plan, PlanKind, RunbookError, Runner, Step, eng, plan_base};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::parse_time;
use crate::swarm::{Mode, NodeInfo, ServiceInfo, Snapshot, TaskInfo, image_without_digest};

/// What to do on a swarm service or node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwarmAction {
    /// Set a replicated service's replicas.
    Scale(u64),
    /// Replace every task (force update), one at a time.
    Restart,
    /// The swarm's own rollback to the service's previous spec.
    Rollback,
    /// Update the service to this image: a tag of its repository or a full reference.
    Image(String),
    /// Move every task off a node.
    Drain,
    /// Let a node take tasks again.
    Activate,
}

impl SwarmAction {
    pub fn name(&self) -> &'static str {
        match self {
            SwarmAction::Scale(_) => "scale",
            SwarmAction::Restart => "restart",
            SwarmAction::Rollback | SwarmAction::Image(_) => "rollback",
            SwarmAction::Drain => "drain",
            SwarmAction::Activate => "activate",
        }
    }

    fn on_node(&self) -> bool {
        matches!(self, SwarmAction::Drain | SwarmAction::Activate)
    }
}

/// A change on a swarm service (by name, id or `stack/service`) or node (hostname or id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmRequest {
    pub action: SwarmAction,
    pub name: String,
}

impl SwarmRequest {
    pub fn label(&self) -> String {
        match &self.action {
            SwarmAction::Scale(n) => format!("scale {}={n}", self.name),
            SwarmAction::Image(i) => format!("rollback {} to {i}", self.name),
            a => format!("{} {}", a.name(), self.name),
        }
    }
}

/// `web=3` → (`web`, 3).
pub fn parse_scale(spec: &str) -> Result<(String, u64), RunbookError> {
    let bad = || {
        RunbookError::Invalid(format!(
            "'{spec}' is not SERVICE=REPLICAS: write e.g. `berth scale web=3`"
        ))
    };
    let (name, n) = spec.split_once('=').ok_or_else(bad)?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if name.trim().is_empty() {
        return Err(bad());
    }
    if n > 1000 {
        return Err(RunbookError::Invalid(format!(
            "{n} replicas is more than berth scales to (1000); use docker service scale if you mean it"
        )));
    }
    Ok((name.trim().to_string(), n))
}

/// The update config berth sets for an update it makes: one task at a time, the new one started
/// before the old stops where no host-mode port forbids two at once, watched for a window, and
/// rolled back by the swarm when a task fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdatePolicy {
    pub parallelism: i64,
    pub order: &'static str,
    pub monitor_secs: u64,
    pub failure_action: &'static str,
}

impl UpdatePolicy {
    pub const MONITOR: Duration = Duration::from_secs(5);

    pub fn for_service(s: &ServiceInfo) -> UpdatePolicy {
        UpdatePolicy {
            parallelism: 1,
            order: if s.fixed_host_port() {
                "stop-first"
            } else {
                "start-first"
            },
            monitor_secs: Self::MONITOR.as_secs(),
            failure_action: "rollback",
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "parallelism {}, order {}, monitor {} s, failure action {}",
            self.parallelism, self.order, self.monitor_secs, self.failure_action
        )
    }

    fn config(&self) -> ServiceSpecUpdateConfig {
        ServiceSpecUpdateConfig {
            parallelism: Some(self.parallelism),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(self.monitor_secs as i64 * 1_000_000_000),
            max_failure_ratio: Some(0.0),
            order: Some(if self.order == "start-first" {
                ServiceSpecUpdateConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SwarmPlan {
    action: SwarmAction,
    /// Service or node id.
    id: String,
    name: String,
    /// The image an update goes to (full reference), for the check after.
    image: Option<String>,
    policy: Option<UpdatePolicy>,
    /// Tasks on a node being drained: `(label, service id, slot)`.
    moving: Vec<(String, String, Option<i64>)>,
    wait: Duration,
}

/// Plans a swarm action. Reads the manager only.
pub async fn plan_swarm(
    engine: &Engine,
    config: &Config,
    req: &SwarmRequest,
) -> Result<Plan, RunbookError> {
    let role = crate::swarm::detect(engine).await?;
    if !role.is_manager() {
        return Err(RunbookError::Invalid(role.manager_needed().unwrap_or_else(
            || "this engine is not in a swarm: there are no services or nodes to change".into(),
        )));
    }
    let snapshot = crate::swarm::snapshot(engine).await?;
    if req.action.on_node() {
        return plan_node(engine, &snapshot, req);
    }
    let service = snapshot.service(&req.name).ok_or_else(|| {
        RunbookError::NotFound(
            req.name.clone(),
            "; list swarm services with `berth services`".into(),
        )
    })?;
    plan_service(engine, config, &snapshot, service, req).await
}

/// The bounded wait: each task in turn gets its health budget, the monitor window and time to
/// pull and start; at least a minute, at most fifteen.
fn wait_for(config: &Config, service: &ServiceInfo, tasks: u64) -> Duration {
    let health =
        super::health_settings(config, service.stack.as_deref(), Some(service.short_name()));
    let per_task = health.budget() + UpdatePolicy::MONITOR + Duration::from_secs(10);
    (per_task * tasks.max(1) as u32 + Duration::from_secs(30))
        .clamp(Duration::from_secs(60), Duration::from_secs(900))
}

async fn plan_service(
    engine: &Engine,
    config: &Config,
    snapshot: &Snapshot,
    s: &ServiceInfo,
    req: &SwarmRequest,
) -> Result<Plan, RunbookError> {
    let running: Vec<&TaskInfo> = snapshot
        .tasks_of(&s.id)
        .into_iter()
        .filter(|t| t.wants_running())
        .collect();
    let base_call = format!(
        "POST /services/{}/update?version={}",
        short(&s.id),
        s.version
    );
    let checked = if s.has_healthcheck {
        "running and healthy (swarm holds a task in starting until its health check passes)"
    } else {
        "running"
    };
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let mut image = None;
    let mut policy = None;
    let title;
    let wait;
    match &req.action {
        SwarmAction::Scale(n) => {
            if s.mode != Mode::Replicated {
                return Err(RunbookError::Invalid(format!(
                    "{} is a {} service: it runs one task per node and cannot be scaled",
                    s.name,
                    s.mode.as_str()
                )));
            }
            if *n == s.desired {
                return Err(RunbookError::Invalid(format!(
                    "{} already wants {n} replicas ({} running): nothing to scale",
                    s.name, s.running
                )));
            }
            title = format!("scale {} from {} to {n} replicas", s.name, s.desired);
            steps.push(Step::new(
                format!("set {}'s replicas to {n}", s.name),
                vec![format!("{base_call} (Mode.Replicated.Replicas={n})")],
            ));
            wait = wait_for(config, s, n.saturating_sub(s.desired).max(1));
            steps.push(Step::new(
                format!(
                    "wait until exactly {n} task(s) are {checked} (at most {} s)",
                    wait.as_secs()
                ),
                vec![format!(
                    "GET /services/{0} · GET /tasks?service={0} (every 0.5 s)",
                    short(&s.id)
                )],
            ));
            if *n < s.desired {
                notes.push(format!(
                    "{} task(s) will be stopped (the highest slots first)",
                    s.desired - n
                ));
            }
        }
        SwarmAction::Restart => {
            let p = UpdatePolicy::for_service(s);
            title = format!(
                "restart {} ({} task(s), one at a time)",
                s.name,
                running.len()
            );
            steps.push(Step::new(
                format!(
                    "force a rolling update of {}: every task replaced by a new one; update config: {}",
                    s.name,
                    p.describe()
                ),
                vec![format!("{base_call} (TaskTemplate.ForceUpdate+1, UpdateConfig)")],
            ));
            wait = wait_for(config, s, running.len() as u64);
            steps.push(wait_step(s, checked, wait, "completed"));
            image = Some(s.image.clone());
            policy = Some(p);
        }
        SwarmAction::Rollback => {
            let raw = engine
                .get_json(&format!("/services/{}", s.id))
                .await
                .map_err(RunbookError::Engine)?;
            let Some(previous) = raw.get("PreviousSpec").filter(|p| !p.is_null()) else {
                return Err(RunbookError::Invalid(format!(
                    "{} has no previous spec (it was never updated, or its last change was a rollback): name the image with `berth rollback {} --to TAG`",
                    s.name, s.name
                )));
            };
            let prev_image = previous
                .pointer("/TaskTemplate/ContainerSpec/Image")
                .and_then(|i| i.as_str())
                .map(|i| image_without_digest(i).to_string())
                .unwrap_or_default();
            let rc = raw.pointer("/Spec/RollbackConfig");
            let field = |k: &str| rc.and_then(|c| c.get(k)).cloned();
            let rollback_config = format!(
                "parallelism {}, order {}, monitor {} s, failure action {}",
                field("Parallelism").and_then(|v| v.as_i64()).unwrap_or(1),
                field("Order")
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| "stop-first".into()),
                field("Monitor")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(5_000_000_000)
                    / 1_000_000_000,
                field("FailureAction")
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| "pause".into()),
            );
            title = format!(
                "roll {} back to its previous spec ({} → {prev_image})",
                s.name, s.image
            );
            steps.push(Step::new(
                format!(
                    "the swarm's rollback of {}: image {} → {prev_image}; the service's rollback config: {rollback_config}",
                    s.name, s.image
                ),
                vec![format!("{base_call}&rollback=previous")],
            ));
            wait = wait_for(config, s, running.len() as u64);
            steps.push(wait_step(s, checked, wait, "rollback_completed"));
            image = Some(prev_image);
        }
        SwarmAction::Image(to) => {
            let target = image_for(&s.image, to);
            if target == s.image {
                return Err(RunbookError::Invalid(format!(
                    "{} already runs {target}: nothing to roll back to (`berth services` shows each service's image)",
                    s.name
                )));
            }
            let p = UpdatePolicy::for_service(s);
            title = format!("update {} to {target} ({} → {target})", s.name, s.image);
            steps.push(Step::new(
                format!(
                    "update {}'s image {} → {target}; update config: {}",
                    s.name,
                    s.image,
                    p.describe()
                ),
                vec![format!(
                    "{base_call} (TaskTemplate.ContainerSpec.Image, UpdateConfig)"
                )],
            ));
            wait = wait_for(config, s, running.len() as u64);
            steps.push(wait_step(s, checked, wait, "completed"));
            if s.fixed_host_port() {
                notes.push(
                    "a port is published in host mode: each old task stops before its new one starts (stop-first)"
                        .into(),
                );
            }
            notes.push(
                "a new task that fails (or never gets healthy) within the monitor window makes the swarm roll the service back to what it runs now".into(),
            );
            image = Some(target);
            policy = Some(p);
        }
        SwarmAction::Drain | SwarmAction::Activate => unreachable!("planned by plan_node"),
    }
    let mut plan = plan_base(engine, title, req.action.name(), &s.name, true);
    plan.confirm_as = s.name.clone();
    plan.confirm_full = match &s.stack {
        Some(st) => format!("{st}/{}", s.short_name()),
        None => s.name.clone(),
    };
    notes.insert(
        0,
        format!(
            "swarm service {} ({} {}, image {}, update status {})",
            s.name,
            s.mode.as_str(),
            s.replicas(),
            s.image,
            s.update_state.as_deref().unwrap_or("none")
        ),
    );
    plan.notes = notes;
    plan.steps = steps;
    plan.parameters = serde_json::json!({
        "swarm": true,
        "service": s.name,
        "action": req.action,
        "image": image,
        "update_config": policy,
    });
    plan.kind = PlanKind::Swarm(SwarmPlan {
        action: req.action.clone(),
        id: s.id.clone(),
        name: s.name.clone(),
        image,
        policy,
        moving: Vec::new(),
        wait,
    });
    Ok(plan)
}

fn wait_step(s: &ServiceInfo, checked: &str, wait: Duration, state: &str) -> Step {
    Step::new(
        format!(
            "wait until the update status is {state} and every task of {} is {checked} (at most {} s)",
            s.name,
            wait.as_secs()
        ),
        vec![format!(
            "GET /services/{0} · GET /tasks?service={0} (every 0.5 s)",
            short(&s.id)
        )],
    )
}

/// A tag names the same repository (`v1` → `repo:v1`); anything with `:`, `/` or `@` is a full
/// reference.
pub fn image_for(current: &str, to: &str) -> String {
    let to = to.trim();
    if to.contains(':') || to.contains('/') || to.contains('@') {
        return to.to_string();
    }
    let repo = match current.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => current,
    };
    format!("{repo}:{to}")
}

fn plan_node(
    engine: &Engine,
    snapshot: &Snapshot,
    req: &SwarmRequest,
) -> Result<Plan, RunbookError> {
    let name = req.name.trim();
    let node: &NodeInfo = snapshot
        .nodes
        .iter()
        .find(|n| n.hostname == name || (name.len() >= 6 && n.id.starts_with(name)))
        .ok_or_else(|| {
            RunbookError::NotFound(name.to_string(), "; list nodes with `berth nodes`".into())
        })?;
    let want = if req.action == SwarmAction::Drain {
        "drain"
    } else {
        "active"
    };
    if node.availability == want {
        return Err(RunbookError::Invalid(format!(
            "node {} is already {want}: nothing to do",
            node.hostname
        )));
    }
    let on_node: Vec<&TaskInfo> = snapshot
        .tasks
        .iter()
        .filter(|t| t.node_id == node.id && t.wants_running())
        .collect();
    let others: Vec<&str> = snapshot
        .nodes
        .iter()
        .filter(|n| n.id != node.id && n.availability == "active" && n.status == "ready")
        .map(|n| n.hostname.as_str())
        .collect();
    let global: BTreeSet<&str> = snapshot
        .services
        .iter()
        .filter(|s| s.mode == Mode::Global)
        .map(|s| s.id.as_str())
        .collect();
    let call = format!(
        "POST /nodes/{}/update?version={}",
        short(&node.id),
        node.version
    );
    let mut plan;
    let mut moving = Vec::new();
    let wait = Duration::from_secs(120);
    if req.action == SwarmAction::Drain {
        plan = plan_base(
            engine,
            format!(
                "drain node {} ({} task(s) move)",
                node.hostname,
                on_node.len()
            ),
            "drain",
            &node.hostname,
            true,
        );
        let dest = if others.is_empty() {
            "no other node is active and ready: replicated tasks will wait pending until one is"
                .to_string()
        } else {
            format!("to {}", others.join(", "))
        };
        for t in &on_node {
            let label = t.label();
            let line = if global.contains(t.service_id.as_str()) {
                format!("{label}: stopped (a global service does not run on a drained node)")
            } else {
                format!("{label}: moves {dest}")
            };
            plan.notes.push(line);
            moving.push((label, t.service_id.clone(), t.slot));
        }
        if on_node.is_empty() {
            plan.notes
                .push(format!("no task runs on {}", node.hostname));
        }
        plan.steps.push(Step::new(
            format!("set node {}'s availability to drain", node.hostname),
            vec![format!("{call} (Availability=drain)")],
        ));
        plan.steps.push(Step::new(
            format!(
                "wait until no task runs on {} and say where each went (at most {} s)",
                node.hostname,
                wait.as_secs()
            ),
            vec!["GET /tasks (every 0.5 s)".into()],
        ));
    } else {
        plan = plan_base(
            engine,
            format!("activate node {}", node.hostname),
            "activate",
            &node.hostname,
            true,
        );
        plan.notes.push(
            "running tasks do not move back by themselves: new and rescheduled tasks may be placed here again".into(),
        );
        plan.steps.push(Step::new(
            format!("set node {}'s availability to active", node.hostname),
            vec![format!("{call} (Availability=active)")],
        ));
    }
    plan.notes.insert(
        0,
        format!(
            "node {} ({}{}, {}, {}, {} task(s))",
            node.hostname,
            node.role,
            if node.leader { ", leader" } else { "" },
            node.availability,
            node.status,
            on_node.len()
        ),
    );
    plan.parameters =
        serde_json::json!({"swarm": true, "node": node.hostname, "action": req.action});
    plan.kind = PlanKind::Swarm(SwarmPlan {
        action: req.action.clone(),
        id: node.id.clone(),
        name: node.hostname.clone(),
        image: None,
        policy: None,
        moving,
        wait,
    });
    Ok(plan)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub(crate) async fn run(
    p: &SwarmPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    if p.action.on_node() {
        return run_node(p, engine, run).await;
    }
    let d = &engine.docker;
    let t = run.start(0).await;
    let current = match d
        .inspect_service(&p.id, None::<InspectServiceOptions>)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let msg = eng(engine, e);
            run.finish(0, t, Err(msg.clone())).await;
            return Err(msg);
        }
    };
    let before_update = current
        .update_status
        .as_ref()
        .and_then(|u| parse_time(u.started_at.as_deref()));
    let mut spec: ServiceSpec = current.spec.clone().unwrap_or_default();
    let before_image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    run.images_before
        .insert(image_without_digest(&before_image).to_string());
    let mut options = UpdateServiceOptions {
        version: current.version.as_ref().and_then(|v| v.index).unwrap_or(0) as i32,
        ..Default::default()
    };
    match &p.action {
        SwarmAction::Scale(n) => {
            spec.mode = Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(*n as i64),
                }),
                ..Default::default()
            });
        }
        SwarmAction::Restart => {
            let tt = spec.task_template.get_or_insert_with(Default::default);
            tt.force_update = Some(tt.force_update.unwrap_or(0) + 1);
        }
        SwarmAction::Image(to) => {
            let image = p.image.clone().unwrap_or_else(|| to.clone());
            let cs = spec
                .task_template
                .get_or_insert_with(Default::default)
                .container_spec
                .get_or_insert_with(Default::default);
            cs.image = Some(image);
        }
        SwarmAction::Rollback => options.rollback = Some("previous".into()),
        SwarmAction::Drain | SwarmAction::Activate => {}
    }
    if let Some(policy) = &p.policy {
        spec.update_config = Some(policy.config());
    }
    let sent = d.update_service(&p.id, spec, options, None).await;
    let said = match sent {
        Ok(r) => {
            for w in r.warnings.unwrap_or_default() {
                run.out(0, format!("engine: {w}")).await;
            }
            Ok(format!("the manager accepted the new spec of {}", p.name))
        }
        Err(e) => Err(eng(engine, e)),
    };
    if !run.finish(0, t, said.clone()).await {
        return Err(said.unwrap_err());
    }
    let t = run.start(1).await;
    let res = converge(p, engine, run, before_update).await;
    let ok = run.finish(1, t, res.clone()).await;
    if let Some(i) = &p.image
        && ok
    {
        run.images_after.insert(i.clone());
    }
    res
}

/// What the wait saw last.
struct Seen {
    state: Option<String>,
    message: Option<String>,
    new_update: bool,
    wanted: usize,
    running: usize,
    tasks: Vec<TaskInfo>,
}

async fn look(
    p: &SwarmPlan,
    engine: &Engine,
    before_update: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Seen, String> {
    let d = &engine.docker;
    let service = d
        .inspect_service(&p.id, None::<InspectServiceOptions>)
        .await
        .map_err(|e| eng(engine, e))?;
    let filters = std::collections::HashMap::from([("service".to_string(), vec![p.id.clone()])]);
    let tasks = d
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| eng(engine, e))?;
    let snap = crate::swarm::build(std::slice::from_ref(&service), &tasks, &[]);
    let info = snap.services.first();
    let update = service.update_status.as_ref();
    let wanted: Vec<&TaskInfo> = snap.tasks.iter().filter(|t| t.wants_running()).collect();
    Ok(Seen {
        state: info.and_then(|i| i.update_state.clone()),
        message: info.and_then(|i| i.update_message.clone()),
        new_update: update
            .and_then(|u| parse_time(u.started_at.as_deref()))
            .is_some_and(|s| before_update.is_none_or(|b| s > b)),
        wanted: wanted.len(),
        running: wanted.iter().filter(|t| t.is_running()).count(),
        tasks: snap.tasks.clone(),
    })
}

/// Errors of the tasks that failed since the change, newest first, at most five distinct.
fn task_errors(seen: &Seen, since: chrono::DateTime<chrono::Utc>) -> String {
    let mut failed: Vec<&TaskInfo> = seen
        .tasks
        .iter()
        .filter(|t| t.error.is_some() && t.created_at.is_none_or(|c| c >= since))
        .collect();
    failed.sort_by_key(|t| std::cmp::Reverse(t.since));
    let mut out: Vec<String> = Vec::new();
    for t in failed {
        let line = format!(
            "{} {}: {}",
            t.label(),
            t.state,
            t.error.as_deref().unwrap_or("")
        );
        if !out.contains(&line) {
            out.push(line);
        }
        if out.len() == 5 {
            break;
        }
    }
    if out.is_empty() {
        "none reported".into()
    } else {
        out.join("; ")
    }
}

async fn converge(
    p: &SwarmPlan,
    engine: &Engine,
    run: &mut Runner,
    before_update: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<String, String> {
    let started = std::time::Instant::now();
    let since = chrono::Utc::now() - chrono::Duration::seconds(2);
    let mut last_line = String::new();
    let mut seen: Option<Seen> = None;
    // Bounded by time and, as a second guard, by count (0.5 s apart).
    let max_polls = (p.wait.as_millis() / 500) as usize + 2;
    for _ in 0..max_polls {
        if run.cancelled() {
            return Err(
                "cancelled: the swarm goes on with the change; `berth services` shows where it is"
                    .into(),
            );
        }
        if started.elapsed() > p.wait {
            break;
        }
        let s = match look(p, engine, before_update).await {
            Ok(s) => s,
            Err(e) => {
                run.out(1, format!("could not read the service: {e}")).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let state = if s.new_update {
            s.state.clone().unwrap_or_else(|| "updating".into())
        } else {
            "not started".into()
        };
        let line = format!("{}/{} running · update {state}", s.running, s.wanted);
        if line != last_line {
            run.out(1, line.clone()).await;
            last_line = line;
        }
        let all_running = s.running == s.wanted;
        let image_ok = |s: &Seen| {
            p.image.as_ref().is_none_or(|i| {
                s.tasks
                    .iter()
                    .filter(|t| t.wants_running())
                    .all(|t| &t.image == i)
            })
        };
        let final_state = s.new_update.then(|| s.state.clone()).flatten();
        let done = match (&p.action, final_state.as_deref()) {
            (SwarmAction::Scale(n), _) => (all_running && s.wanted as u64 == *n)
                .then(|| Ok(format!("{} task(s) running", s.running))),
            (SwarmAction::Rollback, Some("rollback_completed")) if all_running && image_ok(&s) => {
                Some(Ok(format!("rolled back: {} task(s) running", s.running)))
            }
            (SwarmAction::Restart | SwarmAction::Image(_), Some("completed"))
                if all_running && image_ok(&s) =>
            {
                Some(Ok(format!(
                    "update completed: {} task(s) running",
                    s.running
                )))
            }
            (SwarmAction::Restart | SwarmAction::Image(_), Some("rollback_completed")) => {
                Some(Err(format!(
                    "the update failed and the swarm rolled {} back to what it ran before ({}); task errors: {}",
                    p.name,
                    s.message.as_deref().unwrap_or("no message"),
                    task_errors(&s, since)
                )))
            }
            (_, Some(st @ ("paused" | "rollback_paused"))) => Some(Err(format!(
                "the swarm {} the {} of {} ({}); task errors: {}; resume with `docker service update {}` or roll back",
                if st == "paused" {
                    "paused"
                } else {
                    "paused the rollback, stopping"
                },
                if st == "paused" { "update" } else { "rollback" },
                p.name,
                s.message.as_deref().unwrap_or("no message"),
                task_errors(&s, since),
                p.name
            ))),
            _ => None,
        };
        if let Some(res) = done {
            run.metrics.insert(
                "converge_ms".into(),
                serde_json::json!(started.elapsed().as_millis() as u64),
            );
            return res;
        }
        seen = Some(s);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (what, errors) = match &seen {
        Some(s) => (
            format!(
                "{}/{} running, update status {}",
                s.running,
                s.wanted,
                if s.new_update {
                    s.state.as_deref().unwrap_or("updating")
                } else {
                    "not started"
                }
            ),
            task_errors(s, since),
        ),
        None => ("the service could not be read".into(), "unknown".into()),
    };
    Err(format!(
        "{} did not converge within {} s ({what}); task errors: {errors}. The swarm goes on by itself: `berth ps {}` shows its tasks",
        p.name,
        p.wait.as_secs(),
        p.name
    ))
}

async fn run_node(p: &SwarmPlan, engine: &Engine, run: &mut Runner) -> Result<String, String> {
    let d = &engine.docker;
    let t = run.start(0).await;
    let res = async {
        let node = d.inspect_node(&p.id).await.map_err(|e| eng(engine, e))?;
        let mut spec = node.spec.clone().unwrap_or_default();
        spec.availability = Some(if p.action == SwarmAction::Drain {
            NodeSpecAvailabilityEnum::DRAIN
        } else {
            NodeSpecAvailabilityEnum::ACTIVE
        });
        let version = node.version.as_ref().and_then(|v| v.index).unwrap_or(0) as i64;
        d.update_node(&p.id, spec, UpdateNodeOptions { version })
            .await
            .map_err(|e| eng(engine, e))?;
        Ok(format!(
            "node {} is now {}",
            p.name,
            if p.action == SwarmAction::Drain {
                "drain"
            } else {
                "active"
            }
        ))
    }
    .await;
    if !run.finish(0, t, res.clone()).await || p.action != SwarmAction::Drain {
        return res;
    }
    let t = run.start(1).await;
    let res = watch_drain(p, engine, run).await;
    run.finish(1, t, res.clone()).await;
    res
}

/// Waits until nothing runs on the drained node, then says where each moved task went.
async fn watch_drain(p: &SwarmPlan, engine: &Engine, run: &mut Runner) -> Result<String, String> {
    let started = std::time::Instant::now();
    let max_polls = (p.wait.as_millis() / 500) as usize + 2;
    let mut last = usize::MAX;
    for _ in 0..max_polls {
        if run.cancelled() {
            return Err(
                "cancelled: the node stays drained; the swarm goes on moving its tasks".into(),
            );
        }
        let snap = crate::swarm::snapshot(engine)
            .await
            .map_err(|e| e.to_string())?;
        let left = snap
            .tasks
            .iter()
            .filter(|t| t.node_id == p.id && (t.is_running() || t.wants_running()))
            .count();
        if left != last {
            run.out(1, format!("{left} task(s) still on {}", p.name))
                .await;
            last = left;
        }
        if left == 0 {
            let mut went = Vec::new();
            for (label, service, slot) in &p.moving {
                let now = snap.tasks.iter().find(|t| {
                    &t.service_id == service
                        && t.slot == *slot
                        && t.wants_running()
                        && t.node_id != p.id
                });
                went.push(match now {
                    Some(t) => format!("{label} → {} ({})", t.node, t.state),
                    None => format!("{label} → not placed"),
                });
            }
            run.metrics.insert(
                "drain_ms".into(),
                serde_json::json!(started.elapsed().as_millis() as u64),
            );
            return Ok(if went.is_empty() {
                format!("{} drained; no task had to move", p.name)
            } else {
                format!("{} drained: {}", p.name, went.join(", "))
            });
        }
        if started.elapsed() > p.wait {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "tasks still run on {} after {} s: the node is drained, the swarm goes on moving them (`berth nodes`)",
        p.name,
        p.wait.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_specs_parse_or_say_how() {
        assert_eq!(parse_scale("web=3").unwrap(), ("web".into(), 3));
        assert_eq!(
            parse_scale(" shop_web = 0").unwrap(),
            ("shop_web".into(), 0)
        );
        for bad in ["web", "web=", "=3", "web=-1", "web=x"] {
            let e = parse_scale(bad).unwrap_err().to_string();
            assert!(e.contains("SERVICE=REPLICAS"), "{bad}: {e}");
        }
        assert!(
            parse_scale("web=5000")
                .unwrap_err()
                .to_string()
                .contains("1000")
        );
    }

    #[test]
    fn a_tag_names_the_same_repository() {
        assert_eq!(image_for("berth-test/web:v2", "v1"), "berth-test/web:v1");
        assert_eq!(
            image_for("localhost:5000/web:v2", "v1"),
            "localhost:5000/web:v1"
        );
        assert_eq!(image_for("web", "v1"), "web:v1");
        assert_eq!(image_for("web:v2", "other/img:3"), "other/img:3");
    }

    #[test]
    fn update_policy_starts_first_unless_a_host_port_is_published() {
        let mut s = ServiceInfo {
            id: "x".into(),
            name: "web".into(),
            stack: None,
            mode: Mode::Replicated,
            running: 1,
            desired: 1,
            image: "web:v1".into(),
            update_state: None,
            update_message: None,
            ports: vec![],
            has_healthcheck: true,
            version: 1,
            updated_at: None,
        };
        let p = UpdatePolicy::for_service(&s);
        assert_eq!(
            p.describe(),
            "parallelism 1, order start-first, monitor 5 s, failure action rollback"
        );
        s.ports.push(crate::swarm::Port {
            published: Some(8080),
            target: 80,
            protocol: "tcp".into(),
            mode: "host".into(),
        });
        assert_eq!(UpdatePolicy::for_service(&s).order, "stop-first");
        let c = UpdatePolicy::for_service(&s).config();
        assert_eq!(c.monitor, Some(5_000_000_000));
        assert_eq!(
            c.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
    }
}
