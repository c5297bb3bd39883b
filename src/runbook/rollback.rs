//! Guided rollback: recreate a service's containers from an earlier image with their exact
//! configuration, verify health, restore the old container automatically on failure, and recover a
//! rollback that was cut off halfway (found by the kept `-berth-old-` container and berth's labels).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageInspect, MountType,
    NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListImagesOptions, LogsOptions,
    RemoveContainerOptions, RenameContainerOptions, StartContainerOptions, StopContainerOptions,
    TagImageOptions,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    HealthSettings, LABEL_ROLLBACK_FROM, LABEL_ROLLBACK_ID, NEW_MARK, OLD_MARK, Plan, PlanKind,
    RunbookError, Runner, Step, StepStatus, eng, health, plan_base, resolve, short,
};
use crate::config::Config;
use crate::engine::model::{Container, Health, State, split_image};
use crate::engine::{Engine, EngineError};

const FIRST_LOG_LINES: usize = 10;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollbackRequest {
    pub name: String,
    pub project: Option<String>,
    /// A tag of the same repository, or a full image reference or id. `None`: the image the service ran before.
    pub to: Option<String>,
    pub remove_old: bool,
    pub retag: bool,
}

/// An image the service could roll back to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
    pub created: Option<DateTime<Utc>>,
    pub size: i64,
    /// The service runs it now.
    pub current: bool,
    /// The service ran it before (a stopped, kept or replaced container used it).
    pub previous: bool,
}

impl Candidate {
    pub fn label(&self) -> String {
        self.tags
            .first()
            .cloned()
            .or_else(|| self.digests.first().cloned())
            .unwrap_or_else(|| short(&self.id).to_string())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RollbackPlan {
    image: String,
    image_id: String,
    replicas: Vec<Replica>,
    health: HealthSettings,
    rollback_id: String,
    retag: Option<Retag>,
    remove_old_step: Option<usize>,
    logs_step: usize,
}

#[derive(Debug, Clone)]
struct Retag {
    step: usize,
    /// `repo`, `tag` the service was started with.
    repo: String,
    tag: String,
    /// Keeps the image the tag pointed at reachable by name, so prune keeps it.
    keep_tag: String,
    displaced: String,
}

#[derive(Debug, Clone)]
struct Replica {
    id: String,
    name: String,
    image_id: String,
    fixed_port: bool,
    kept_name: String,
    new_name: String,
    /// Steps: [stop+rename old | create new] [create | start] … see `plan_replica`.
    steps: ReplicaSteps,
}

#[derive(Debug, Clone, Copy)]
struct ReplicaSteps {
    first: usize,
    create: usize,
    start: usize,
    verify: usize,
    switch: Option<usize>,
    restore: usize,
}

/// The images the service's repository has on the server, newest first.
pub async fn candidates(
    engine: &Engine,
    current: &Container,
    history: &[Container],
) -> Result<Vec<Candidate>, RunbookError> {
    let repo = repo_of(engine, current).await?;
    let images = engine
        .docker
        .list_images(Some(ListImagesOptions {
            all: false,
            digests: true,
            ..Default::default()
        }))
        .await
        .map_err(|e| {
            RunbookError::Engine(EngineError::from_bollard(
                &engine.target.endpoint.to_string(),
                e,
            ))
        })?;
    let previous = previous_image(current, history);
    let mut out: Vec<Candidate> = images
        .into_iter()
        .filter(|i| {
            i.id == current.image_id
                || previous.as_deref() == Some(i.id.as_str())
                || i.repo_tags.iter().any(|t| split_image(t).0 == repo)
                || i.repo_digests.iter().any(|d| split_image(d).0 == repo)
        })
        .map(|i| Candidate {
            current: i.id == current.image_id,
            previous: previous.as_deref() == Some(i.id.as_str()),
            tags: i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
            digests: i
                .repo_digests
                .into_iter()
                .filter(|d| d != "<none>@<none>")
                .collect(),
            created: DateTime::from_timestamp(i.created, 0),
            size: i.size,
            id: i.id,
        })
        .collect();
    for c in &mut out {
        // The service's own repository first: that is the name the user knows.
        c.tags
            .sort_by_key(|t| (split_image(t).0 != repo, t.clone()));
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The rollback candidates of a service or container by name (what the console's picker lists).
pub async fn candidates_for(
    engine: &Engine,
    name: &str,
    project: Option<&str>,
) -> Result<Vec<Candidate>, RunbookError> {
    let subject = super::resolve(engine, name, project).await?;
    let running = running_replicas(&subject, name)?;
    candidates(engine, running[0], &subject.all).await
}

/// The subject's running replicas, at least one: a rollback needs something serving to replace.
fn running_replicas<'a>(
    subject: &'a super::Subject,
    name: &str,
) -> Result<Vec<&'a Container>, RunbookError> {
    let running: Vec<&Container> = subject
        .containers
        .iter()
        .filter(|c| c.state == State::Running)
        .collect();
    if running.is_empty() {
        return Err(RunbookError::Invalid(format!(
            "{} has no running container to roll back; start it first (`berth start {name}`)",
            subject.label
        )));
    }
    Ok(running)
}

/// The repository a container's image belongs to (its reference, or the first tag of its image).
async fn repo_of(engine: &Engine, c: &Container) -> Result<String, RunbookError> {
    if !c.image.starts_with("sha256:") {
        return Ok(split_image(&c.image).0.to_string());
    }
    let i = engine
        .docker
        .inspect_image(&c.image_id)
        .await
        .map_err(|e| RunbookError::Engine(EngineError::from_bollard("image", e)))?;
    i.repo_tags
        .unwrap_or_default()
        .first()
        .map(|t| split_image(t).0.to_string())
        .ok_or_else(|| {
            RunbookError::Invalid(format!(
                "{} runs an untagged image {}: name the image to roll back to with --to",
                c.name,
                short(&c.image_id)
            ))
        })
}

/// The image the same service ran before: the newest other image among its stopped, kept or
/// replaced containers, or the one named by berth's label on the current container.
fn previous_image(current: &Container, history: &[Container]) -> Option<String> {
    if let Some(from) = current.labels.get(LABEL_ROLLBACK_FROM)
        && let Some(old) = history.iter().find(|c| &c.id == from)
    {
        return Some(old.image_id.clone());
    }
    history
        .iter()
        .filter(|c| c.id != current.id && c.image_id != current.image_id)
        .filter(|c| {
            (c.service.is_some() && c.service == current.service && c.project == current.project)
                || c.name.starts_with(&format!("{}{OLD_MARK}", current.name))
        })
        .max_by_key(|c| c.finished_at.or(c.created))
        .map(|c| c.image_id.clone())
}

fn looks_like_id(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or(s);
    h.len() >= 12 && h.chars().all(|c| c.is_ascii_hexdigit())
}

/// Plans a rollback, or the recovery of one cut off halfway. Reads the engine only.
pub async fn plan_rollback(
    engine: &Engine,
    config: &Config,
    req: &RollbackRequest,
) -> Result<Plan, RunbookError> {
    let subject = match resolve(engine, &req.name, req.project.as_deref()).await {
        Ok(s) => s,
        // Every replica may be mid-rollback (renamed away): look for what berth left behind.
        Err(e @ RunbookError::NotFound(..)) => {
            let all = engine.containers().await?;
            let leftovers: Vec<Container> = all
                .iter()
                .filter(|c| {
                    let base = base_name(&c.name, OLD_MARK).or(base_name(&c.name, NEW_MARK));
                    base.is_some()
                        && (base == Some(req.name.as_str())
                            || (c.service.as_deref() == Some(req.name.as_str())
                                && req
                                    .project
                                    .as_deref()
                                    .is_none_or(|p| c.project.as_deref() == Some(p))))
                })
                .cloned()
                .collect();
            if leftovers.is_empty() {
                return Err(e);
            }
            super::Subject {
                label: req.name.clone(),
                project: leftovers[0].project.clone(),
                service: leftovers[0].service.clone(),
                containers: leftovers,
                all,
            }
        }
        Err(e) => return Err(e),
    };
    if let Some(plan) = plan_recover(
        engine,
        config,
        &subject.label,
        &subject.containers,
        &subject.all,
    )? {
        return Ok(plan);
    }
    let running = running_replicas(&subject, &req.name)?;
    let first = running[0];
    let cands = candidates(engine, first, &subject.all).await?;
    let repo = repo_of(engine, first).await?;
    let list = |cands: &[Candidate]| {
        cands
            .iter()
            .map(|c| c.label())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (image, image_id) = match &req.to {
        Some(to) => {
            let reference = if to.contains([':', '/', '@']) || looks_like_id(to) {
                to.clone()
            } else {
                format!("{repo}:{to}")
            };
            let i = engine
                .docker
                .inspect_image(&reference)
                .await
                .map_err(|e| match e {
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404, ..
                    } => RunbookError::Invalid(format!(
                        "image {reference} is not on {}; candidates: {}",
                        engine.target.name,
                        list(&cands)
                    )),
                    e => RunbookError::Engine(EngineError::from_bollard("image", e)),
                })?;
            (reference, i.id.unwrap_or_default())
        }
        None => {
            let current_created = cands.iter().find(|c| c.current).and_then(|c| c.created);
            let pick = cands
                .iter()
                .find(|c| c.previous && !c.current)
                .or_else(|| {
                    cands
                        .iter()
                        .find(|c| !c.current && c.created <= current_created)
                })
                .ok_or_else(|| {
                    RunbookError::Invalid(format!(
                        "no earlier image of {repo} on {}; candidates: {}",
                        engine.target.name,
                        list(&cands)
                    ))
                })?;
            (
                pick.tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| pick.id.clone()),
                pick.id.clone(),
            )
        }
    };
    if running.iter().all(|c| c.image_id == image_id) {
        return Err(RunbookError::Invalid(format!(
            "{} already runs {image} ({})",
            subject.label,
            short(&image_id)
        )));
    }
    let health = super::health_settings(
        config,
        subject.project.as_deref(),
        subject.service.as_deref(),
    );
    let ts = Utc::now().format("%Y%m%d%H%M%S").to_string();
    let rollback_id = format!(
        "{ts}-{:x}",
        std::process::id() ^ Utc::now().timestamp_subsec_nanos()
    );
    let title = format!(
        "roll back {} to {image} ({})",
        subject.label,
        short(&image_id)
    );
    let mut plan = plan_base(engine, title, "rollback", &subject.label, true);
    plan.confirm_by(&subject);
    plan.parameters = serde_json::json!({ "to": image, "image_id": image_id, "remove_old": req.remove_old, "retag": req.retag, "rollback_id": rollback_id });
    plan.notes.push(format!(
        "candidates, newest first: {}",
        describe_candidates(&cands)
    ));
    plan.notes.push(
        "each new container keeps the old one's configuration: env, command, entrypoint, mounts, networks and aliases, ports, labels (compose's too), restart policy, health check, user, working dir; settings that came from the old image follow the new image".into(),
    );
    let mut replicas = Vec::new();
    for c in &running {
        let inspect = engine
            .docker
            .inspect_container(&c.id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| RunbookError::Engine(EngineError::from_bollard("container", e)))?;
        let fixed = has_fixed_port(&inspect);
        if fixed {
            plan.notes.push(format!(
                "{} publishes fixed host port(s) {}: it is stopped before its replacement starts, so it does not serve for the gap (measured)",
                c.name,
                c.ports.iter().filter_map(|p| p.host_port).map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
        replicas.push(plan_replica(
            &mut plan.steps,
            c,
            fixed,
            &image,
            &health,
            &ts,
        ));
    }
    let retag = if req.retag {
        let (r, t) = split_image(&first.image);
        if first.image.starts_with("sha256:") || t == "<digest>" {
            plan.notes.push(format!(
                "cannot retag: {} was started from {} (not a tag)",
                first.name, first.image
            ));
            None
        } else {
            let step = plan.steps.len();
            let keep_tag = format!("berth-before-rollback-{ts}");
            plan.steps.push(Step::new(
                format!(
                    "retag: point {r}:{t} at {} so `docker compose up -d` does not roll forward; the image it pointed at stays as {r}:{keep_tag}",
                    short(&image_id)
                ),
                vec![format!("POST /images/{}/tag?repo={r}&tag={keep_tag}", short(&first.image_id)), format!("POST /images/{}/tag?repo={r}&tag={t}", short(&image_id))],
            ));
            Some(Retag {
                step,
                repo: r.to_string(),
                tag: t.to_string(),
                keep_tag,
                displaced: first.image_id.clone(),
            })
        }
    } else {
        None
    };
    let remove_old_step = req.remove_old.then(|| {
        plan.steps.push(Step::new(
            "remove the kept old container(s)",
            replicas
                .iter()
                .map(|r| format!("DELETE /containers/{}", r.kept_name))
                .collect(),
        ));
        plan.steps.len() - 1
    });
    if !req.remove_old {
        plan.notes.push(format!("the old container(s) are kept stopped as <name>{OLD_MARK}{ts} (remove them with --remove-old)"));
    }
    let logs_step = plan.steps.len();
    plan.steps.push(Step::new(
        "show the new container's first log lines",
        vec!["GET /containers/{new}/logs".into()],
    ));
    plan.kind = PlanKind::Rollback(RollbackPlan {
        image,
        image_id,
        replicas,
        health,
        rollback_id,
        retag,
        remove_old_step,
        logs_step,
    });
    Ok(plan)
}

fn describe_candidates(cands: &[Candidate]) -> String {
    cands
        .iter()
        .map(|c| {
            let mut s = format!(
                "{} ({}, {}, {:.1} MB)",
                c.label(),
                short(&c.id),
                c.created
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                c.size as f64 / 1e6
            );
            if c.current {
                s.push_str(" [current]");
            }
            if c.previous {
                s.push_str(" [ran before]");
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn plan_replica(
    steps: &mut Vec<Step>,
    c: &Container,
    fixed: bool,
    image: &str,
    health: &HealthSettings,
    ts: &str,
) -> Replica {
    let s = short(&c.id).to_string();
    let kept_name = format!("{}{OLD_MARK}{ts}", c.name);
    let new_name = if fixed {
        c.name.clone()
    } else {
        format!("{}{NEW_MARK}{ts}", c.name)
    };
    let mut push = |d: String, calls: Vec<String>| {
        steps.push(Step::new(d, calls));
        steps.len() - 1
    };
    let (first, create, start, verify, switch);
    if fixed {
        first = push(
            format!(
                "stop {} ({s}) and rename it to {kept_name} (kept, not removed): its host port must be free",
                c.name
            ),
            vec![
                format!("POST /containers/{s}/stop (its own stop timeout)"),
                format!("POST /containers/{s}/rename?name={kept_name}"),
            ],
        );
        create = push(
            format!("create {} from {image} with the same configuration", c.name),
            vec![
                "POST /containers/create".into(),
                "POST /networks/{net}/connect (each further network)".into(),
            ],
        );
        start = push(
            format!("start the new {}", c.name),
            vec!["POST /containers/{new}/start".into()],
        );
        verify = push(
            format!("verify health ({})", health_what(c, health)),
            vec!["GET /containers/{new}/json".into()],
        );
        switch = None;
    } else {
        first = push(
            format!(
                "create {new_name} from {image} with the same configuration, beside the running {}",
                c.name
            ),
            vec![
                "POST /containers/create".into(),
                "POST /networks/{net}/connect (each further network)".into(),
            ],
        );
        create = first;
        start = push(
            format!("start {new_name}"),
            vec!["POST /containers/{new}/start".into()],
        );
        verify = push(
            format!("verify health ({})", health_what(c, health)),
            vec!["GET /containers/{new}/json".into()],
        );
        switch = Some(push(
            format!(
                "stop the old {} ({s}), rename it to {kept_name} (kept) and rename the new one to {}",
                c.name, c.name
            ),
            vec![
                format!("POST /containers/{s}/stop (its own stop timeout)"),
                format!("POST /containers/{s}/rename?name={kept_name}"),
                format!("POST /containers/{{new}}/rename?name={}", c.name),
            ],
        ));
    }
    let restore = push(
        format!(
            "only if a step above fails: remove the new container, give {} its name back, start it and check its health",
            c.name
        ),
        vec![
            "DELETE /containers/{new}?force=1".into(),
            format!("POST /containers/{kept_name}/rename?name={}", c.name),
            format!("POST /containers/{s}/start"),
        ],
    );
    Replica {
        id: c.id.clone(),
        name: c.name.clone(),
        image_id: c.image_id.clone(),
        fixed_port: fixed,
        kept_name,
        new_name,
        steps: ReplicaSteps {
            first,
            create,
            start,
            verify,
            switch,
            restore,
        },
    }
}

fn health_what(c: &Container, h: &HealthSettings) -> String {
    let mut s = if c.has_healthcheck {
        "HEALTHCHECK".to_string()
    } else {
        "running".to_string()
    };
    if let Some(u) = &h.url {
        s.push_str(&format!(" and GET {u} → 2xx"));
    }
    format!("{s}, {}", h.describe())
}

/// A host port pinned by number (or host networking, or a fixed IP) forbids two copies at once.
pub(crate) fn has_fixed_port(i: &ContainerInspectResponse) -> bool {
    let Some(h) = i.host_config.as_ref() else {
        return false;
    };
    if h.network_mode.as_deref() == Some("host") {
        return true;
    }
    let pinned = h.port_bindings.as_ref().is_some_and(|m| {
        m.values().flatten().flatten().any(|b| {
            b.host_port
                .as_deref()
                .is_some_and(|p| !p.is_empty() && p != "0")
        })
    });
    let fixed_ip = i
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .is_some_and(|n| {
            n.values().any(|e| {
                e.ipam_config
                    .as_ref()
                    .is_some_and(|c| c.ipv4_address.as_deref().is_some_and(|a| !a.is_empty()))
            })
        });
    pinned || fixed_ip
}

/// The create body for a copy of container `i` running `image`: its Config + HostConfig + network
/// endpoints. Settings the old image supplied (`old_image`) are left out so the new image's apply.
pub(crate) fn create_body_from(
    i: &ContainerInspectResponse,
    image: &str,
    old_image: Option<&ImageInspect>,
) -> ContainerCreateBody {
    let c = i.config.clone().unwrap_or_default();
    let ic = old_image.and_then(|o| o.config.clone()).unwrap_or_default();
    let id = i.id.clone().unwrap_or_default();
    let same = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| a.is_some() && a == b;
    let env = c.env.clone().map(|env| {
        let from_image = ic.env.clone().unwrap_or_default();
        env.into_iter()
            .filter(|e| !from_image.contains(e))
            .collect::<Vec<_>>()
    });
    let labels = c.labels.clone().map(|l| {
        let from_image = ic.labels.clone().unwrap_or_default();
        l.into_iter()
            .filter(|(k, v)| from_image.get(k) != Some(v))
            .collect::<HashMap<_, _>>()
    });
    let mut host = i.host_config.clone().unwrap_or_default();
    // Anonymous volumes would be fresh in the new container: mount the old ones by name.
    if let Some(mounts) = &i.mounts {
        let binds = host.binds.clone().unwrap_or_default();
        let mut hm = host.mounts.clone().unwrap_or_default();
        for m in mounts {
            let dest = m.destination.clone().unwrap_or_default();
            let covered = binds
                .iter()
                .any(|b| b.split(':').nth(1) == Some(dest.as_str()))
                || hm
                    .iter()
                    .any(|x| x.target.as_deref() == Some(dest.as_str()));
            if m.typ.as_deref() == Some("volume") && !covered {
                hm.push(bollard::models::Mount {
                    target: Some(dest),
                    source: m.name.clone(),
                    typ: Some(MountType::VOLUME),
                    read_only: m.rw.map(|rw| !rw),
                    ..Default::default()
                });
            }
        }
        if !hm.is_empty() {
            host.mounts = Some(hm);
        }
    }
    let mut endpoints = HashMap::new();
    if let Some(nets) = i
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
    {
        for (name, e) in nets {
            endpoints.insert(name.clone(), endpoint_copy(e, &id));
        }
    }
    ContainerCreateBody {
        // The engine defaults the hostname to the container's short id; a copy must get its own.
        hostname: c.hostname.clone().filter(|h| !id.starts_with(h.as_str())),
        domainname: c.domainname.clone(),
        user: c
            .user
            .clone()
            .filter(|u| ic.user.as_ref() != Some(u) || u.is_empty())
            .filter(|u| !u.is_empty()),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: if same(&c.exposed_ports, &ic.exposed_ports) {
            None
        } else {
            c.exposed_ports.clone()
        },
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env,
        cmd: if same(&c.cmd, &ic.cmd) {
            None
        } else {
            c.cmd.clone()
        },
        healthcheck: if c.healthcheck.is_some() && c.healthcheck == ic.healthcheck {
            None
        } else {
            c.healthcheck.clone()
        },
        args_escaped: c.args_escaped,
        image: Some(image.to_string()),
        volumes: if same(&c.volumes, &ic.volumes) {
            None
        } else {
            c.volumes.clone()
        },
        working_dir: c
            .working_dir
            .clone()
            .filter(|w| ic.working_dir.as_ref() != Some(w) && !w.is_empty()),
        entrypoint: if same(&c.entrypoint, &ic.entrypoint) {
            None
        } else {
            c.entrypoint.clone()
        },
        network_disabled: c.network_disabled,
        on_build: None,
        labels,
        stop_signal: c
            .stop_signal
            .clone()
            .filter(|s| ic.stop_signal.as_ref() != Some(s)),
        stop_timeout: c.stop_timeout,
        shell: if same(&c.shell, &ic.shell) {
            None
        } else {
            c.shell.clone()
        },
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
    }
}

/// Same as [`create_body_from`] without an old image to subtract (the one-off runs the same image).
pub(crate) fn create_body(i: &ContainerInspectResponse, image: &str) -> ContainerCreateBody {
    create_body_from(i, image, None)
}

fn endpoint_copy(e: &EndpointSettings, old_id: &str) -> EndpointSettings {
    EndpointSettings {
        ipam_config: e.ipam_config.clone(),
        links: e.links.clone(),
        // The engine adds the container's short id as an alias; the copy gets its own.
        aliases: e.aliases.clone().map(|a| {
            a.into_iter()
                .filter(|x| !old_id.starts_with(x.as_str()))
                .collect()
        }),
        driver_opts: e.driver_opts.clone(),
        ..Default::default()
    }
}

/// Engines before API 1.44 take one network at create: keep the primary, return the rest to connect.
pub(crate) fn take_extra_networks(
    body: &mut ContainerCreateBody,
) -> Vec<(String, EndpointSettings)> {
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    let Some(eps) = body
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
    else {
        return Vec::new();
    };
    let primary = if mode.is_empty() || mode == "default" {
        "bridge".to_string()
    } else {
        mode
    };
    let mut extra: Vec<(String, EndpointSettings)> = eps
        .iter()
        .filter(|(k, _)| **k != primary)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    extra.sort_by(|a, b| a.0.cmp(&b.0));
    eps.retain(|k, _| *k == primary);
    extra
}

/// What happened to one replica so far, so a failure can be undone exactly.
#[derive(Default)]
struct Progress {
    stopped_old: bool,
    renamed_old: bool,
    new_id: Option<String>,
    new_renamed: bool,
}

pub(crate) async fn run(
    p: &RollbackPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let d = &engine.docker;
    let old_image = d
        .inspect_image(
            &p.replicas
                .first()
                .map(|r| r.image_id.clone())
                .unwrap_or_default(),
        )
        .await
        .ok();
    let mut done: Vec<(usize, Progress)> = Vec::new();
    let mut health_wait = Duration::ZERO;
    let mut max_gap: Option<Duration> = None;
    for (k, r) in p.replicas.iter().enumerate() {
        run.images_before.insert(r.image_id.clone());
        let mut prog = Progress::default();
        let mut gap_start: Option<Instant> = None;
        let res = replica(
            p,
            r,
            engine,
            run,
            &mut prog,
            old_image.as_ref(),
            &mut health_wait,
            &mut gap_start,
        )
        .await;
        match res {
            Ok(()) => {
                if let Some(g) = gap_start {
                    let gap = g.elapsed();
                    max_gap = Some(max_gap.map_or(gap, |m| m.max(gap)));
                }
                run.mark(r.steps.restore, StepStatus::Skipped, "not needed")
                    .await;
                done.push((k, prog));
            }
            Err(e) => {
                let mut restored =
                    vec![restore(r, &prog, engine, run, &p.health, r.steps.restore, &e).await];
                for s in [
                    Some(r.steps.first),
                    Some(r.steps.create),
                    Some(r.steps.start),
                    r.steps.switch,
                ]
                .into_iter()
                .flatten()
                {
                    if run.statuses.get(s).copied().flatten() == Some(StepStatus::Ok) {
                        run.mark(s, StepStatus::Undone, "undone by the restore")
                            .await;
                    }
                }
                // Earlier replicas went fine; put them back too, so the service runs one version.
                for (j, pj) in done.iter().rev() {
                    let rj = &p.replicas[*j];
                    for s in [
                        Some(rj.steps.first),
                        Some(rj.steps.create),
                        Some(rj.steps.start),
                        Some(rj.steps.verify),
                        rj.steps.switch,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        run.mark(s, StepStatus::Undone, "undone: a later replica failed")
                            .await;
                    }
                    restored.push(
                        restore(
                            rj,
                            pj,
                            engine,
                            run,
                            &p.health,
                            rj.steps.restore,
                            "a later replica failed",
                        )
                        .await,
                    );
                }
                for r in &p.replicas {
                    run.images_after.insert(r.image_id.clone());
                }
                let all_ok = restored.iter().all(|x| x.is_ok());
                run.skip_rest("rollback failed").await;
                return Err(if all_ok {
                    format!(
                        "rollback failed ({e}); the old container was restored and is healthy again"
                    )
                } else {
                    format!(
                        "rollback failed ({e}) and the restore did not finish: {}",
                        restored
                            .into_iter()
                            .filter_map(|x| x.err())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                });
            }
        }
    }
    run.images_after.insert(p.image_id.clone());
    run.metrics.insert(
        "health_wait_ms".into(),
        (health_wait.as_millis() as u64).into(),
    );
    if let Some(g) = max_gap {
        run.metrics
            .insert("gap_ms".into(), (g.as_millis() as u64).into());
    }
    if let Some(rt) = &p.retag {
        let ok = run
            .step(rt.step, async {
                d.tag_image(
                    &rt.displaced,
                    Some(TagImageOptions {
                        repo: Some(rt.repo.clone()),
                        tag: Some(rt.keep_tag.clone()),
                    }),
                )
                .await
                .map_err(|e| eng(engine, e))?;
                d.tag_image(
                    &p.image_id,
                    Some(TagImageOptions {
                        repo: Some(rt.repo.clone()),
                        tag: Some(rt.tag.clone()),
                    }),
                )
                .await
                .map_err(|e| eng(engine, e))?;
                Ok(format!(
                    "{}:{} → {}; the previous image is {}:{}",
                    rt.repo,
                    rt.tag,
                    short(&p.image_id),
                    rt.repo,
                    rt.keep_tag
                ))
            })
            .await;
        if !ok {
            return Err("rolled back, but the retag failed".into());
        }
    }
    if let Some(i) = p.remove_old_step {
        run.step(i, async {
            for r in &p.replicas {
                d.remove_container(
                    &r.id,
                    Some(RemoveContainerOptions {
                        force: false,
                        v: false,
                        link: false,
                    }),
                )
                .await
                .map_err(|e| eng(engine, e))?;
            }
            Ok(format!(
                "removed {}",
                p.replicas
                    .iter()
                    .map(|r| r.kept_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
        .await;
    }
    let t = run.start(p.logs_step).await;
    let mut n = 0;
    if let Some(r) = p.replicas.first() {
        let mut logs = d.logs(
            &r.name,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: "all".into(),
                ..Default::default()
            }),
        );
        let deadline = tokio::time::sleep(Duration::from_secs(3));
        tokio::pin!(deadline);
        while n < FIRST_LOG_LINES {
            let next = tokio::select! { x = logs.next() => x, _ = &mut deadline => None };
            match next {
                Some(Ok(chunk)) => {
                    for l in String::from_utf8_lossy(&chunk.into_bytes())
                        .lines()
                        .take(FIRST_LOG_LINES - n)
                    {
                        run.out(p.logs_step, l.to_string()).await;
                        n += 1;
                    }
                }
                _ => break,
            }
        }
    }
    run.finish(p.logs_step, t, Ok(format!("{n} line(s)"))).await;
    Ok(format!(
        "rolled back {} container(s) to {} ({}); health verified",
        p.replicas.len(),
        p.image,
        short(&p.image_id)
    ))
}

#[allow(clippy::too_many_arguments)]
async fn replica(
    p: &RollbackPlan,
    r: &Replica,
    engine: &Engine,
    run: &mut Runner,
    prog: &mut Progress,
    old_image: Option<&ImageInspect>,
    health_wait: &mut Duration,
    gap_start: &mut Option<Instant>,
) -> Result<(), String> {
    let d = &engine.docker;
    let inspect = d
        .inspect_container(&r.id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| eng(engine, e))?;
    let mut body = create_body_from(&inspect, &p.image, old_image);
    let mut labels = body.labels.take().unwrap_or_default();
    labels.insert(LABEL_ROLLBACK_FROM.into(), r.id.clone());
    labels.insert(LABEL_ROLLBACK_ID.into(), p.rollback_id.clone());
    body.labels = Some(labels);
    let extra = take_extra_networks(&mut body);
    if r.fixed_port {
        let t = run.start(r.steps.first).await;
        *gap_start = Some(Instant::now());
        let res = async {
            d.stop_container(
                &r.id,
                Some(StopContainerOptions {
                    t: None,
                    signal: None,
                }),
            )
            .await
            .map_err(|e| eng(engine, e))?;
            prog.stopped_old = true;
            d.rename_container(
                &r.id,
                RenameContainerOptions {
                    name: r.kept_name.clone(),
                },
            )
            .await
            .map_err(|e| eng(engine, e))?;
            prog.renamed_old = true;
            Ok(format!("{} stopped and kept as {}", r.name, r.kept_name))
        }
        .await;
        if !run.finish(r.steps.first, t, res.clone()).await {
            return Err(res.unwrap_err());
        }
    }
    if cancelled(run) {
        return Err("cancelled".into());
    }
    let t = run.start(r.steps.create).await;
    let res = async {
        let created = d
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(r.new_name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| eng(engine, e))?;
        prog.new_id = Some(created.id.clone());
        for (net, ep) in extra {
            d.connect_network(
                &net,
                NetworkConnectRequest {
                    container: created.id.clone(),
                    endpoint_config: Some(ep),
                },
            )
            .await
            .map_err(|e| format!("connect {net}: {}", eng(engine, e)))?;
        }
        Ok(format!("created {} ({})", r.new_name, short(&created.id)))
    }
    .await;
    if !run.finish(r.steps.create, t, res.clone()).await {
        return Err(res.unwrap_err());
    }
    let new_id = prog.new_id.clone().unwrap_or_default();
    let ok = run
        .step(r.steps.start, async {
            d.start_container(&new_id, None::<StartContainerOptions>)
                .await
                .map(|_| format!("{} started", r.new_name))
                .map_err(|e| eng(engine, e))
        })
        .await;
    if !ok {
        return Err(format!("{} did not start", r.new_name));
    }
    let t = run.start(r.steps.verify).await;
    let res = health::wait_healthy(engine, &new_id, &p.health, run, r.steps.verify).await;
    *health_wait += t.elapsed();
    if !run.finish(r.steps.verify, t, res.clone()).await {
        return Err(res.unwrap_err());
    }
    if let Some(i) = r.steps.switch {
        let t = run.start(i).await;
        let res = async {
            d.stop_container(
                &r.id,
                Some(StopContainerOptions {
                    t: None,
                    signal: None,
                }),
            )
            .await
            .map_err(|e| eng(engine, e))?;
            prog.stopped_old = true;
            d.rename_container(
                &r.id,
                RenameContainerOptions {
                    name: r.kept_name.clone(),
                },
            )
            .await
            .map_err(|e| eng(engine, e))?;
            prog.renamed_old = true;
            d.rename_container(
                &new_id,
                RenameContainerOptions {
                    name: r.name.clone(),
                },
            )
            .await
            .map_err(|e| eng(engine, e))?;
            prog.new_renamed = true;
            Ok(format!(
                "{} now runs {}; the old one is kept as {}",
                r.name,
                short(&p.image_id),
                r.kept_name
            ))
        }
        .await;
        if !run.finish(i, t, res.clone()).await {
            return Err(res.unwrap_err());
        }
    }
    Ok(())
}

fn cancelled(run: &Runner) -> bool {
    run.cancelled()
}

/// Puts the old container back exactly: the new one removed, the old one renamed back, started and healthy.
async fn restore(
    r: &Replica,
    prog: &Progress,
    engine: &Engine,
    run: &mut Runner,
    health: &HealthSettings,
    step: usize,
    why: &str,
) -> Result<(), String> {
    let d = &engine.docker;
    // A cancel must not stop a restore halfway: that is the one path that leaves no serving replica.
    let user_cancel = std::mem::replace(&mut run.cancel, CancellationToken::new());
    let t = run.start(step).await;
    run.out(step, format!("restoring {} because: {why}", r.name))
        .await;
    let res = async {
        // A create whose answer was lost (the link dropped mid-request) still made the container:
        // find it by the name and the label berth gave it.
        let orphan = match &prog.new_id {
            Some(_) => None,
            None => match engine.inspect(&r.new_name).await {
                Ok(Some(c)) if c.id != r.id && c.labels.get(LABEL_ROLLBACK_FROM) == Some(&r.id) => {
                    Some(c.id)
                }
                _ => None,
            },
        };
        if let Some(new_id) = prog.new_id.as_ref().or(orphan.as_ref()) {
            d.remove_container(
                new_id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
            .map_err(|e| eng(engine, e))?;
            run.out(step, format!("removed the new container {}", short(new_id)))
                .await;
        }
        if prog.renamed_old {
            d.rename_container(
                &r.id,
                RenameContainerOptions {
                    name: r.name.clone(),
                },
            )
            .await
            .map_err(|e| eng(engine, e))?;
            run.out(step, format!("renamed {} back to {}", r.kept_name, r.name))
                .await;
        }
        if prog.stopped_old || !running(engine, &r.id).await {
            match d
                .start_container(&r.id, None::<StartContainerOptions>)
                .await
            {
                Ok(())
                | Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304, ..
                }) => {}
                Err(e) => return Err(eng(engine, e)),
            }
            run.out(step, format!("started {} again", r.name)).await;
        }
        health::wait_healthy(engine, &r.id, health, run, step)
            .await
            .map(|m| format!("restored: {m}"))
    }
    .await;
    let ok = run.finish(step, t, res.clone()).await;
    run.cancel = user_cancel;
    if ok { Ok(()) } else { Err(res.unwrap_err()) }
}

async fn running(engine: &Engine, id: &str) -> bool {
    matches!(engine.inspect(id).await, Ok(Some(c)) if c.state == State::Running)
}

// ---- recovery of a rollback cut off halfway ----

#[derive(Debug, Clone)]
pub(crate) struct RecoverPlan {
    fixes: Vec<Fix>,
    health: HealthSettings,
}

#[derive(Debug, Clone)]
enum Fix {
    /// Put the kept old container back under `base`, removing `new_id` if set.
    Restore {
        kept_id: String,
        base: String,
        new_id: Option<String>,
    },
    /// The new container is healthy but still has its temporary name: finish the switch.
    Finish {
        new_id: String,
        old_id: String,
        base: String,
        kept_name: String,
    },
    /// A new container was started beside a still-running old one and not verified: remove it.
    RemoveNew { new_id: String, name: String },
}

fn base_name<'a>(name: &'a str, mark: &str) -> Option<&'a str> {
    name.find(mark).map(|i| &name[..i])
}

fn serving(c: &Container) -> bool {
    c.state == State::Running && (!c.has_healthcheck || c.health == Health::Healthy)
}

/// Finds what an interrupted rollback left behind for these replicas. `Ok(None)`: nothing half done.
fn plan_recover(
    engine: &Engine,
    config: &Config,
    label: &str,
    replicas: &[Container],
    all: &[Container],
) -> Result<Option<Plan>, RunbookError> {
    let Some(first) = replicas
        .first()
        .or_else(|| all.iter().find(|c| c.name.contains(OLD_MARK)))
    else {
        return Ok(None);
    };
    let same_service = |c: &Container| {
        c.service.is_some() && c.service == first.service && c.project == first.project
    };
    let by_name: BTreeMap<&str, &Container> = all.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut fixes = Vec::new();
    for c in all
        .iter()
        .filter(|c| same_service(c) || replicas.iter().any(|r| c.name.starts_with(&r.name)))
    {
        if let Some(base) = base_name(&c.name, NEW_MARK) {
            let old = by_name.get(base);
            match old {
                Some(o) if o.state == State::Running => fixes.push(Fix::RemoveNew {
                    new_id: c.id.clone(),
                    name: c.name.clone(),
                }),
                _ => {
                    let kept = all
                        .iter()
                        .find(|k| c.labels.get(LABEL_ROLLBACK_FROM) == Some(&k.id));
                    match kept {
                        Some(k) if serving(c) => fixes.push(Fix::Finish {
                            new_id: c.id.clone(),
                            old_id: k.id.clone(),
                            base: base.into(),
                            kept_name: k.name.clone(),
                        }),
                        Some(k) => fixes.push(Fix::Restore {
                            kept_id: k.id.clone(),
                            base: base.into(),
                            new_id: Some(c.id.clone()),
                        }),
                        None => fixes.push(Fix::RemoveNew {
                            new_id: c.id.clone(),
                            name: c.name.clone(),
                        }),
                    }
                }
            }
        } else if let Some(base) = base_name(&c.name, OLD_MARK) {
            match by_name.get(base) {
                None => fixes.push(Fix::Restore {
                    kept_id: c.id.clone(),
                    base: base.into(),
                    new_id: None,
                }),
                Some(live)
                    if live.labels.get(LABEL_ROLLBACK_FROM) == Some(&c.id)
                        && !serving(live)
                        && live.state != State::Running =>
                {
                    fixes.push(Fix::Restore {
                        kept_id: c.id.clone(),
                        base: base.into(),
                        new_id: Some(live.id.clone()),
                    })
                }
                _ => {}
            }
        }
    }
    // A temporary new container whose old one was already renamed is handled once, by its own entry.
    let handled: Vec<String> = fixes
        .iter()
        .filter_map(|f| {
            if let Fix::Finish { old_id, .. }
            | Fix::Restore {
                kept_id: old_id, ..
            } = f
            {
                Some(old_id.clone())
            } else {
                None
            }
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    fixes.retain(|f| match f {
        Fix::Restore { kept_id, .. } => seen.insert(kept_id.clone()),
        Fix::Finish { old_id, .. } => seen.insert(old_id.clone()),
        Fix::RemoveNew { .. } => true,
    });
    let _ = handled;
    if fixes.is_empty() {
        return Ok(None);
    }
    let health = super::health_settings(config, first.project.as_deref(), first.service.as_deref());
    let mut plan = plan_base(
        engine,
        format!("recover the interrupted rollback of {label}"),
        "rollback-recover",
        label,
        true,
    );
    plan.notes.push("a previous rollback did not finish (berth found its kept or temporary containers); this plan brings the service back to exactly one serving container per replica. Run the rollback again afterwards if you still want it".into());
    for f in &fixes {
        match f {
            Fix::Restore { kept_id, base, new_id } => plan.steps.push(Step::new(
                format!("restore: {}give the kept old container {} its name {base} back, start it and check health", if new_id.is_some() { "remove the unfinished new container, " } else { "" }, short(kept_id)),
                vec![format!("POST /containers/{}/rename?name={base}", short(kept_id)), format!("POST /containers/{}/start", short(kept_id))],
            )),
            Fix::Finish { new_id, base, kept_name, .. } => plan.steps.push(Step::new(
                format!("finish: the new container {} is serving; keep the old one stopped as {kept_name} and rename the new one to {base}", short(new_id)),
                vec![format!("POST /containers/{}/rename?name={base}", short(new_id))],
            )),
            Fix::RemoveNew { new_id, name } => plan.steps.push(Step::new(
                format!("remove the unverified new container {name}: the old one still serves"),
                vec![format!("DELETE /containers/{}?force=1", short(new_id))],
            )),
        }
    }
    plan.parameters = serde_json::json!({ "fixes": plan.steps.iter().map(|s| s.description.clone()).collect::<Vec<_>>() });
    plan.kind = PlanKind::Recover(RecoverPlan { fixes, health });
    Ok(Some(plan))
}

pub(crate) async fn run_recover(
    p: &RecoverPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let d = &engine.docker;
    for (i, f) in p.fixes.iter().enumerate() {
        let t = run.start(i).await;
        let res: Result<String, String> = async {
            match f {
                Fix::Restore {
                    kept_id,
                    base,
                    new_id,
                } => {
                    if let Some(n) = new_id {
                        d.remove_container(
                            n,
                            Some(RemoveContainerOptions {
                                force: true,
                                v: false,
                                link: false,
                            }),
                        )
                        .await
                        .map_err(|e| eng(engine, e))?;
                    }
                    d.rename_container(kept_id, RenameContainerOptions { name: base.clone() })
                        .await
                        .map_err(|e| eng(engine, e))?;
                    match d
                        .start_container(kept_id, None::<StartContainerOptions>)
                        .await
                    {
                        Ok(())
                        | Err(bollard::errors::Error::DockerResponseServerError {
                            status_code: 304,
                            ..
                        }) => {}
                        Err(e) => return Err(eng(engine, e)),
                    }
                    health::wait_healthy(engine, kept_id, &p.health, run, i).await
                }
                Fix::Finish {
                    new_id,
                    old_id,
                    base,
                    kept_name,
                } => {
                    if running(engine, old_id).await {
                        d.stop_container(
                            old_id,
                            Some(StopContainerOptions {
                                t: None,
                                signal: None,
                            }),
                        )
                        .await
                        .map_err(|e| eng(engine, e))?;
                    }
                    let old = engine.inspect(old_id).await.map_err(|e| e.to_string())?;
                    if old.is_some_and(|o| o.name != *kept_name) {
                        d.rename_container(
                            old_id,
                            RenameContainerOptions {
                                name: kept_name.clone(),
                            },
                        )
                        .await
                        .map_err(|e| eng(engine, e))?;
                    }
                    d.rename_container(new_id, RenameContainerOptions { name: base.clone() })
                        .await
                        .map_err(|e| eng(engine, e))?;
                    Ok(format!(
                        "{base} runs the new container; the old one is kept as {kept_name}"
                    ))
                }
                Fix::RemoveNew { new_id, name } => d
                    .remove_container(
                        new_id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: false,
                            link: false,
                        }),
                    )
                    .await
                    .map(|_| format!("removed {name}"))
                    .map_err(|e| eng(engine, e)),
            }
        }
        .await;
        if !run.finish(i, t, res.clone()).await {
            return Err(format!("recovery failed: {}", res.unwrap_err()));
        }
    }
    Ok("the interrupted rollback is resolved: one serving container per replica".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, HostConfig, NetworkSettings, PortBinding};

    fn inspect() -> ContainerInspectResponse {
        let mut ports = HashMap::new();
        ports.insert(
            "8080/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("18080".into()),
            }]),
        );
        let mut nets = HashMap::new();
        nets.insert(
            "shop_default".to_string(),
            EndpointSettings {
                aliases: Some(vec!["web".into(), "0123456789ab".into()]),
                ip_address: Some("172.18.0.5".into()),
                ..Default::default()
            },
        );
        nets.insert(
            "shop_back".to_string(),
            EndpointSettings {
                aliases: Some(vec!["api".into()]),
                ..Default::default()
            },
        );
        ContainerInspectResponse {
            id: Some("0123456789abcdef".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                env: Some(vec![
                    "PATH=/bin".into(),
                    "APP_VERSION=v2".into(),
                    "DB=postgres://db".into(),
                ]),
                cmd: Some(vec!["httpd".into()]),
                labels: Some(HashMap::from([
                    ("com.docker.compose.service".into(), "web".into()),
                    ("org.image".into(), "x".into()),
                ])),
                image: Some("shop-web:v2".into()),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(ports),
                network_mode: Some("shop_default".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(nets),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn create_body_keeps_configuration_and_drops_image_defaults() {
        let old_image = ImageInspect {
            config: Some(bollard::models::ImageConfig {
                env: Some(vec!["PATH=/bin".into(), "APP_VERSION=v2".into()]),
                cmd: Some(vec!["httpd".into()]),
                labels: Some(HashMap::from([("org.image".into(), "x".into())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = create_body_from(&inspect(), "shop-web:v1", Some(&old_image));
        assert_eq!(b.image.as_deref(), Some("shop-web:v1"));
        assert_eq!(b.env, Some(vec!["DB=postgres://db".into()]));
        assert_eq!(b.cmd, None, "the image's own command follows the new image");
        assert_eq!(b.hostname, None);
        let labels = b.labels.clone().unwrap();
        assert_eq!(
            labels.get("com.docker.compose.service").map(String::as_str),
            Some("web")
        );
        assert!(!labels.contains_key("org.image"));
        assert!(b.host_config.as_ref().unwrap().port_bindings.is_some());
        let extra = take_extra_networks(&mut b);
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].0, "shop_back");
        let eps = b.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(eps["shop_default"].aliases, Some(vec!["web".to_string()]));
        assert_eq!(eps["shop_default"].ip_address, None);
        // Without the old image, everything is copied.
        let b = create_body(&inspect(), "x");
        assert_eq!(b.env.unwrap().len(), 3);
        assert!(b.cmd.is_some());
    }

    #[test]
    fn fixed_ports() {
        assert!(has_fixed_port(&inspect()));
        let mut i = inspect();
        i.host_config.as_mut().unwrap().port_bindings = Some(HashMap::from([(
            "8080/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("".into()),
            }]),
        )]));
        assert!(!has_fixed_port(&i));
    }

    #[test]
    fn previous_from_history() {
        let mut cur = crate::runbook::tests::container("shop-web-1", Some("shop"), Some("web"));
        cur.image_id = "sha256:v2".into();
        let mut old =
            crate::runbook::tests::container("shop-web-1-berth-old-1", Some("shop"), Some("web"));
        old.id = "old".into();
        old.image_id = "sha256:v1".into();
        assert_eq!(
            previous_image(&cur, &[cur.clone(), old.clone()]),
            Some("sha256:v1".into())
        );
        assert_eq!(previous_image(&cur, std::slice::from_ref(&cur)), None);
        assert!(looks_like_id("sha256:2ffcbdd28124"));
        assert!(!looks_like_id("v1"));
    }
}
