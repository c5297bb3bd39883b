//! Docker Swarm as the engine reports it: whether this engine is a manager, and its services (with
//! their stack), tasks and nodes. Nothing here knows about the terminal; the CLI (`berth services`,
//! `berth nodes`), the console's swarm views and the runbook's service actions read the same model.

pub mod logs;
pub mod reach;

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfigPublishModeEnum, Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, Service,
    ServiceUpdateStatusStateEnum, Task, TaskState,
};
use bollard::query_parameters::{ListNodesOptions, ListServicesOptions, ListTasksOptions};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::model::{Health, parse_time};
use crate::engine::{Engine, EngineError};

/// The label `docker stack deploy` puts on every service of a stack.
pub const LABEL_STACK: &str = "com.docker.stack.namespace";
/// The label swarm puts on a task's container: the service it belongs to.
pub const LABEL_SERVICE_NAME: &str = "com.docker.swarm.service.name";

/// What this engine is to a swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    /// Not in a swarm (or still joining, or in error): containers only.
    None,
    /// A worker: it runs tasks but cannot list the swarm. `managers` are the addresses of the
    /// managers it knows; one of them is the leader.
    Worker {
        node_id: String,
        managers: Vec<String>,
    },
    /// A manager: services, tasks and nodes can be listed and changed here.
    Manager { node_id: String },
}

impl Role {
    pub fn is_manager(&self) -> bool {
        matches!(self, Role::Manager { .. })
    }

    /// Why the swarm cannot be shown from here, and where to go instead (workers only).
    pub fn manager_needed(&self) -> Option<String> {
        match self {
            Role::Worker { managers, .. } => Some(worker_message(managers)),
            _ => None,
        }
    }
}

/// The sentence for a worker: a manager is needed, here is where the managers are.
pub fn worker_message(managers: &[String]) -> String {
    let whom = match managers {
        [] => "no manager is known to it".to_string(),
        [one] => format!("its manager (the leader) is at {one}"),
        many => format!(
            "its managers are at {} (the leader is one of them)",
            many.join(", ")
        ),
    };
    format!(
        "this engine is a swarm worker: services, tasks and nodes are only known to a manager; {whom}. Connect berth to a manager"
    )
}

/// Reads `/info` and says whether this engine is a swarm manager, a worker or neither.
pub async fn detect(engine: &Engine) -> Result<Role, EngineError> {
    let info = engine
        .docker
        .info()
        .await
        .map_err(|e| EngineError::from_bollard(&engine.target.endpoint.to_string(), e))?;
    let Some(swarm) = info.swarm else {
        return Ok(Role::None);
    };
    let active = swarm
        .local_node_state
        .is_some_and(|s| s.to_string() == "active");
    if !active {
        return Ok(Role::None);
    }
    let node_id = swarm.node_id.unwrap_or_default();
    if swarm.control_available == Some(true) {
        return Ok(Role::Manager { node_id });
    }
    let managers = swarm
        .remote_managers
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.addr)
        .collect();
    Ok(Role::Worker { node_id, managers })
}

/// Replicated (a fixed number of tasks), global (one per eligible node), or a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Replicated,
    Global,
    ReplicatedJob,
    GlobalJob,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Replicated => "replicated",
            Mode::Global => "global",
            Mode::ReplicatedJob => "replicated-job",
            Mode::GlobalJob => "global-job",
        }
    }
}

/// A published port as `docker service ls` shows it: `*:8080->80/tcp`, `host` mode marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub published: Option<i64>,
    pub target: i64,
    pub protocol: String,
    /// `ingress` (the routing mesh) or `host` (bound on the node running the task).
    pub mode: String,
}

impl Port {
    pub fn short(&self) -> String {
        let published = self.published.map(|p| p.to_string()).unwrap_or_default();
        let host = if self.mode == "host" { " (host)" } else { "" };
        format!("*:{published}->{}/{}{host}", self.target, self.protocol)
    }
}

/// One service, as the lists and the CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    /// The stack (`docker stack deploy`), from the service's label.
    pub stack: Option<String>,
    pub mode: Mode,
    pub running: u64,
    pub desired: u64,
    /// `repo:tag`, without the digest swarm pins.
    pub image: String,
    /// The update status: updating, paused, completed, rollback_started, rollback_paused,
    /// rollback_completed; `None` when the service was never updated.
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    pub ports: Vec<Port>,
    /// The image's health check is kept (tasks stay `starting` until healthy).
    pub has_healthcheck: bool,
    /// Spec version: the index an update must quote.
    pub version: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ServiceInfo {
    /// `stack/name` minus the stack prefix swarm adds (`shop_web` in stack `shop` shows `web`).
    pub fn short_name(&self) -> &str {
        match &self.stack {
            Some(s) => self
                .name
                .strip_prefix(s.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
                .unwrap_or(&self.name),
            None => &self.name,
        }
    }

    /// `2/3`; a global service counts its nodes.
    pub fn replicas(&self) -> String {
        format!("{}/{}", self.running, self.desired)
    }

    /// Whether a port is published in host mode: two tasks cannot bind it on one node at once,
    /// so an update cannot start the new task before stopping the old.
    pub fn fixed_host_port(&self) -> bool {
        self.ports
            .iter()
            .any(|p| p.mode == "host" && p.published.is_some_and(|p| p > 0))
    }
}

/// One task: a slot of a service (or a node of a global one) at one spec version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInfo {
    pub id: String,
    pub service_id: String,
    pub service: String,
    /// The slot of a replicated service; global tasks have none.
    pub slot: Option<i64>,
    pub node_id: String,
    /// The node's hostname when known.
    pub node: String,
    pub state: String,
    pub since: Option<DateTime<Utc>>,
    pub desired_state: String,
    /// The task's error (why it failed or was rejected).
    pub error: Option<String>,
    pub message: Option<String>,
    pub container_id: Option<String>,
    pub image: String,
    /// Health of the task's container, when it runs on this engine's own node.
    pub health: Option<Health>,
    pub created_at: Option<DateTime<Utc>>,
}

impl TaskInfo {
    /// `web.2` / `web.<node>`: how `docker service ps` names a task.
    pub fn label(&self) -> String {
        match self.slot {
            Some(s) => format!("{}.{s}", self.service),
            None => format!("{}.{}", self.service, short_node(&self.node_id)),
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    pub fn wants_running(&self) -> bool {
        self.desired_state == "running"
    }
}

fn short_node(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// One node of the swarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    pub leader: bool,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready`, `down`, `unknown`, `disconnected`.
    pub status: String,
    pub engine_version: String,
    pub address: String,
    /// Tasks the swarm wants running on this node.
    pub tasks: usize,
    pub cpus: f64,
    pub memory_bytes: u64,
    pub version: u64,
}

/// Services, tasks and nodes read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub services: Vec<ServiceInfo>,
    pub tasks: Vec<TaskInfo>,
    pub nodes: Vec<NodeInfo>,
    /// The node of the engine berth is connected to (the manager's own), when known: its
    /// tasks' containers are the ones berth can read stats and health of.
    pub local_node: Option<String>,
}

impl Snapshot {
    /// Services by stack, stacks by name, lone services (no stack) last.
    pub fn stacks(&self) -> Vec<(Option<String>, Vec<&ServiceInfo>)> {
        let mut by: BTreeMap<(bool, Option<String>), Vec<&ServiceInfo>> = BTreeMap::new();
        for s in &self.services {
            by.entry((s.stack.is_none(), s.stack.clone()))
                .or_default()
                .push(s);
        }
        by.into_iter()
            .map(|((_, stack), mut members)| {
                members.sort_by(|a, b| a.name.cmp(&b.name));
                (stack, members)
            })
            .collect()
    }

    /// The service's tasks, newest spec first within a slot, the ones wanted running first.
    pub fn tasks_of(&self, service_id: &str) -> Vec<&TaskInfo> {
        let mut out: Vec<&TaskInfo> = self
            .tasks
            .iter()
            .filter(|t| t.service_id == service_id)
            .collect();
        out.sort_by(|a, b| {
            (
                !a.wants_running(),
                a.slot,
                &a.node,
                std::cmp::Reverse(a.created_at),
            )
                .cmp(&(
                    !b.wants_running(),
                    b.slot,
                    &b.node,
                    std::cmp::Reverse(b.created_at),
                ))
        });
        out
    }

    /// Whether the task runs on the engine berth is connected to.
    pub fn is_local(&self, task: &TaskInfo) -> bool {
        self.local_node
            .as_deref()
            .is_some_and(|n| !n.is_empty() && n == task.node_id)
    }

    /// The containers of running tasks on the engine berth is connected to: the ones whose
    /// stats the collector can read.
    pub fn local_running_containers(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t.is_running() && self.is_local(t))
            .filter_map(|t| t.container_id.clone())
            .collect()
    }

    /// The leader's hostname, when a node says it leads.
    pub fn leader(&self) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.leader)
            .map(|n| n.hostname.as_str())
    }
}

/// What a name on the command line means on a swarm.
#[derive(Debug, Clone, PartialEq)]
pub enum Named<'a> {
    Service(&'a ServiceInfo),
    Stack(String, Vec<&'a ServiceInfo>),
}

impl Snapshot {
    /// A service by name or id (or `stack/service`), else a stack by name.
    pub fn find(&self, name: &str) -> Option<Named<'_>> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        if let Some(s) = self.services.iter().find(|s| {
            s.name == name
                || (name.len() >= 6 && s.id.starts_with(name))
                || s.stack.as_deref().is_some_and(|st| {
                    name.split_once('/')
                        .is_some_and(|(a, b)| a == st && b == s.short_name())
                })
        }) {
            return Some(Named::Service(s));
        }
        let members: Vec<&ServiceInfo> = self
            .services
            .iter()
            .filter(|s| s.stack.as_deref() == Some(name))
            .collect();
        (!members.is_empty()).then(|| Named::Stack(name.to_string(), members))
    }

    /// A service by name or id only.
    pub fn service(&self, name: &str) -> Option<&ServiceInfo> {
        match self.find(name) {
            Some(Named::Service(s)) => Some(s),
            _ => None,
        }
    }
}

fn api_err(engine: &Engine, e: bollard::errors::Error) -> EngineError {
    EngineError::from_bollard(&engine.target.endpoint.to_string(), e)
}

/// Services (with their running/desired counts), every task and every node. Manager only.
pub async fn snapshot(engine: &Engine) -> Result<Snapshot, EngineError> {
    let d = &engine.docker;
    let (services, tasks, nodes) = tokio::try_join!(
        async {
            d.list_services(Some(ListServicesOptions {
                filters: None,
                status: Some(true),
            }))
            .await
            .map_err(|e| api_err(engine, e))
        },
        async {
            d.list_tasks(None::<ListTasksOptions>)
                .await
                .map_err(|e| api_err(engine, e))
        },
        async {
            d.list_nodes(None::<ListNodesOptions>)
                .await
                .map_err(|e| api_err(engine, e))
        },
    )?;
    Ok(build(&services, &tasks, &nodes))
}

/// The swarm for a console view: a manager's snapshot with the health of the tasks on its own
/// node, else the sentence that says why there is none (a worker names its managers).
pub async fn read_for_view(engine: &Engine) -> Result<Snapshot, String> {
    let role = detect(engine).await.map_err(|e| e.to_string())?;
    let local_node = match &role {
        Role::Manager { node_id } => node_id.clone(),
        Role::Worker { managers, .. } => return Err(worker_message(managers)),
        Role::None => {
            return Err(
                "this engine is not in a swarm: the container list (Esc) shows what runs here"
                    .into(),
            );
        }
    };
    let mut snapshot = snapshot(engine).await.map_err(|e| e.to_string())?;
    snapshot.local_node = Some(local_node);
    if let Ok(containers) = engine.containers().await {
        add_local_health(&mut snapshot, &containers);
    }
    Ok(snapshot)
}

/// Fills the health of tasks whose container runs on this engine (the manager's own node).
pub fn add_local_health(snapshot: &mut Snapshot, containers: &[crate::engine::model::Container]) {
    let by_id: HashMap<&str, Health> = containers
        .iter()
        .map(|c| (c.id.as_str(), c.current_health()))
        .collect();
    for t in &mut snapshot.tasks {
        if let Some(id) = &t.container_id
            && let Some(h) = by_id.get(id.as_str())
        {
            t.health = Some(*h);
        }
    }
}

/// The model from the engine's answers.
pub fn build(services: &[Service], tasks: &[Task], nodes: &[Node]) -> Snapshot {
    let service_names: HashMap<&str, &str> = services
        .iter()
        .filter_map(|s| Some((s.id.as_deref()?, s.spec.as_ref()?.name.as_deref()?)))
        .collect();
    let hostnames: HashMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| {
            Some((
                n.id.as_deref()?,
                n.description.as_ref()?.hostname.as_deref()?,
            ))
        })
        .collect();
    let tasks: Vec<TaskInfo> = tasks
        .iter()
        .map(|t| task_info(t, &service_names, &hostnames))
        .collect();
    let mut nodes: Vec<NodeInfo> = nodes.iter().map(node_info).collect();
    for n in &mut nodes {
        n.tasks = tasks
            .iter()
            .filter(|t| t.node_id == n.id && t.wants_running())
            .count();
    }
    nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    let mut services: Vec<ServiceInfo> = services.iter().map(service_info).collect();
    services.sort_by(|a, b| (&a.stack, &a.name).cmp(&(&b.stack, &b.name)));
    Snapshot {
        services,
        tasks,
        nodes,
        local_node: None,
    }
}

/// `repo:tag@sha256:…` → `repo:tag`: swarm pins the digest; people name the tag.
pub fn image_without_digest(image: &str) -> &str {
    image.split_once('@').map(|(i, _)| i).unwrap_or(image)
}

fn service_info(s: &Service) -> ServiceInfo {
    let spec = s.spec.clone().unwrap_or_default();
    let mode = match &spec.mode {
        Some(m) if m.global.is_some() => Mode::Global,
        Some(m) if m.replicated_job.is_some() => Mode::ReplicatedJob,
        Some(m) if m.global_job.is_some() => Mode::GlobalJob,
        _ => Mode::Replicated,
    };
    let container = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref());
    let image = container
        .and_then(|c| c.image.as_deref())
        .map(image_without_digest)
        .unwrap_or_default()
        .to_string();
    // A spec health check with test NONE turns the image's off; otherwise the image's applies,
    // which the manager cannot see: say there is one unless it is switched off.
    let has_healthcheck = container
        .and_then(|c| c.health_check.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_none_or(|t| t.first().is_none_or(|f| f != "NONE"));
    let status = s.service_status.clone().unwrap_or_default();
    let update = s.update_status.as_ref();
    let ports = s
        .endpoint
        .as_ref()
        .and_then(|e| e.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| Port {
            published: p.published_port,
            target: p.target_port.unwrap_or(0),
            protocol: p
                .protocol
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "tcp".into()),
            mode: match p.publish_mode {
                Some(EndpointPortConfigPublishModeEnum::HOST) => "host".into(),
                _ => "ingress".into(),
            },
        })
        .collect();
    ServiceInfo {
        id: s.id.clone().unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        stack: spec
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_STACK))
            .cloned(),
        mode,
        running: status.running_tasks.unwrap_or(0),
        desired: status.desired_tasks.unwrap_or(0),
        image,
        update_state: update
            .and_then(|u| u.state)
            .filter(|s| *s != ServiceUpdateStatusStateEnum::EMPTY)
            .map(|s| s.to_string()),
        update_message: update
            .and_then(|u| u.message.clone())
            .filter(|m| !m.is_empty()),
        ports,
        has_healthcheck,
        version: s.version.as_ref().and_then(|v| v.index).unwrap_or(0),
        updated_at: parse_time(s.updated_at.as_deref()),
    }
}

fn task_info(
    t: &Task,
    service_names: &HashMap<&str, &str>,
    hostnames: &HashMap<&str, &str>,
) -> TaskInfo {
    let status = t.status.clone().unwrap_or_default();
    let service_id = t.service_id.clone().unwrap_or_default();
    let node_id = t.node_id.clone().unwrap_or_default();
    TaskInfo {
        id: t.id.clone().unwrap_or_default(),
        service: service_names
            .get(service_id.as_str())
            .map(|s| s.to_string())
            .unwrap_or_else(|| short_node(&service_id).to_string()),
        service_id,
        slot: t.slot,
        node: hostnames
            .get(node_id.as_str())
            .map(|s| s.to_string())
            .unwrap_or_default(),
        node_id,
        state: state_str(status.state),
        since: parse_time(status.timestamp.as_deref()),
        desired_state: state_str(t.desired_state),
        error: status.err.filter(|e| !e.is_empty()),
        message: status.message.filter(|m| !m.is_empty()),
        container_id: status
            .container_status
            .and_then(|c| c.container_id)
            .filter(|c| !c.is_empty()),
        image: t
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.image.as_deref())
            .map(image_without_digest)
            .unwrap_or_default()
            .to_string(),
        health: None,
        created_at: parse_time(t.created_at.as_deref()),
    }
}

fn state_str(s: Option<TaskState>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into())
}

fn node_info(n: &Node) -> NodeInfo {
    let spec = n.spec.clone().unwrap_or_default();
    let desc = n.description.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let resources = desc.resources.unwrap_or_default();
    NodeInfo {
        id: n.id.clone().unwrap_or_default(),
        hostname: desc.hostname.unwrap_or_default(),
        role: match spec.role {
            Some(NodeSpecRoleEnum::MANAGER) => "manager".into(),
            _ => "worker".into(),
        },
        leader: n
            .manager_status
            .as_ref()
            .and_then(|m| m.leader)
            .unwrap_or(false),
        availability: match spec.availability {
            Some(NodeSpecAvailabilityEnum::PAUSE) => "pause".into(),
            Some(NodeSpecAvailabilityEnum::DRAIN) => "drain".into(),
            _ => "active".into(),
        },
        status: status
            .state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        engine_version: desc
            .engine
            .and_then(|e| e.engine_version)
            .unwrap_or_default(),
        address: status.addr.unwrap_or_default(),
        tasks: 0,
        cpus: resources.nano_cpus.unwrap_or(0) as f64 / 1e9,
        memory_bytes: resources.memory_bytes.unwrap_or(0).max(0) as u64,
        version: n.version.as_ref().and_then(|v| v.index).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
