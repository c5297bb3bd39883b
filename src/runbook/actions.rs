//! Restart, stop, start, kill and remove a container or every replica of a service; restart and start
//! then wait for health.

use bollard::query_parameters::{
    KillContainerOptions, RemoveContainerOptions, RestartContainerOptions, StartContainerOptions,
    StopContainerOptions,
};
use serde::Serialize;

use super::postcondition::{ContainerEnd, Expect, Promise};
use super::{
    HealthSettings, Plan, PlanKind, RunbookError, Runner, Step, eng, health, plan_base, resolve,
    short,
};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::Container;

/// The engine's own stop timeout when a container sets none.
pub const STOP_TIMEOUT_SECS: i32 = 10;

/// The seconds `docker stop` would give `c` before SIGKILL.
pub(crate) fn stop_grace(c: &Container) -> i32 {
    c.stop_timeout
        .and_then(|t| i32::try_from(t).ok())
        .filter(|t| *t >= 0)
        .unwrap_or(STOP_TIMEOUT_SECS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Restart,
    Stop,
    Start,
    Kill,
    Remove,
}

impl ActionKind {
    pub const ALL: &'static [ActionKind] = &[
        ActionKind::Restart,
        ActionKind::Stop,
        ActionKind::Start,
        ActionKind::Kill,
        ActionKind::Remove,
    ];

    /// The kind a CLI subcommand or palette command names (`restart`, `rm`).
    pub fn parse(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// The CLI subcommand's help.
    pub fn about(self) -> &'static str {
        match self {
            ActionKind::Restart => {
                "Restart a container or every replica of a service, then wait for health."
            }
            ActionKind::Stop => "Stop a container or every replica of a service.",
            ActionKind::Start => {
                "Start a container or every replica of a service, then wait for health."
            }
            ActionKind::Kill => "Kill a container or every replica of a service.",
            ActionKind::Remove => "Remove a container or every replica of a service.",
        }
    }

    /// The name: the CLI subcommand, the palette command, the audit log's action.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Restart => "restart",
            ActionKind::Stop => "stop",
            ActionKind::Start => "start",
            ActionKind::Kill => "kill",
            ActionKind::Remove => "rm",
        }
    }
    fn waits(self) -> bool {
        matches!(self, ActionKind::Restart | ActionKind::Start)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ActionPlan {
    kind: ActionKind,
    /// Per container: (id, name, step index of the action, step index of the stop before remove, step of the wait).
    items: Vec<Item>,
    health: HealthSettings,
}

#[derive(Debug, Clone)]
struct Item {
    id: String,
    name: String,
    image_id: String,
    /// Seconds between SIGTERM and SIGKILL: the container's own stop timeout, as `docker stop`
    /// uses it (a database given a minute to flush is not killed after ten seconds).
    grace: i32,
    stop_step: Option<usize>,
    act_step: usize,
    wait_step: Option<usize>,
}

/// Plans `kind` on the container or service `name`. Reads the engine only.
pub async fn plan_action(
    engine: &Engine,
    config: &Config,
    kind: ActionKind,
    name: &str,
    project: Option<&str>,
) -> Result<Plan, RunbookError> {
    let mut subject = resolve(engine, name, project).await?;
    if kind == ActionKind::Kill {
        // Killing a stopped container is an engine error after the confirmation; say it before any plan.
        if !subject.containers.iter().any(|c| c.state.is_up()) {
            let states: Vec<String> = subject
                .containers
                .iter()
                .map(|c| format!("{} {}", c.name, c.state.as_str()))
                .collect();
            let who = if subject.containers.len() > 1 {
                format!("no replica of {} is running", subject.label)
            } else {
                format!("{} is not running", subject.label)
            };
            return Err(RunbookError::Invalid(format!(
                "{who} ({}): nothing to kill",
                states.join(", ")
            )));
        }
        subject.containers.retain(|c| c.state.is_up());
    }
    super::lock::refuse_if_held(engine, &subject).await?;
    let health = super::health_settings(
        config,
        subject.project.as_deref(),
        subject.service.as_deref(),
    );
    let n = subject.containers.len();
    let title = format!(
        "{} {} ({} container{})",
        kind.as_str(),
        subject.label,
        n,
        if n == 1 { "" } else { "s" }
    );
    let mut plan = plan_base(engine, title, kind.as_str(), &subject.label, true);
    plan.confirm_by(&subject);
    plan.lock = Some(super::lock::scope_for(
        engine,
        &subject,
        kind.as_str(),
        &super::lock::new_run_id(),
    ));
    plan.parameters = serde_json::json!({ "name": name, "project": project, "containers": subject.containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>() });
    let mut items = Vec::new();
    for c in &subject.containers {
        items.push(plan_one(&mut plan.steps, kind, c, &health));
        plan.promises.push(promise(kind, c));
    }
    if kind.waits() {
        plan.notes.push(format!(
            "each container must become {} within {}",
            if subject.containers.iter().all(|c| c.has_healthcheck) {
                "healthy"
            } else {
                "healthy (or running, without a health check)"
            },
            health.describe()
        ));
    }
    let older = subject.older_releases();
    if !older.is_empty() {
        let list: Vec<String> = older
            .iter()
            .map(|c| format!("{} ({})", c.name, c.state.as_str()))
            .collect();
        plan.notes.push(format!(
            "left alone: {}: older Kamal release{} (the current release is the newest-created running container of each role and destination)",
            list.join(", "),
            if older.len() == 1 { "" } else { "s" }
        ));
    }
    if kind == ActionKind::Remove {
        plan.notes.push(
            "removed containers cannot be brought back by berth; their named volumes are kept"
                .into(),
        );
    }
    plan.kind = PlanKind::Action(ActionPlan {
        kind,
        items,
        health,
    });
    Ok(plan)
}

fn plan_one(
    steps: &mut Vec<Step>,
    kind: ActionKind,
    c: &Container,
    health: &HealthSettings,
) -> Item {
    let id = c.id.clone();
    let s = short(&id).to_string();
    let grace = stop_grace(c);
    let mut stop_step = None;
    let act_step;
    let mut wait_step = None;
    match kind {
        ActionKind::Restart => {
            act_step = push(
                steps,
                format!("restart {} ({s})", c.name),
                format!("POST /containers/{s}/restart?t={grace}"),
            );
        }
        ActionKind::Stop => {
            act_step = push(
                steps,
                format!(
                    "stop {} ({s}), SIGTERM then SIGKILL after {grace} s",
                    c.name
                ),
                format!("POST /containers/{s}/stop?t={grace}"),
            );
        }
        ActionKind::Start => {
            act_step = push(
                steps,
                format!("start {} ({s})", c.name),
                format!("POST /containers/{s}/start"),
            );
        }
        ActionKind::Kill => {
            act_step = push(
                steps,
                format!("kill {} ({s}) with SIGKILL", c.name),
                format!("POST /containers/{s}/kill?signal=SIGKILL"),
            );
        }
        ActionKind::Remove => {
            if c.state.is_up() {
                stop_step = Some(push(
                    steps,
                    format!("stop {} ({s})", c.name),
                    format!("POST /containers/{s}/stop?t={grace}"),
                ));
            }
            act_step = push(
                steps,
                format!("remove {} ({s}), keeping its volumes", c.name),
                format!("DELETE /containers/{s}"),
            );
        }
    }
    if kind.waits() {
        wait_step = Some(push(
            steps,
            format!(
                "wait for {} to be {} ({})",
                c.name,
                if c.has_healthcheck {
                    "healthy"
                } else {
                    "running"
                },
                health.describe()
            ),
            format!(
                "GET /containers/{s}/json (every {:.1} s)",
                health.interval.as_secs_f64()
            ),
        ));
    }
    Item {
        id,
        name: c.name.clone(),
        image_id: c.image_id.clone(),
        grace,
        stop_step,
        act_step,
        wait_step,
    }
}

/// The state `kind` leaves the container in, read back from the engine after the run.
fn promise(kind: ActionKind, c: &Container) -> Promise {
    let (end, words) = match kind {
        ActionKind::Restart | ActionKind::Start => (
            ContainerEnd::Running {
                healthy: c.has_healthcheck,
            },
            if c.has_healthcheck {
                "running, healthy"
            } else {
                "running"
            },
        ),
        ActionKind::Stop | ActionKind::Kill => (ContainerEnd::Stopped, "stopped"),
        ActionKind::Remove => (ContainerEnd::Gone, "removed"),
    };
    Promise::new(
        format!("{}: {words}", c.name),
        Expect::Container {
            id: c.id.clone(),
            end,
        },
    )
}

fn push(steps: &mut Vec<Step>, d: String, call: String) -> usize {
    steps.push(Step::new(d, vec![call]));
    steps.len() - 1
}

pub(crate) async fn run(
    p: &ActionPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let d = &engine.docker;
    for it in &p.items {
        if run.cancelled() {
            return Err("cancelled".into());
        }
        run.images_before.insert(it.image_id.clone());
        if let Some(i) = it.stop_step {
            let ok = run
                .step(i, async {
                    d.stop_container(
                        &it.id,
                        Some(StopContainerOptions {
                            t: Some(it.grace),
                            signal: None,
                        }),
                    )
                    .await
                    .map(|_| format!("{} stopped", it.name))
                    .map_err(|e| eng(engine, e))
                })
                .await;
            if !ok {
                return Err(format!("could not stop {}", it.name));
            }
        }
        let id = it.id.as_str();
        // The step starts before the engine call, so a 10 s restart shows as running meanwhile.
        let t = run.start(it.act_step).await;
        let res = match p.kind {
            ActionKind::Restart => {
                d.restart_container(
                    id,
                    Some(RestartContainerOptions {
                        t: Some(it.grace),
                        signal: None,
                    }),
                )
                .await
            }
            ActionKind::Stop => {
                d.stop_container(
                    id,
                    Some(StopContainerOptions {
                        t: Some(it.grace),
                        signal: None,
                    }),
                )
                .await
            }
            ActionKind::Start => d.start_container(id, None::<StartContainerOptions>).await,
            ActionKind::Kill => {
                d.kill_container(
                    id,
                    Some(KillContainerOptions {
                        signal: "SIGKILL".into(),
                    }),
                )
                .await
            }
            ActionKind::Remove => {
                d.remove_container(
                    id,
                    Some(RemoveContainerOptions {
                        v: false,
                        force: false,
                        link: false,
                    }),
                )
                .await
            }
        };
        let msg = format!(
            "{} {}",
            it.name,
            match p.kind {
                ActionKind::Restart => "restarted",
                ActionKind::Stop => "stopped",
                ActionKind::Start => "started",
                ActionKind::Kill => "killed",
                ActionKind::Remove => "removed",
            }
        );
        // Starting a running container answers 304: already started is fine.
        let res = match res {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            r => r,
        };
        if !run
            .finish(it.act_step, t, res.map(|_| msg).map_err(|e| eng(engine, e)))
            .await
        {
            return Err(format!("{} failed on {}", p.kind.as_str(), it.name));
        }
        if p.kind != ActionKind::Remove {
            run.images_after.insert(it.image_id.clone());
        }
        if let Some(i) = it.wait_step {
            let t = run.start(i).await;
            let res = health::wait_healthy(engine, id, &p.health, run, i).await;
            if !run.finish(i, t, res).await {
                return Err(format!("{} did not become healthy", it.name));
            }
        }
    }
    Ok(format!(
        "{} done on {} container(s)",
        p.kind.as_str(),
        p.items.len()
    ))
}
