//! What a plan promises about the engine's end state, and the one check of it after the run.
//!
//! Every plan states, next to its steps, what will be true on the engine once it has run
//! ([`Plan::promises`]: the words the operator reads in the confirmation). When the run ends,
//! [`check`] reads the engine and compares: each promise that does not hold is a difference, and a
//! run with a difference has failed, whatever its steps reported. berth's word is the engine's
//! state, never what berth sent.
//!
//! A plan kind adds its promises at plan time (`Promise::new(text, Expect::…)`) and the
//! expectation is checked here, by reading the engine, not by trusting the steps.

use std::time::Duration;

use serde::Serialize;

use crate::engine::Engine;

use super::Plan;

/// The longest the end-state check may take: the run is over, its result must not wait on a
/// dead link (a check that cannot read the engine in time is itself a difference).
pub const CHECK_BUDGET: Duration = Duration::from_secs(20);

/// One promise of a plan: what the operator reads, and what berth reads back to check it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Promise {
    pub text: String,
    #[serde(skip)]
    pub expect: Expect,
}

impl Promise {
    pub fn new(text: impl Into<String>, expect: Expect) -> Promise {
        Promise {
            text: text.into(),
            expect,
        }
    }
}

/// What the engine must show. Each variant is read and compared in [`check_one`]; each names
/// what it reads by id, so a check never guesses which object a plan meant.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A container ends in this state.
    Container { id: String, end: ContainerEnd },
    /// These objects no longer exist on the engine (what a prune removes).
    Gone { kind: Resource, names: Vec<String> },
    /// A swarm service's spec, as the engine's JSON, is this one (fields the engine leaves out
    /// count as their zero value).
    ServiceSpec {
        service: String,
        spec: serde_json::Value,
    },
    /// Every task of a swarm service that is wanted running runs (a task with a health check is
    /// held in `starting` until it passes): `replicas` of them when given, each on `image`
    /// (without its digest) when given.
    ServiceTasks {
        service: String,
        replicas: Option<u64>,
        image: Option<String>,
    },
    /// At least `keep` of these tasks of a swarm service still run: none was replaced.
    TasksKept {
        service: String,
        tasks: Vec<String>,
        keep: usize,
    },
    /// Each of these swarm services runs as many tasks as it wants.
    ServicesAtDesired { services: Vec<String> },
    /// A swarm node's availability (`active`, `drain`).
    NodeAvailability { node: String, availability: String },
    /// No task runs on a swarm node.
    NodeEmpty { node: String },
    // ---- compose rollback, deploy and recover (src/runbook/rollback/) ----
    /// The containers `names` run `image` (a reference or an id, read back as the engine's image
    /// id), each healthy when it has a health check; for a compose service (`service` set) they
    /// are exactly its running replicas.
    ReplicasRun {
        project: Option<String>,
        service: Option<String>,
        names: Vec<String>,
        image: String,
    },
    /// `name` resolves on `network` (its embedded DNS: container names and network aliases of the
    /// running containers on it) to exactly the containers `containers`.
    ResolvesTo {
        network: String,
        name: String,
        containers: Vec<String>,
    },
    // ---- migrate ----
    /// The migration tool's status command, run in `container`, reports each of `applied`
    /// applied and none of `unapplied`.
    Migrations {
        container: String,
        command: Vec<String>,
        applied: Vec<String>,
        unapplied: Vec<String>,
        format: super::migration_plan::StatusFormat,
    },
    /// At most `releases` earlier releases of the service are kept as stopped containers.
    KeptAtMost {
        project: Option<String>,
        service: Option<String>,
        replicas: Vec<String>,
        releases: usize,
    },
}

/// The migration state as the tool reads it, not as the migration's output said.
async fn migrations(
    engine: &Engine,
    container: &str,
    command: &[String],
    applied: &[String],
    unapplied: &[String],
    format: super::migration_plan::StatusFormat,
) -> Result<(), String> {
    let (code, out, _) = super::migrate::exec_read(engine, container, command).await?;
    if code != 0 {
        return Err(format!("the status command exited with {code}"));
    }
    let now = format.applied(&out);
    let missing: Vec<&str> = applied
        .iter()
        .filter(|m| !now.contains(*m))
        .map(String::as_str)
        .collect();
    let still: Vec<&str> = unapplied
        .iter()
        .filter(|m| now.contains(*m))
        .map(String::as_str)
        .collect();
    let mut wrong = Vec::new();
    if !missing.is_empty() {
        wrong.push(format!("not applied: {}", missing.join(", ")));
    }
    if !still.is_empty() {
        wrong.push(format!("still applied: {}", still.join(", ")));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// How a container ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEnd {
    /// Running; healthy too when `healthy` (the container has a health check).
    Running {
        healthy: bool,
    },
    Stopped,
    Gone,
}

/// What a [`Expect::Gone`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Container,
    Image,
    Network,
    Volume,
}

/// Reads the engine and returns each promise that does not hold, in words
/// (`flstk_web: 2 tasks running, promised 3`). Empty: the engine shows what the plan promised.
pub async fn check(plan: &Plan, engine: &Engine) -> Vec<String> {
    check_promises(&plan.promises, engine).await
}

/// [`check`] of a list of promises (a stack's run checks each service's own as it ends).
pub async fn check_promises(promises: &[Promise], engine: &Engine) -> Vec<String> {
    check_within(promises, engine, CHECK_BUDGET, None).await
}

/// [`check_promises`] within `budget` (what is left of [`CHECK_BUDGET`] once a run has spent
/// some of it reading its end already). `link_down`: why the run already knows its SSH link is
/// down, said instead of "the engine did not answer" when the time runs out.
pub async fn check_within(
    promises: &[Promise],
    engine: &Engine,
    budget: std::time::Duration,
    link_down: Option<&str>,
) -> Vec<String> {
    if promises.is_empty() {
        return Vec::new();
    }
    match tokio::time::timeout(budget, check_all(promises, engine)).await {
        Ok(differences) => differences,
        Err(_) => vec![format!(
            "the end state could not be read within {} s: {}",
            budget.as_secs_f64().ceil() as u64,
            match link_down {
                Some(why) => format!("the link to the server is down ({why})"),
                None => "the engine did not answer".to_string(),
            }
        )],
    }
}

async fn check_all(promises: &[Promise], engine: &Engine) -> Vec<String> {
    let mut differences = Vec::new();
    for promise in promises {
        if let Err(d) = check_one(&promise.expect, engine).await {
            differences.push(format!("{}: {d}", promise.text));
        }
    }
    differences
}

async fn check_one(expect: &Expect, engine: &Engine) -> Result<(), String> {
    match expect {
        Expect::Container { id, end } => container(engine, id, *end).await,
        Expect::Gone { kind, names } => gone(engine, *kind, names).await,
        Expect::Migrations {
            container,
            command,
            applied,
            unapplied,
            format,
        } => migrations(engine, container, command, applied, unapplied, *format).await,
        Expect::ServiceSpec { service, spec } => {
            let raw = engine
                .get_json(&format!("/services/{service}"))
                .await
                .map_err(|e| format!("the service could not be read: {e}"))?;
            let now = raw.get("Spec").cloned().unwrap_or_default();
            let changes = super::swarm::spec::differences(spec, &now);
            if changes.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "the engine's spec differs from the promised one: {}",
                    super::swarm::spec::describe(&changes)
                        .trim_start_matches("spec unchanged except ")
                ))
            }
        }
        Expect::ServiceTasks {
            service,
            replicas,
            image,
        } => {
            let snap = snapshot(engine).await?;
            let wanted: Vec<_> = snap
                .tasks
                .iter()
                .filter(|t| t.service_id == *service && t.wants_running())
                .collect();
            let running = wanted.iter().filter(|t| t.is_running()).count();
            let mut wrong = Vec::new();
            if running != wanted.len() || replicas.is_some_and(|r| r != wanted.len() as u64) {
                wrong.push(format!(
                    "{running} of {} wanted task(s) running{}",
                    wanted.len(),
                    replicas
                        .map(|r| format!(", promised {r}"))
                        .unwrap_or_default()
                ));
            }
            if let Some(image) = image {
                let other: Vec<String> = wanted
                    .iter()
                    .filter(|t| &t.image != image)
                    .map(|t| format!("{} on {}", t.label(), t.image))
                    .collect();
                if !other.is_empty() {
                    wrong.push(format!("not on {image}: {}", other.join(", ")));
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("; "))
            }
        }
        Expect::TasksKept {
            service,
            tasks,
            keep,
        } => {
            let snap = snapshot(engine).await?;
            let still = tasks
                .iter()
                .filter(|id| {
                    snap.tasks
                        .iter()
                        .any(|t| &t.id == *id && t.service_id == *service && t.is_running())
                })
                .count();
            if still >= *keep {
                Ok(())
            } else {
                Err(format!(
                    "only {still} of the {keep} task(s) that ran before still run: the others were replaced"
                ))
            }
        }
        Expect::ServicesAtDesired { services } => {
            let snap = snapshot(engine).await?;
            let below: Vec<String> = services
                .iter()
                .filter_map(|id| match snap.services.iter().find(|s| &s.id == id) {
                    Some(s) if s.running < s.desired => {
                        Some(format!("{} {} running", s.name, s.replicas()))
                    }
                    Some(_) => None,
                    None => Some(format!("{} is gone", super::short(id))),
                })
                .collect();
            if below.is_empty() {
                Ok(())
            } else {
                Err(format!("below the desired count: {}", below.join(", ")))
            }
        }
        Expect::NodeAvailability { node, availability } => {
            let snap = snapshot(engine).await?;
            match snap.nodes.iter().find(|n| &n.id == node) {
                Some(n) if &n.availability == availability => Ok(()),
                Some(n) => Err(format!("{} is {}", n.hostname, n.availability)),
                None => Err("the node is no longer in the swarm".into()),
            }
        }
        Expect::NodeEmpty { node } => {
            let snap = snapshot(engine).await?;
            let left: Vec<String> = snap
                .tasks
                .iter()
                .filter(|t| &t.node_id == node && t.is_running())
                .map(|t| t.label())
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still running there: {}", left.join(", ")))
            }
        }
        Expect::ReplicasRun {
            project,
            service,
            names,
            image,
        } => replicas_run(engine, project.as_deref(), service.as_deref(), names, image).await,
        Expect::ResolvesTo {
            network,
            name,
            containers,
        } => resolves_to(engine, network, name, containers).await,
        Expect::KeptAtMost {
            project,
            service,
            replicas,
            releases,
        } => {
            let all =
                labelled(engine, &[crate::engine::model::LABEL_KEPT_NAME.to_string()]).await?;
            let kept = super::rollback::kept_releases(
                &all,
                project.as_deref(),
                service.as_deref(),
                replicas,
            );
            if kept.len() <= *releases {
                Ok(())
            } else {
                Err(format!(
                    "{} kept release(s): {}",
                    kept.len(),
                    kept.iter()
                        .flat_map(|r| r.containers.iter().map(|c| c.name.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
}

async fn snapshot(engine: &Engine) -> Result<crate::swarm::Snapshot, String> {
    crate::swarm::snapshot(engine)
        .await
        .map_err(|e| format!("the swarm could not be read: {e}"))
}

async fn container(engine: &Engine, id: &str, end: ContainerEnd) -> Result<(), String> {
    let c = engine
        .inspect(id)
        .await
        .map_err(|e| format!("the container could not be read: {e}"))?;
    match (end, c) {
        (ContainerEnd::Gone, None) => Ok(()),
        (ContainerEnd::Gone, Some(c)) => {
            Err(format!("{} still exists ({})", c.name, c.state.as_str()))
        }
        (_, None) => Err("the container no longer exists".into()),
        (ContainerEnd::Stopped, Some(c)) if !c.state.is_up() => Ok(()),
        (ContainerEnd::Stopped, Some(c)) => Err(format!("{} is {}", c.name, c.state.as_str())),
        (ContainerEnd::Running { healthy }, Some(c)) => {
            if c.state != crate::engine::model::State::Running {
                Err(format!("{} is {}", c.name, c.state.as_str()))
            } else if healthy && c.health != crate::engine::model::Health::Healthy {
                Err(format!("{} runs but is {}", c.name, c.health.as_str()))
            } else {
                Ok(())
            }
        }
    }
}

async fn gone(engine: &Engine, kind: Resource, names: &[String]) -> Result<(), String> {
    let d = &engine.docker;
    let mut left = Vec::new();
    for name in names {
        let answer = match kind {
            Resource::Container => d
                .inspect_container(
                    name,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .map(|_| ()),
            Resource::Image => d.inspect_image(name).await.map(|_| ()),
            Resource::Network => d
                .inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
                .map(|_| ()),
            Resource::Volume => d.inspect_volume(name).await.map(|_| ()),
        };
        match answer {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Ok(()) => left.push(super::short(name).to_string()),
            Err(e) => {
                return Err(format!(
                    "{name} could not be read: {}",
                    super::eng(engine, e)
                ));
            }
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("still there: {}", left.join(", ")))
    }
}

// ---- compose rollback, deploy and recover ----

async fn replicas_run(
    engine: &Engine,
    project: Option<&str>,
    service: Option<&str>,
    names: &[String],
    image: &str,
) -> Result<(), String> {
    let want = engine
        .docker
        .inspect_image(image)
        .await
        .map_err(|e| format!("image {image}: {}", super::eng(engine, e)))?
        .id
        .unwrap_or_default();
    let mut problems = Vec::new();
    for name in names {
        match engine.inspect(name).await.map_err(|e| e.to_string())? {
            None => problems.push(format!("no container {name}")),
            Some(c) if c.state != crate::engine::model::State::Running => {
                problems.push(format!("{name} is {}", c.state.as_str()))
            }
            Some(c) if c.image_id != want => problems.push(format!(
                "{name} runs {} ({})",
                c.image,
                super::short(&c.image_id)
            )),
            Some(c) if c.has_healthcheck && c.health != crate::engine::model::Health::Healthy => {
                problems.push(format!("{name} is {}", c.health.as_str()))
            }
            Some(_) => {}
        }
    }
    if let Some(service) = service {
        // Any other running replica of the service serves too: the promise is about all of them.
        let all = labelled(
            engine,
            &[
                format!(
                    "{}={}",
                    crate::engine::model::LABEL_PROJECT,
                    project.unwrap_or_default()
                ),
                format!("{}={service}", crate::engine::model::LABEL_SERVICE),
            ],
        )
        .await?;
        let others: Vec<&str> = all
            .iter()
            .filter(|c| c.service.as_deref() == Some(service) && c.project.as_deref() == project)
            .filter(|c| c.state.is_up() && !super::is_berth_aux(c))
            .filter(|c| !names.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !others.is_empty() {
            problems.push(format!("{} run(s) too", others.join(", ")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The containers carrying every one of `labels` (`key` or `key=value`), as berth reads them: a
/// listing filtered by the engine, then only those inspected (the engine may hold many others).
async fn labelled(
    engine: &Engine,
    labels: &[String],
) -> Result<Vec<crate::engine::model::Container>, String> {
    let filters = std::collections::HashMap::from([("label".to_string(), labels.to_vec())]);
    let list = engine
        .docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| super::eng(engine, e))?;
    let mut out = Vec::new();
    for id in list.into_iter().filter_map(|c| c.id) {
        if let Some(c) = engine.inspect(&id).await.map_err(|e| e.to_string())? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Which running containers on `network` answer to `name`, read from the engine: the network's
/// endpoints, and each container's name and aliases there.
pub(crate) async fn resolving(
    engine: &Engine,
    network: &str,
    name: &str,
) -> Result<Vec<String>, String> {
    let net = engine
        .docker
        .inspect_network(
            network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .map_err(|e| format!("network {network}: {}", super::eng(engine, e)))?;
    let mut found = Vec::new();
    for id in net.containers.unwrap_or_default().keys() {
        let Some(c) = engine.inspect(id).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let answers = c.name == name
            || c.networks
                .iter()
                .any(|n| n.network == network && n.aliases.iter().any(|a| a == name));
        if answers && c.state == crate::engine::model::State::Running {
            found.push(c.name);
        }
    }
    found.sort();
    Ok(found)
}

async fn resolves_to(
    engine: &Engine,
    network: &str,
    name: &str,
    containers: &[String],
) -> Result<(), String> {
    let found = resolving(engine, network, name).await?;
    let mut want = containers.to_vec();
    want.sort();
    if found == want {
        return Ok(());
    }
    Err(if found.is_empty() {
        format!("{name} resolves to nothing on {network}")
    } else {
        format!("{name} resolves on {network} to {}", found.join(", "))
    })
}
