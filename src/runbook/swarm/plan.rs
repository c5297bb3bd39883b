//! Planning a swarm action: what the manager says now, the spec change, and the bounded wait.

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::postcondition::{Expect, Promise};
use super::super::{Plan, PlanKind, RunbookError, Step, health_settings, plan_base};
use super::placement::{self, Destination, Needs, NodeFit};
use super::{SwarmAction, SwarmPlan, SwarmRequest, UpdatePolicy, spec};
use crate::config::Config;
use crate::engine::Engine;
use crate::swarm::{Mode, Named, NodeInfo, ServiceInfo, Snapshot, TaskInfo, image_without_digest};

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
        return plan_node(engine, &snapshot, req).await;
    }
    let service = match snapshot.find(&req.name) {
        Some(Named::Service(s)) => s,
        Some(Named::Stack(stack, members)) => {
            return plan_stack(engine, config, &snapshot, &stack, &members, req).await;
        }
        None => {
            return Err(RunbookError::NotFound(
                req.name.clone(),
                "; list swarm services with `berth services`".into(),
            ));
        }
    };
    plan_service(engine, config, &snapshot, service, req).await
}

/// Restart or rollback of every service of a stack, one plan: each service's own change in
/// turn. A rollback leaves out the services that have no previous spec (and says so); a rollback
/// `--to TAG` moves each service to that tag of its own repository, leaving out (and naming) the
/// services that already run it.
async fn plan_stack(
    engine: &Engine,
    config: &Config,
    snapshot: &Snapshot,
    stack: &str,
    members: &[&ServiceInfo],
    req: &SwarmRequest,
) -> Result<Plan, RunbookError> {
    let names = || {
        members
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !matches!(
        req.action,
        SwarmAction::Restart | SwarmAction::Rollback | SwarmAction::Image(_)
    ) {
        return Err(RunbookError::Invalid(format!(
            "{stack} is a stack: {} acts on one of its services ({}); restart and rollback take a whole stack",
            req.action.name(),
            names()
        )));
    }
    // One tag for every service, each on its own repository; a full reference names one image,
    // which the services of a stack do not share.
    if let SwarmAction::Image(to) = &req.action
        && (to.contains(':') || to.contains('/') || to.contains('@'))
    {
        return Err(RunbookError::Invalid(format!(
            "{stack} is a stack: --to takes a tag that each service's own repository has (e.g. `berth rollback {stack} --to v1`), not an image ({to}); for one service's image use `berth rollback SERVICE --to {to}` with one of {}",
            names()
        )));
    }
    let mut planned: Vec<Plan> = Vec::new();
    let mut left = Vec::new();
    for s in members {
        let one = SwarmRequest {
            action: req.action.clone(),
            name: s.name.clone(),
        };
        match plan_service(engine, config, snapshot, s, &one).await {
            Ok(mut p) => {
                let first = planned.iter().map(|p| p.steps.len()).sum();
                if let PlanKind::Swarm(sp) = &mut p.kind {
                    sp.step = first;
                }
                planned.push(p);
            }
            Err(RunbookError::Invalid(why)) if req.action != SwarmAction::Restart => left.push(why),
            Err(e) => return Err(e),
        }
    }
    if planned.is_empty() {
        return Err(RunbookError::Invalid(format!(
            "no service of stack {stack} can be rolled back: {}",
            left.join("; ")
        )));
    }
    let (verb, to) = match &req.action {
        SwarmAction::Restart => ("restart", String::new()),
        SwarmAction::Image(to) => ("roll back", format!(" to {to}")),
        _ => ("roll back", String::new()),
    };
    let mut plan = plan_base(
        engine,
        format!(
            "{verb} stack {stack}{to} ({} service(s), one after another)",
            planned.len()
        ),
        req.action.name(),
        stack,
        true,
    );
    plan.confirm_as = stack.to_string();
    plan.confirm_full = stack.to_string();
    plan.notes.push(format!(
        "stack {stack}: each service changes only once the one before has converged; the first failure stops the run and the services before it stay changed"
    ));
    for p in &planned {
        plan.notes.push(format!("· {}", p.title));
    }
    for why in &left {
        plan.notes.push(format!("left as it is: {why}"));
    }
    plan.steps = planned.iter().flat_map(|p| p.steps.clone()).collect();
    plan.promises = planned.iter().flat_map(|p| p.promises.clone()).collect();
    plan.parameters = serde_json::json!({
        "swarm": true,
        "stack": stack,
        "action": req.action,
        "services": planned.iter().map(|p| p.subject.clone()).collect::<Vec<_>>(),
    });
    plan.kind = PlanKind::SwarmStack(super::StackPlan {
        stack: stack.to_string(),
        members: planned,
    });
    Ok(plan)
}

/// The bounded wait: each task in turn gets its health budget, the monitor window and time to
/// pull and start; at least a minute, at most fifteen.
fn wait_for(config: &Config, service: &ServiceInfo, tasks: u64) -> Duration {
    let health = health_settings(config, service.stack.as_deref(), Some(service.short_name()));
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
    // The spec as the engine wrote it: the plan's diff and its promise are of these bytes.
    let raw = engine
        .get_json(&format!("/services/{}", s.id))
        .await
        .map_err(RunbookError::Engine)?;
    let spec_now = raw.get("Spec").cloned().unwrap_or_default();
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let mut image = None;
    let mut policy = None;
    let mut promised_spec = None;
    let mut promises = Vec::new();
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
            if *n == 0 && engine.target.is_production() {
                return Err(RunbookError::Invalid(format!(
                    "scaling {} to 0 on production stops every task of it: berth refuses; stop it with `docker service scale {}=0` if you mean it",
                    s.name, s.name
                )));
            }
            let running_ids: Vec<String> = running
                .iter()
                .filter(|t| t.is_running())
                .map(|t| t.id.clone())
                .collect();
            let keep = running_ids.len().min(*n as usize);
            if keep > 0 {
                promises.push(Promise::new(
                    format!(
                        "{}: {keep} task(s) that run now keep running (none restarted)",
                        s.name
                    ),
                    Expect::TasksKept {
                        service: s.id.clone(),
                        tasks: running_ids,
                        keep,
                    },
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
            promised_spec = Some(previous.clone());
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
    let promised_spec = match promised_spec {
        Some(p) => p,
        None => spec::edit(&spec_now, &req.action, image.as_deref(), policy.as_ref())
            .map_err(|e| RunbookError::Invalid(format!("{}: {e}", s.name)))?,
    };
    let changes = spec::differences(&spec_now, &promised_spec);
    let spec_text = spec::describe(&changes);
    notes.insert(0, format!("{}: {spec_text}", s.name));
    let replicas = match (&req.action, s.mode) {
        (SwarmAction::Scale(n), _) => Some(*n),
        (_, Mode::Replicated) => promised_spec
            .pointer("/Mode/Replicated/Replicas")
            .and_then(serde_json::Value::as_u64),
        _ => None,
    };
    let task_image = image
        .as_deref()
        .map(|i| image_without_digest(i).to_string());
    promises.insert(
        0,
        Promise::new(
            format!(
                "{}: {}{}{}",
                s.name,
                match replicas {
                    Some(r) => format!("{r} task(s) running"),
                    None => "one task per eligible node running".into(),
                },
                if s.has_healthcheck { " healthy" } else { "" },
                task_image
                    .as_deref()
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default(),
            ),
            Expect::ServiceTasks {
                service: s.id.clone(),
                replicas,
                image: task_image,
            },
        ),
    );
    promises.insert(
        0,
        Promise::new(
            format!("{}: {spec_text}", s.name),
            Expect::ServiceSpec {
                service: s.id.clone(),
                spec: promised_spec,
            },
        ),
    );
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
    plan.promises = promises;
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
        step: 0,
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

async fn plan_node(
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
        let others_open = snapshot
            .nodes
            .iter()
            .any(|n| n.id != node.id && n.availability == "active" && n.status == "ready");
        if !others_open && !on_node.is_empty() {
            let manager = if node.role == "manager"
                && !snapshot
                    .nodes
                    .iter()
                    .any(|n| n.id != node.id && n.role == "manager")
            {
                " and its last manager"
            } else {
                ""
            };
            return Err(RunbookError::Invalid(format!(
                "node {} is the swarm's last active node{manager}: draining it stops all {} of its task(s) and no node could take them. Activate or join another node first (`berth nodes`), or scale the services down",
                node.hostname,
                on_node.len()
            )));
        }
        // Where each task can go, counted as the scheduler counts: the engine's own JSON of
        // every service (constraints, reservations) and node (role, labels, resources).
        let services = engine
            .get_json("/services")
            .await
            .map_err(RunbookError::Engine)?;
        let nodes = engine
            .get_json("/nodes")
            .await
            .map_err(RunbookError::Engine)?;
        let needs: std::collections::BTreeMap<String, Needs> = services
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s.get("ID")?.as_str()?.to_string(), Needs::of(s))))
            .collect();
        let mut fits: Vec<NodeFit> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .map(NodeFit::of)
            .filter(|n| n.id != node.id)
            .collect();
        let no_needs = Needs::default();
        for t in snapshot
            .tasks
            .iter()
            .filter(|t| t.wants_running() && t.node_id != node.id)
        {
            if let Some(f) = fits.iter_mut().find(|f| f.id == t.node_id) {
                f.holds(&t.service_id, needs.get(&t.service_id).unwrap_or(&no_needs));
            }
        }
        let mut lines = Vec::new();
        let mut stranded = 0;
        let mut moves = 0;
        let mut touched: Vec<String> = Vec::new();
        for t in &on_node {
            let label = t.label();
            let line = if global.contains(t.service_id.as_str()) {
                format!("{label}: stopped (a global service does not run on a drained node)")
            } else {
                if !touched.contains(&t.service_id) {
                    touched.push(t.service_id.clone());
                }
                match placement::place(
                    &mut fits,
                    &t.service_id,
                    needs.get(&t.service_id).unwrap_or(&no_needs),
                ) {
                    Destination::Node(n) => {
                        moves += 1;
                        format!("{label}: moves (room on {n})")
                    }
                    Destination::Nowhere(why) => {
                        stranded += 1;
                        format!("{label}: stops: {why}")
                    }
                }
            };
            lines.push(line);
            moving.push((label, t.service_id.clone(), t.slot));
        }
        let stops = if stranded > 0 {
            format!(": {stranded} task(s) will stop: no node can take them")
        } else {
            String::new()
        };
        plan = plan_base(
            engine,
            format!("drain node {} ({moves} task(s) move){stops}", node.hostname),
            "drain",
            &node.hostname,
            true,
        );
        if stranded > 0 {
            plan.notes.push(format!(
                "{stranded} task(s) will stop: no node can take them; their services run below their desired count until a node can (the run ends failed)"
            ));
        }
        plan.notes.extend(lines);
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
                "wait until no task runs on {} and its tasks run elsewhere, and say where each went (at most {} s)",
                node.hostname,
                wait.as_secs()
            ),
            vec!["GET /tasks (every 0.5 s)".into()],
        ));
        plan.promises.push(Promise::new(
            format!("node {} is drained", node.hostname),
            Expect::NodeAvailability {
                node: node.id.clone(),
                availability: "drain".into(),
            },
        ));
        plan.promises.push(Promise::new(
            format!("no task runs on {}", node.hostname),
            Expect::NodeEmpty {
                node: node.id.clone(),
            },
        ));
        if !touched.is_empty() {
            let names: Vec<&str> = touched
                .iter()
                .filter_map(|id| snapshot.services.iter().find(|s| &s.id == id))
                .map(|s| s.name.as_str())
                .collect();
            plan.promises.push(Promise::new(
                format!(
                    "{}: every task the service wants runs elsewhere",
                    names.join(", ")
                ),
                Expect::ServicesAtDesired { services: touched },
            ));
        }
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
        plan.promises.push(Promise::new(
            format!("node {} is active", node.hostname),
            Expect::NodeAvailability {
                node: node.id.clone(),
                availability: "active".into(),
            },
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
        step: 0,
    });
    Ok(plan)
}

pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
