//! Guided rollback: recreate a service's containers from an earlier image with their exact
//! configuration, verify health, restore the old container automatically on failure, keep the old
//! one out of compose's sight, and recover a rollback that was cut off halfway (found by the
//! containers it left: the renamed old one still carrying compose's labels, the temporary new one).
//!
//! `candidates` picks the images, this file plans, `execute` runs, `recover` finishes or restores.

mod candidates;
mod execute;
mod journal;
pub(crate) mod kept;
mod recover;
pub mod registry;
mod restore;
mod set_aside;
mod undo;

use chrono::Utc;

pub(crate) use candidates::previous_release;
pub use candidates::{
    Candidate, candidates, candidates_for, candidates_with_registry, preselect, preselect_forward,
};
pub(crate) use execute::run;
pub use journal::{MAY_STILL_RUN_MINUTES, cut_off_runs, may_still_run};
pub use kept::{KeptRelease, beyond as kept_beyond, is_kept_copy, kept_releases};

/// Removes a kept container (one already gone counts as removed).
pub(crate) async fn remove_kept(engine: &Engine, id: &str) -> Result<(), String> {
    set_aside::remove_container(engine, id, false).await
}
pub use recover::RecoverChoice;
pub(crate) use recover::{RecoverPlan, run_recover};

use super::postcondition::{Expect, Promise};
use super::{
    HealthSettings, NEW_MARK, Plan, PlanKind, RunbookError, Step, plan_base, resolve, short,
};
use crate::config::Config;
use crate::engine::clone::has_fixed_port;
use crate::engine::model::{COPY_SUFFIX, Container, KEPT_MARK, set_aside_base, split_image};
use crate::engine::networks::{Aliases, replica_aliases};
use crate::engine::{Engine, EngineError};
use bollard::query_parameters::InspectContainerOptions;
use candidates::{looks_like_id, repo_of, running_replicas};

/// Health tries of a deploy when the service sets none.
pub const DEPLOY_HEALTH_RETRIES: u32 = 30;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollbackRequest {
    pub name: String,
    pub project: Option<String>,
    /// A tag of the same repository, or a full image reference or id. `None`: the image the service ran before.
    pub to: Option<String>,
    pub remove_old: bool,
    pub retag: bool,
    /// What to do with an interrupted rollback found on the service (`berth recover`). `None`:
    /// finish when the new container is there to verify, else restore.
    pub recover: Option<RecoverChoice>,
    /// Rewrite the `.env` variable the service's declared image reads, so a later `up -d` keeps
    /// the rolled-back version (a plan step, undone by the automatic restore).
    pub pin: bool,
    /// A deploy: the same machinery pointed forward (`berth deploy --to TAG`): named so in the
    /// plan, the audit and the messages, with a longer default health wait.
    pub forward: bool,
    /// Run even when the run journal cannot be written (`--force`): a run cut off then cannot be
    /// found or recovered by berth. Never on production.
    pub force: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RollbackPlan {
    /// The pull of an image the server does not have: step 0, before anything changes.
    pull: Option<Box<registry::PullStep>>,
    /// `deployed` or `rolled back`, for the messages.
    forward: bool,
    /// The `.env` rewrite, the first change when present.
    pin: Option<Box<PinStep>>,
    image: String,
    image_id: String,
    replicas: Vec<Replica>,
    health: HealthSettings,
    rollback_id: String,
    retag: Option<Retag>,
    remove_old_step: Option<usize>,
    /// Hides the stopped old containers from compose (absent with `--remove-old`).
    keep_step: Option<usize>,
    /// Removes the kept containers of releases beyond `keep_old`, as listed when planning.
    trim: Option<(usize, Vec<(String, String)>)>,
    logs_step: usize,
    /// Asked for with `--force`: the run goes on (with a warning) when its journal cannot be
    /// written. Never set on production.
    without_journal: bool,
}

#[derive(Clone)]
pub(crate) struct PinStep {
    step: usize,
    plan: crate::compose::PinPlan,
    /// Where the `.env` is copied first: `.env.berth-<UTC timestamp>`.
    backup: String,
    /// The `.env` as read when planning: the restore writes it back.
    original: String,
    pinned: String,
    files: std::sync::Arc<dyn crate::compose::ProjectFiles>,
}

impl PinStep {
    /// What the run journal keeps of the pin (never the file's text: a `.env` holds secrets).
    fn record(&self) -> journal::PinRecord {
        journal::PinRecord {
            env_path: self.plan.env_path.clone(),
            backup: self.backup.clone(),
            var: self.plan.var.clone(),
            value: self.plan.new_value.clone(),
        }
    }
}

impl std::fmt::Debug for PinStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinStep")
            .field("step", &self.step)
            .field("plan", &self.plan)
            .field("backup", &self.backup)
            .finish()
    }
}

/// The plan's lines about compose: what the files declare, what the next `docker compose up -d`
/// does, and the pin when asked for. Drift that cannot be known is said, never fatal; a pin asked
/// for and impossible is an error (the run must not go ahead without what the user asked).
async fn compose_notes(
    plan: &mut Plan,
    first: &Container,
    image: &str,
    req: &RollbackRequest,
    files: Option<&std::sync::Arc<dyn crate::compose::ProjectFiles>>,
) -> Result<Option<Box<PinStep>>, String> {
    use crate::compose::{ProjectKey, ProjectView, load, normalize_image, pin_for};
    let want_pin = req.pin;
    let service = first.service.clone().unwrap_or_default();
    let generic = "the new container does not carry the old one's config-hash (it describes the old image), so the next `docker compose up -d` recreates the service from the image its compose files declare";
    let no_pin = |why: &str| {
        if want_pin {
            Err(format!(
                "--pin: {why}; roll back without the pin, or fix that first"
            ))
        } else {
            Ok(None)
        }
    };
    let Some(key) = ProjectKey::of(first) else {
        plan.notes.push(format!(
            "drift unknown: the container's labels do not say where its compose files are; {generic}"
        ));
        return no_pin("the container's labels do not say where its compose files are");
    };
    let Some(files) = files else {
        let why = format!(
            "{} is on the engine's host, which berth reaches only through the engine",
            key.config_files[0]
        );
        plan.notes.push(format!("drift unknown: {why}; {generic}"));
        return no_pin(&why);
    };
    let project = match load(files.as_ref(), &key).await {
        ProjectView::Read(p) => p,
        view => {
            let why = view.unknown_reason().unwrap_or_default();
            let nothing = if matches!(view, ProjectView::Unparseable { .. }) {
                "; nothing in the project is written"
            } else {
                ""
            };
            plan.notes.push(format!("{why}{nothing}; {generic}"));
            return no_pin(&why);
        }
    };
    let Some(declared) = project.services.get(&service) else {
        plan.notes.push(format!(
            "compose: {service} has no `image:` in {} (built): drift is not tracked; {generic}",
            key.config_files.join(", ")
        ));
        return no_pin(&format!("{service} has no `image:` in its compose files"));
    };
    if normalize_image(&declared.image) == normalize_image(image) {
        plan.notes.push(format!(
            "compose declares {} for {service}: the next `docker compose up -d` recreates it on that same image",
            declared.image
        ));
        return no_pin(&format!("compose declares {image} already"));
    }
    let pin = match pin_for(&project, &service, image) {
        Ok(p) => p,
        Err(why) => {
            plan.notes.push(format!(
                "compose declares {0}: the next `docker compose up -d` redeploys {0} and undoes this rollback; no pin: {why}",
                declared.image
            ));
            return no_pin(&why);
        }
    };
    let others = if pin.services.len() > 1 {
        format!(
            " (services that read {}: {})",
            pin.var,
            pin.services.join(", ")
        )
    } else {
        String::new()
    };
    // The other choice, one key away where the plan is confirmed.
    plan.variant = Some(super::Variant {
        label: if want_pin {
            format!("do not pin {} (leave .env as it is)", pin.var)
        } else {
            format!("pin {}={} in .env", pin.var, pin.new_value)
        },
        request: super::Request::Rollback(RollbackRequest {
            pin: !want_pin,
            ..req.clone()
        }),
    });
    if !want_pin {
        plan.notes.push(format!(
            "compose declares {0}: the next `docker compose up -d` redeploys {0} and undoes this rollback; pin {1}={2} in .env to keep it{others}",
            declared.image, pin.var, pin.new_value
        ));
        return Ok(None);
    }
    plan.notes.push(format!(
        "compose declares {}; pinned ({}={} in .env), the next `docker compose up -d` keeps {image}{others}, and recreates the container once, on that same image: berth's copy carries no compose config-hash (compose computes it), so compose replaces it with its own; the `up -d` after that changes nothing",
        declared.image, pin.var, pin.new_value
    ));
    let pinned = crate::compose::dotenv::rewrite(&project.env_text, &pin.var, &pin.new_value)
        .map_err(|e| format!("--pin: {e}"))?;
    Ok(Some(Box::new(PinStep {
        step: 0,
        backup: format!(
            "{}.berth-{}",
            pin.env_path,
            Utc::now().format("%Y%m%dT%H%M%SZ")
        ),
        plan: pin,
        original: project.env_text.clone(),
        pinned,
        files: files.clone(),
    })))
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
    /// The old container's one name: set aside under it during the run (compose's labels still
    /// on), kept under it after a success (a copy, compose's labels set aside).
    kept_name: String,
    new_name: String,
    /// What the new replica answers to on each network once verified (none before).
    aliases: Aliases,
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

/// Plans a rollback, or the recovery of one cut off halfway. Reads the engine only (and a local
/// engine's compose files on this machine).
pub async fn plan_rollback(
    engine: &Engine,
    config: &Config,
    req: &RollbackRequest,
) -> Result<Plan, RunbookError> {
    plan_rollback_with(engine, config, req, crate::compose::local_files(engine)).await
}

/// [`plan_rollback`] reading the project's compose files and `.env` through `files` (over SSH for
/// a remote engine), to say what the next `docker compose up -d` does and to offer the pin.
pub async fn plan_rollback_with(
    engine: &Engine,
    config: &Config,
    req: &RollbackRequest,
    files: Option<std::sync::Arc<dyn crate::compose::ProjectFiles>>,
) -> Result<Plan, RunbookError> {
    let subject = match resolve(engine, &req.name, req.project.as_deref()).await {
        Ok(s) => s,
        // Every replica may be mid-rollback (renamed away): look for what berth left behind.
        Err(e @ RunbookError::NotFound(..)) => {
            let all = engine.containers().await?;
            let leftovers: Vec<Container> = all
                .iter()
                .filter(|c| {
                    let base = set_aside_base(&c.name).or(recover::base_name(&c.name, NEW_MARK));
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
    // A run in flight holds the service: refused before anything is planned, naming the holder.
    // A recovery is the one way past it: it takes over the lock of the run it ends.
    let held = super::lock::held_in(
        &subject.all,
        &super::lock::lock_name(
            subject.project.as_deref(),
            subject.service.as_deref(),
            &subject.label,
        ),
    );
    if req.recover.is_none() {
        super::lock::refuse_if_held(engine, &subject).await?;
    }
    if let Some(plan) = recover::plan_recover(
        engine,
        config,
        &subject.label,
        &subject.containers,
        &subject.all,
        req.recover,
        files.as_ref(),
    )? {
        let mut plan = plan;
        plan.confirm_by(&subject);
        let mut scope =
            super::lock::scope_for(engine, &subject, &plan.action, &super::lock::new_run_id());
        scope.takeover = true;
        // What a recovery works on is what the cut-off run left: it reads it again as it goes.
        scope.basis.clear();
        if let Some(held) = &held {
            let now = super::lock::server_now(engine).await;
            plan.notes.push(format!(
                "the service is locked ({}): the recovery takes that lock over, as its run was cut off; if that berth still runs, stop here",
                held.describe(now)
            ));
        }
        plan.lock = Some(scope);
        return Ok(plan);
    }
    if req.recover.is_some() {
        return Err(RunbookError::Invalid(format!(
            "nothing to recover: {} shows no interrupted rollback (no -berth-kept- container with compose's labels, no -berth-new- container)",
            subject.label
        )));
    }
    if req.forward && req.to.is_none() {
        return Err(RunbookError::Invalid(format!(
            "deploy needs the tag to deploy: berth deploy {} --to TAG",
            req.name
        )));
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
    let mut pull = None;
    let (image, image_id) = match &req.to {
        Some(to) => {
            let reference = if to.contains([':', '/', '@']) || looks_like_id(to) {
                to.clone()
            } else {
                format!("{repo}:{to}")
            };
            match engine.docker.inspect_image(&reference).await {
                Ok(i) => (reference, i.id.unwrap_or_default()),
                // Not on the server: the registry may have it; the pull is then the first step.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) if !looks_like_id(&reference) => {
                    match registry::plan_pull(engine, &reference).await {
                        Ok(p) => {
                            pull = Some(Box::new(p));
                            (reference, String::new())
                        }
                        Err(e) => {
                            return Err(RunbookError::Invalid(format!(
                                "{reference} is not on {} and cannot be pulled: {e}; on the server: {}",
                                engine.target.name,
                                list(&cands)
                            )));
                        }
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {
                    return Err(RunbookError::Invalid(format!(
                        "image {reference} is not on {}; candidates: {}",
                        engine.target.name,
                        list(&cands)
                    )));
                }
                Err(e) => return Err(RunbookError::Engine(EngineError::from_bollard("image", e))),
            }
        }
        None => {
            let pick = preselect(&cands).map(|i| &cands[i]).ok_or_else(|| {
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
    if pull.is_none() && running.iter().all(|c| c.image_id == image_id) {
        return Err(RunbookError::Invalid(format!(
            "{} already runs {image} ({})",
            subject.label,
            short(&image_id)
        )));
    }
    // Each replica as the engine has it: its health check's interval, ports and networks.
    let mut inspects = Vec::new();
    for c in &running {
        inspects.push(
            engine
                .docker
                .inspect_container(&c.id, None::<InspectContainerOptions>)
                .await
                .map_err(|e| RunbookError::Engine(EngineError::from_bollard("container", e)))?,
        );
    }
    let mut health = super::health_settings(
        config,
        subject.project.as_deref(),
        subject.service.as_deref(),
    );
    // A deploy waits longer for the new version by default (30 tries, as rolling-deploy runbooks
    // do); a service's own health_retries wins.
    if req.forward
        && subject
            .service
            .as_deref()
            .and_then(|s| config.service(subject.project.as_deref(), s))
            .and_then(|s| s.health_retries)
            .is_none()
    {
        health.retries = health.retries.max(DEPLOY_HEALTH_RETRIES);
    }
    let health = health.at_check_interval(inspects.first().and_then(super::check_interval));
    // No journal, no run on production: a run cut off without one is found by nothing.
    let journal_refusal = journal::probe_local().err();
    if let Some(why) = &journal_refusal {
        let fix = "free the disk or make berth's data directory writable (BERTH_DATA_DIR)";
        if engine.target.is_production() {
            return Err(RunbookError::Invalid(format!(
                "the run journal cannot be written ({why}): berth runs nothing on production without it (a run cut off could not be found or recovered); {fix}"
            )));
        }
        if !req.force {
            return Err(RunbookError::NoJournal(format!(
                "the run journal cannot be written ({why}): a run cut off without it cannot be found or recovered; {fix}, or add --force to run without it"
            )));
        }
    }
    let ts = Utc::now().format("%Y%m%d%H%M%S").to_string();
    let rollback_id = format!(
        "{ts}-{:x}",
        std::process::id() ^ Utc::now().timestamp_subsec_nanos()
    );
    let title = match &pull {
        _ if req.forward => format!(
            "deploy {}: {} → {image}{}",
            subject.label,
            first.image,
            match &pull {
                Some(p) => format!(" (pulled from {} first)", p.registry),
                None => format!(" ({})", short(&image_id)),
            }
        ),
        Some(p) => format!(
            "roll back {} to {image} (pulled from {} first)",
            subject.label, p.registry
        ),
        None => format!(
            "roll back {} to {image} ({})",
            subject.label,
            short(&image_id)
        ),
    };
    let action = if req.forward { "deploy" } else { "rollback" };
    let mut plan = plan_base(engine, title, action, &subject.label, true);
    plan.confirm_by(&subject);
    let mut scope = super::lock::scope_for(engine, &subject, action, &rollback_id);
    scope.basis = running
        .iter()
        .map(|c| (c.name.clone(), c.id.clone()))
        .collect();
    plan.lock = Some(scope);
    plan.parameters = serde_json::json!({ "from": first.image, "from_image_id": first.image_id, "to": image, "image_id": image_id, "remove_old": req.remove_old, "retag": req.retag, "rollback_id": rollback_id });
    if let Some(why) = &journal_refusal {
        plan.notes.push(format!(
            "--force: no run journal ({why}): if this run is cut off, berth cannot find or recover it"
        ));
    }
    plan.notes.push(format!(
        "candidates, newest first: {}",
        describe_candidates(&cands)
    ));
    plan.notes.push(
        "each new container keeps the old one's configuration: env, command, entrypoint, mounts, networks and aliases, ports, labels (compose's too), restart policy, health check, user, working dir; settings that came from the old image follow the new image".into(),
    );
    if let Some(p) = &mut pull {
        p.step = plan.steps.len();
        plan.parameters["pull"] = serde_json::json!({
            "reference": p.reference, "registry": p.registry, "digest": p.digest,
        });
        plan.steps.push(Step::new(
            format!("{}: nothing changes before it succeeds", p.describe()),
            vec![format!("POST /images/create?fromImage={}", p.reference)],
        ));
    }
    let mut pin = if first.is_compose() {
        compose_notes(&mut plan, first, &image, req, files.as_ref())
            .await
            .map_err(RunbookError::Invalid)?
    } else {
        if req.pin {
            return Err(RunbookError::Invalid(format!(
                "--pin: {} is not a compose service, there is no .env to pin",
                subject.label
            )));
        }
        None
    };
    if let Some(p) = &mut pin {
        p.step = plan.steps.len();
        plan.parameters["pin"] = serde_json::json!({
            "file": p.plan.env_path, "backup": p.backup, "variable": p.plan.var,
            "from": p.plan.old_value, "to": p.plan.new_value,
        });
        plan.steps.push(Step::new(
            format!(
                "pin {}={} in {} (was {}; a copy is kept as {}): the next `docker compose up -d` keeps this version for {}",
                p.plan.var,
                p.plan.new_value,
                p.plan.env_path,
                p.plan.old_value,
                p.backup,
                p.plan.services.join(", ")
            ),
            vec![
                format!("cp {} {}", p.plan.env_path, p.backup),
                format!("write {} (only the {} line changes)", p.plan.env_path, p.plan.var),
            ],
        ));
    }
    let mut replicas = Vec::new();
    for (c, inspect) in running.iter().zip(&inspects) {
        let fixed = has_fixed_port(inspect);
        if fixed {
            plan.notes.push(format!(
                "{} publishes fixed host port(s) {}: it is stopped before its replacement starts, so it does not serve for the gap (measured)",
                c.name,
                c.ports.iter().filter_map(|p| p.host_port).map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
        let aliases = replica_aliases(inspect, c.service.as_deref());
        replicas.push(plan_replica(
            &mut plan.steps,
            c,
            fixed,
            &image,
            &health,
            &ts,
            aliases,
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
    let keep_old = super::keep_old(
        config,
        subject.project.as_deref(),
        subject.service.as_deref(),
    );
    // Keeping no earlier release is removing the old containers.
    let remove_old = req.remove_old || keep_old == 0;
    let remove_old_step = remove_old.then(|| {
        plan.steps.push(Step::new(
            "remove the old container(s)",
            replicas
                .iter()
                .map(|r| format!("DELETE /containers/{}", r.kept_name))
                .collect(),
        ));
        plan.steps.len() - 1
    });
    let keep_step = (!remove_old).then(|| {
        plan.steps.push(Step::new(
            format!(
                "keep the old container(s) stopped as <name>{KEPT_MARK}{ts}, out of compose's sight: a copy with compose's labels set aside (restore gives them back) takes that name, the original removed"
            ),
            replicas
                .iter()
                .flat_map(|r| {
                    let copy = format!("{}{COPY_SUFFIX}", r.kept_name);
                    [
                        format!("POST /containers/create?name={copy}"),
                        format!("DELETE /containers/{}", r.kept_name),
                        format!("POST /containers/{copy}/rename?name={}", r.kept_name),
                    ]
                })
                .collect(),
        ));
        plan.steps.len() - 1
    });
    let names: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
    let releases = kept_releases(
        &subject.all,
        subject.project.as_deref(),
        subject.service.as_deref(),
        &names,
    );
    // This run's release counts as one of the `keep_old` when it keeps its old containers.
    let older_kept = keep_old.saturating_sub(usize::from(!remove_old));
    let trimmed: Vec<(String, String)> = kept::beyond(&releases, older_kept)
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let trim = (!trimmed.is_empty()).then(|| {
        plan.steps.push(Step::new(
            format!(
                "remove {} kept container(s) of releases older than the {keep_old} kept (keep_old): {}",
                trimmed.len(),
                trimmed
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            trimmed
                .iter()
                .map(|(id, _)| format!("DELETE /containers/{}", short(id)))
                .collect(),
        ));
        (plan.steps.len() - 1, trimmed)
    });
    if !remove_old {
        plan.notes.push(format!(
            "the old container(s) stay, stopped, as <name>{KEPT_MARK}{ts}: `docker compose ps` and `up -d` do not see them; {keep_old} release(s) are kept (keep_old), older kept containers are removed when the run succeeds, and by prune (--remove-old keeps none)"
        ));
    }
    plan.promises = promises(&subject, &replicas, &image, keep_old, remove_old);
    let logs_step = plan.steps.len();
    plan.steps.push(Step::new(
        "show the new container's first log lines",
        vec!["GET /containers/{new}/logs".into()],
    ));
    plan.kind = PlanKind::Rollback(RollbackPlan {
        pull,
        forward: req.forward,
        pin,
        image,
        image_id,
        replicas,
        health,
        rollback_id,
        retag,
        remove_old_step,
        keep_step,
        trim,
        logs_step,
        without_journal: req.force && !engine.target.is_production(),
    });
    Ok(plan)
}

/// What a rollback or deploy promises about the engine's end state: every replica runs the image,
/// healthy; the service's name resolves on each of its networks to the replicas and nothing else;
/// no more kept releases than `keep_old`.
fn promises(
    subject: &super::Subject,
    replicas: &[Replica],
    image: &str,
    keep_old: usize,
    remove_old: bool,
) -> Vec<Promise> {
    let names: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
    let mut out = vec![Promise::new(
        format!(
            "{}: {} running {image}, healthy{}",
            subject.label,
            names.join(", "),
            if subject.service.is_some() {
                ", and no other replica"
            } else {
                ""
            }
        ),
        Expect::ReplicasRun {
            project: subject.project.clone(),
            service: subject.service.clone(),
            names: names.clone(),
            image: image.to_string(),
        },
    )];
    if let Some(service) = &subject.service {
        let networks: std::collections::BTreeSet<&String> = replicas
            .iter()
            .flat_map(|r| r.aliases.iter())
            .filter(|(_, a)| a.contains(service))
            .map(|(n, _)| n)
            .collect();
        for network in networks {
            out.push(Promise::new(
                format!(
                    "`{service}` resolves on {network} to the new {} only",
                    names.join(", ")
                ),
                Expect::ResolvesTo {
                    network: network.clone(),
                    name: service.clone(),
                    containers: names.clone(),
                },
            ));
        }
    }
    out.push(Promise::new(
        format!(
            "{}: at most {keep_old} kept release(s){}",
            subject.label,
            if remove_old {
                ""
            } else {
                " (this run's included)"
            }
        ),
        Expect::KeptAtMost {
            project: subject.project.clone(),
            service: subject.service.clone(),
            replicas: names,
            releases: keep_old,
        },
    ));
    out
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
            if let Some(m) = c.mark() {
                s.push_str(&format!(" [{m}]"));
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
    aliases: Aliases,
) -> Replica {
    let s = short(&c.id).to_string();
    let kept_name = format!("{}{KEPT_MARK}{ts}", c.name);
    let new_name = if fixed {
        c.name.clone()
    } else {
        format!("{}{NEW_MARK}{ts}", c.name)
    };
    let mut push = |d: String, calls: Vec<String>| {
        steps.push(Step::new(d, calls));
        steps.len() - 1
    };
    // Its name for clients only once it is verified: until then it is reached by its own name.
    let publish = {
        let named: Vec<String> = aliases
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(n, a)| format!("{} on {n}", a.join(", ")))
            .collect();
        if named.is_empty() {
            String::new()
        } else {
            format!(
                "; only then does it answer to {} (created without them, it is reached by its own name while verified)",
                named.join("; ")
            )
        }
    };
    let publish_calls = aliases
        .keys()
        .flat_map(|n| {
            [
                format!("POST /networks/{n}/disconnect {{new}}"),
                format!("POST /networks/{n}/connect {{new}} (with the aliases)"),
            ]
        })
        .collect::<Vec<_>>();
    let (first, create, start, verify, switch);
    if fixed {
        first = push(
            format!(
                "stop {} ({s}) and set it aside as {kept_name} until the run ends (not removed): its host port must be free",
                c.name
            ),
            vec![
                format!(
                    "POST /containers/{s}/stop (its own stop timeout; done when the engine shows it exited)"
                ),
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
            format!("verify health ({}){publish}", health_what(c, health)),
            [
                vec!["GET /containers/{new}/json".to_string()],
                publish_calls.clone(),
            ]
            .concat(),
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
            format!("verify health ({}){publish}", health_what(c, health)),
            [
                vec!["GET /containers/{new}/json".to_string()],
                publish_calls.clone(),
            ]
            .concat(),
        );
        switch = Some(push(
            format!(
                "take the old {} ({s}) out of its networks' DNS, stop it, connect it back (stopped), set it aside as {kept_name} until the run ends and rename the new one to {}",
                c.name, c.name
            ),
            vec![
                format!("POST /networks/{{net}}/disconnect {s} (each user-defined network)"),
                format!("POST /containers/{s}/stop (its own stop timeout)"),
                format!("POST /networks/{{net}}/connect {s} (the same aliases)"),
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
        aliases,
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
    format!(
        "{s}, {}, then steady for {:.1} s",
        h.describe(),
        h.window().as_secs_f64()
    )
}
