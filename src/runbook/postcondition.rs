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

/// What the engine must show. Each variant is read and compared in [`check_one`].
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Words only: checked by the steps themselves (kept for plans whose end state is the
    /// absence of a change, e.g. a dry run).
    Stated,
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
    /// At most `releases` earlier releases of the service are kept as stopped containers.
    KeptAtMost {
        project: Option<String>,
        service: Option<String>,
        replicas: Vec<String>,
        releases: usize,
    },
}

/// Reads the engine and returns each promise that does not hold, in words
/// (`flstk_web: 2 tasks running, promised 3`). Empty: the engine shows what the plan promised.
pub async fn check(plan: &Plan, engine: &Engine) -> Vec<String> {
    if plan.promises.is_empty() {
        return Vec::new();
    }
    match tokio::time::timeout(CHECK_BUDGET, check_all(plan, engine)).await {
        Ok(differences) => differences,
        Err(_) => vec![format!(
            "the end state could not be read within {} s: the engine did not answer",
            CHECK_BUDGET.as_secs()
        )],
    }
}

async fn check_all(plan: &Plan, engine: &Engine) -> Vec<String> {
    let mut differences = Vec::new();
    for promise in &plan.promises {
        if let Err(d) = check_one(&promise.expect, engine).await {
            differences.push(format!("{}: {d}", promise.text));
        }
    }
    differences
}

async fn check_one(expect: &Expect, engine: &Engine) -> Result<(), String> {
    match expect {
        Expect::Stated => Ok(()),
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
