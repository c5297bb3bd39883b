//! `restore SERVICE --from ID`: a backup written by `crate::backup` read back into the database.
//! The plan names what is overwritten and which services stop; the run checks the file's sha256
//! on the server before anything changes, takes a safety backup of the current data (unless
//! told not to), stops the project's other running services, streams the file from the server's
//! disk into the restore inside the database's container, and starts the services again, verified
//! healthy, also when the restore failed.

use std::sync::Arc;

use bollard::query_parameters::{
    InspectContainerOptions, StartContainerOptions, StopContainerOptions,
};

use super::actions::stop_grace;
use super::backup::{OnServer, dump_step, plan_parts, take_step};
use super::postcondition::{ContainerEnd, Expect, Promise};
use super::{HealthSettings, Plan, PlanKind, RunbookError, Runner, Step, eng, health, plan_base};
use crate::backup::shell::Server;
use crate::backup::{self, Db, Meta, Settings, kind::quote};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::Container;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreRequest {
    pub name: String,
    pub project: Option<String>,
    /// The backup's id as `berth backup --list` shows it.
    pub from: String,
    /// Overwrite without a backup of the current data first (audited).
    pub no_safety_backup: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RestorePlan {
    server: OnServer,
    db: Db,
    settings: Settings,
    from: Meta,
    script: String,
    /// The project's other running containers, stopped while the restore runs.
    apps: Vec<Container>,
    /// Each app's health settings, polled at its own health check's interval.
    health: Vec<HealthSettings>,
    safety: Option<usize>,
    stop: Option<usize>,
    restore: usize,
    start: Option<usize>,
}

/// The containers of the database's project that stop while it is overwritten: every other
/// running service's (an app reading a half-restored database would serve wrong data).
fn apps_of(db: &Db, all: &[Container]) -> Vec<Container> {
    let mut apps: Vec<Container> = all
        .iter()
        .filter(|c| c.project.as_deref() == Some(db.project.as_str()))
        .filter(|c| c.service.as_deref() != Some(db.service.as_str()))
        .filter(|c| c.id != db.container.id && c.state.is_up())
        .filter(|c| !super::is_berth_aux(c) && !super::is_oneoff(c))
        .cloned()
        .collect();
    apps.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    apps
}

pub async fn plan_restore(
    engine: &Engine,
    config: &Config,
    req: &RestoreRequest,
    server: Arc<Server>,
) -> Result<Plan, RunbookError> {
    let (subject, db, settings) =
        plan_parts(engine, config, &req.name, req.project.as_deref()).await?;
    super::lock::refuse_if_held(engine, &subject).await?;
    let script = settings
        .kind
        .restore_script(settings.restore.as_deref())
        .map_err(RunbookError::Invalid)?;
    let from = req.from.trim();
    let metas = backup::list_dir(&server, &settings.dir)
        .await
        .map_err(RunbookError::Invalid)?;
    let Some(meta) = metas.iter().find(|m| m.id == from).cloned() else {
        return Err(RunbookError::Invalid(format!(
            "no backup '{from}' of {} in {} on the server: pick an ID from `berth backup --list {}`",
            db.label, settings.dir, db.label
        )));
    };
    if meta.kind != settings.kind.name() {
        return Err(RunbookError::Invalid(format!(
            "backup {from} is a {} dump and {} is configured as {}: nothing to restore it with",
            meta.kind,
            db.label,
            settings.kind.name()
        )));
    }
    let apps = apps_of(&db, &subject.all);
    let mut health = Vec::new();
    for c in &apps {
        let own = super::health_settings(config, c.project.as_deref(), c.service.as_deref());
        let inspected = engine
            .docker
            .inspect_container(&c.id, None::<InspectContainerOptions>)
            .await
            .ok();
        health.push(own.at_check_interval(inspected.as_ref().and_then(super::check_interval)));
    }
    let mut plan = plan_base(
        engine,
        format!("restore {} from backup {from}", db.label),
        "restore",
        &db.label,
        true,
    );
    plan.confirm_by(&subject);
    plan.lock = Some(super::lock::scope_for(
        engine,
        &subject,
        "restore",
        &super::lock::new_run_id(),
    ));
    plan.notes.push(format!(
        "overwrites the {} database of {} (in {}) with {}: taken {} UTC, {}, sha256 {}",
        settings.kind.name(),
        db.label,
        db.container.name,
        meta.file,
        meta.started.format("%Y-%m-%d %H:%M:%S"),
        crate::format::bytes(meta.size),
        &meta.sha256[..12.min(meta.sha256.len())]
    ));
    let services: Vec<String> = {
        let mut s: Vec<String> = apps
            .iter()
            .map(|c| c.service.clone().unwrap_or_else(|| c.name.clone()))
            .collect();
        s.dedup();
        s
    };
    plan.notes.push(if apps.is_empty() {
        format!(
            "no other service of project {} runs: nothing is stopped",
            db.project
        )
    } else {
        format!(
            "stops while it runs: {} ({}), every other running service of project {}",
            services.join(", "),
            apps.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            db.project
        )
    });
    plan.notes.push(if req.no_safety_backup {
        "no safety backup (--no-safety-backup): the current data is not kept anywhere".into()
    } else {
        format!(
            "the current data is backed up first into {} (a safety backup)",
            settings.dir
        )
    });
    plan.steps.push(Step::new(
        format!(
            "check {}'s sha256 on the server against its record before anything is overwritten",
            meta.file
        ),
        vec![format!("sha256sum {}", quote(&meta.file))],
    ));
    let safety = (!req.no_safety_backup).then(|| {
        plan.steps
            .push(dump_step(&server, &db, &settings, " as it is now"));
        plan.steps.len() - 1
    });
    let stop = (!apps.is_empty()).then(|| {
        plan.steps.push(Step::new(
            format!("stop {}", names(&apps)),
            apps.iter()
                .map(|c| {
                    format!(
                        "POST /containers/{}/stop?t={}",
                        super::short(&c.id),
                        stop_grace(c)
                    )
                })
                .collect(),
        ));
        plan.steps.len() - 1
    });
    plan.steps.push(Step::new(
        format!(
            "overwrite the database of {} with the backup, streamed from the server's disk into {}",
            db.label, db.container.name
        ),
        vec![format!(
            "{} exec -i {} sh -c '<{} restore>' < {}",
            server.docker,
            quote(&db.container.name),
            settings.kind.name(),
            quote(&meta.file)
        )],
    ));
    let restore = plan.steps.len() - 1;
    let start = (!apps.is_empty()).then(|| {
        plan.steps.push(Step::new(
            format!(
                "start {} again and wait for each to be healthy ({})",
                names(&apps),
                health.first().map(|h| h.describe()).unwrap_or_default()
            ),
            apps.iter()
                .map(|c| format!("POST /containers/{}/start", super::short(&c.id)))
                .collect(),
        ));
        plan.steps.len() - 1
    });
    for c in std::iter::once(&db.container).chain(apps.iter()) {
        plan.promises.push(Promise::new(
            format!(
                "{}: running{}",
                c.name,
                if c.has_healthcheck { ", healthy" } else { "" }
            ),
            Expect::Container {
                id: c.id.clone(),
                end: ContainerEnd::Running {
                    healthy: c.has_healthcheck,
                },
            },
        ));
    }
    plan.parameters = serde_json::json!({
        "name": req.name,
        "project": req.project,
        "from": meta.id,
        "file": meta.file,
        "sha256": meta.sha256,
        "safety_backup": if req.no_safety_backup { "skipped" } else { "taken" },
        "stopped": apps.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
    });
    plan.kind = PlanKind::Restore(Box::new(RestorePlan {
        server: OnServer(server),
        db,
        settings,
        from: meta,
        script,
        apps,
        health,
        safety,
        stop,
        restore,
        start,
    }));
    Ok(plan)
}

fn names(apps: &[Container]) -> String {
    apps.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn run(
    p: &RestorePlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let server = &p.server.0;
    let file = &p.from.file;
    for c in std::iter::once(&p.db.container).chain(p.apps.iter()) {
        run.images_before.insert(c.image_id.clone());
    }
    // The file as recorded, or nothing changes.
    let t = run.start(0).await;
    let checked = match backup::checksum(server, file).await {
        Ok((size, sha)) if sha == p.from.sha256 && size == p.from.size => {
            Ok(format!("{file}: sha256 {} as recorded", &sha[..12]))
        }
        Ok((size, sha)) => Err(format!(
            "the backup file {file} does not match its record (sha256 {} and {size} bytes on the server, {} and {} bytes recorded): nothing was changed; restore another backup (`berth backup --list`)",
            &sha[..12],
            &p.from.sha256[..12.min(p.from.sha256.len())],
            p.from.size
        )),
        Err(e) => Err(format!("{e}: nothing was changed")),
    };
    if !run.finish(0, t, checked.clone()).await {
        return checked;
    }
    if run.cancelled() {
        return Err("cancelled: nothing was changed".into());
    }
    if let Some(i) = p.safety {
        let t = run.start(i).await;
        let request = backup::Request {
            name: p.db.label.clone(),
            reason: Some(format!("before restoring {}", p.from.id)),
            spare: Some(file.clone()),
            ..Default::default()
        };
        let res = take_step(engine, server, &p.db, &p.settings, &request, run, i)
            .await
            .map(|m| {
                run.metrics
                    .insert("safety_backup".into(), m.id.clone().into());
                format!("safety backup {} ({})", m.id, crate::format::bytes(m.size))
            })
            .map_err(|e| format!("the safety backup failed: {e}; nothing was changed"));
        if !run.finish(i, t, res.clone()).await {
            return res;
        }
    }
    if run.cancelled() {
        return Err("cancelled: nothing was changed".into());
    }
    // Stop the apps; on a failure, the ones already stopped are started again below.
    let mut stopped: Vec<&Container> = Vec::new();
    let mut failure = None;
    if let Some(i) = p.stop {
        let t = run.start(i).await;
        for c in &p.apps {
            let res = engine
                .docker
                .stop_container(
                    &c.id,
                    // Its own stop timeout (compose's stop_grace_period), as `docker stop`.
                    Some(StopContainerOptions {
                        t: Some(stop_grace(c)),
                        signal: None,
                    }),
                )
                .await;
            match res {
                Ok(()) => {
                    stopped.push(c);
                    run.out(i, format!("{} stopped", c.name)).await;
                }
                Err(e) => {
                    failure = Some(format!("could not stop {}: {}", c.name, eng(engine, e)));
                    break;
                }
            }
        }
        let res = match &failure {
            None => Ok(format!("{} stopped", names(&p.apps))),
            Some(e) => Err(e.clone()),
        };
        run.finish(i, t, res).await;
    }
    if failure.is_none() {
        let t = run.start(p.restore).await;
        let res = backup::restore_from(server, &p.db.container.id, &p.script, file)
            .await
            .map(|()| format!("{} restored from {}", p.db.label, p.from.id))
            .map_err(|e| format!("the restore of {} failed ({e})", p.db.label));
        if let Err(e) = &res {
            failure = Some(e.clone());
        }
        run.finish(p.restore, t, res).await;
    }
    // Whatever happened, what was stopped runs again.
    if let Some(i) = p.start
        && !stopped.is_empty()
    {
        let t = run.start(i).await;
        let mut problems = Vec::new();
        for c in &stopped {
            if let Err(e) = engine
                .docker
                .start_container(&c.id, None::<StartContainerOptions>)
                .await
            {
                problems.push(format!("could not start {}: {}", c.name, eng(engine, e)));
            }
        }
        for (c, h) in stopped.iter().zip(&p.health) {
            match health::wait_healthy(engine, &c.id, h, run, i).await {
                Ok(m) => run.out(i, m).await,
                Err(e) => problems.push(format!("{}: {e}", c.name)),
            }
            run.images_after.insert(c.image_id.clone());
        }
        let res = if problems.is_empty() {
            Ok(format!("{} running again", names(&p.apps)))
        } else {
            Err(problems.join("; "))
        };
        if let Err(e) = &res
            && failure.is_none()
        {
            failure = Some(e.clone());
        }
        run.finish(i, t, res).await;
    }
    run.images_after.insert(p.db.container.image_id.clone());
    // The audit line keeps the result's message: it names the safety backup to go back to.
    let safety = match run.metrics.get("safety_backup").and_then(|v| v.as_str()) {
        Some(id) => format!(" (the data before it: safety backup {id})"),
        None => String::new(),
    };
    match failure {
        Some(e) => Err(format!("{e}{safety}")),
        None => Ok(format!(
            "{} restored from backup {}{safety}",
            p.db.label, p.from.id
        )),
    }
}
