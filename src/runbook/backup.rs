//! A database backup as the runbook runs it: the service's database container found by name, the
//! dump of `crate::backup` audited; `berth backup` calls [`backup`], the console's key plans a
//! [`Request::Backup`](super::Request) that the run view follows like any other action.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::postcondition::{ContainerEnd, Expect, Promise};
use super::{AuditEntry, AuditLog, Plan, PlanKind, RunbookError, Runner, Step, Subject, plan_base};
use crate::backup::shell::Server;
use crate::backup::{self, Db, Meta, Progress, Settings, kind::quote};
use crate::config::Config;
use crate::engine::Engine;

/// `berth backup NAME` as the console asks for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupRequest {
    pub name: String,
    pub project: Option<String>,
}

/// The database container of a resolved name: its first running replica.
pub fn db_of(subject: &Subject) -> Result<Db, String> {
    let container = subject
        .containers
        .iter()
        .find(|c| c.state.is_up())
        .cloned()
        .ok_or_else(|| {
            format!(
                "{} is not running: a dump runs inside the database's container; start it first",
                subject.label
            )
        })?;
    Ok(Db {
        project: subject.project.clone().unwrap_or_else(|| "_".into()),
        service: subject
            .service
            .clone()
            .unwrap_or_else(|| container.name.clone()),
        label: subject.label.clone(),
        container,
    })
}

/// Finds the service's running container.
pub async fn find(engine: &Engine, name: &str, project: Option<&str>) -> Result<Db, String> {
    let subject = super::resolve(engine, name, project)
        .await
        .map_err(|e| e.to_string())?;
    db_of(&subject)
}

/// Backs up and audits the backup, whatever its outcome.
pub async fn backup(
    engine: &Engine,
    server: &Server,
    config: &Config,
    request: &backup::Request,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Meta, String> {
    let db = find(engine, &request.name, request.project.as_deref()).await?;
    backup_of(engine, server, config, &db, request, progress).await
}

/// [`backup`] of a database already found.
pub(crate) async fn backup_of(
    engine: &Engine,
    server: &Server,
    config: &Config,
    db: &Db,
    request: &backup::Request,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Meta, String> {
    let started = Instant::now();
    let result = match backup::settings(config, db) {
        Ok(settings) => backup::take(engine, server, db, &settings, request, progress).await,
        Err(e) => Err(e),
    };
    let (ok, message, parameters) = match &result {
        Ok(m) => (
            true,
            format!("{} ({} bytes)", m.file, m.size),
            serde_json::json!({"id": m.id, "file": m.file, "size": m.size, "sha256": m.sha256, "kind": m.kind, "reason": m.reason}),
        ),
        Err(e) => (
            false,
            e.clone(),
            serde_json::json!({"reason": request.reason}),
        ),
    };
    let audited = audit(
        engine,
        &db.label,
        ok,
        &message,
        parameters,
        started.elapsed(),
        &db.container.image_id,
    );
    match (result, audited) {
        (Ok(m), Ok(())) => Ok(m),
        (Ok(m), Err(e)) => Err(format!("backup {} written, but {e}", m.file)),
        (Err(e), _) => Err(e),
    }
}

/// One audit line for a backup taken outside a plan's run.
fn audit(
    engine: &Engine,
    target: &str,
    ok: bool,
    message: &str,
    parameters: serde_json::Value,
    took: Duration,
    image_id: &str,
) -> Result<(), String> {
    // Like a runbook run's closing line: the time it started, and how long it took.
    let started = Utc::now() - chrono::TimeDelta::from_std(took).unwrap_or_default();
    let entry = AuditEntry {
        time: started,
        user: super::audit::local_user(),
        server: engine.target.name.clone(),
        environment: engine.target.environment.clone(),
        action: "backup".into(),
        target: target.into(),
        parameters,
        images_before: vec![image_id.to_string()],
        images_after: vec![image_id.to_string()],
        result: if ok { "ok" } else { "failed" }.into(),
        message: message.into(),
        duration_ms: took.as_millis() as u64,
        ssh_user: None,
    };
    AuditLog::from_env()
        .append(&entry)
        .map_err(|e| e.to_string())
}

/// The server a backup plan writes on, carried by the plan to its run.
#[derive(Clone)]
pub(crate) struct OnServer(pub Arc<Server>);

impl std::fmt::Debug for OnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnServer({})", self.0.docker)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BackupPlan {
    server: OnServer,
    db: Db,
    settings: Settings,
}

/// The database and its backup settings, or the one line that says what is missing.
pub(crate) async fn plan_parts(
    engine: &Engine,
    config: &Config,
    name: &str,
    project: Option<&str>,
) -> Result<(Subject, Db, Settings), RunbookError> {
    let subject = super::resolve(engine, name, project).await?;
    let db = db_of(&subject).map_err(RunbookError::Invalid)?;
    let settings = backup::settings(config, &db).map_err(RunbookError::Invalid)?;
    Ok((subject, db, settings))
}

/// What the dump step says and calls.
pub(crate) fn dump_step(server: &Server, db: &Db, settings: &Settings, why: &str) -> Step {
    Step::new(
        format!(
            "dump the {} database of {} (in {}){why} into {} on the server",
            settings.kind.name(),
            db.label,
            db.container.name,
            settings.dir,
        ),
        vec![format!(
            "{} exec {} sh -c '<{} dump>' > {}/<UTC>.{}",
            server.docker,
            quote(&db.container.name),
            settings.kind.name(),
            settings.dir,
            settings.kind.ext()
        )],
    )
}

/// The plan of one backup: the dump into the service's backup directory; the database keeps
/// running.
pub async fn plan_backup(
    engine: &Engine,
    config: &Config,
    req: &BackupRequest,
    server: Arc<Server>,
) -> Result<Plan, RunbookError> {
    let (subject, db, settings) =
        plan_parts(engine, config, &req.name, req.project.as_deref()).await?;
    let mut plan = plan_base(
        engine,
        format!("back up {}", db.label),
        "backup",
        &db.label,
        true,
    );
    plan.confirm_by(&subject);
    plan.parameters =
        serde_json::json!({"name": req.name, "project": req.project, "kind": settings.kind.name()});
    plan.notes.push(format!(
        "the dump runs inside {} with the credentials of its own environment and is written on the server, never here; the oldest beyond keep = {} are removed",
        db.container.name, settings.keep
    ));
    plan.steps.push(dump_step(&server, &db, &settings, ""));
    plan.promises.push(Promise::new(
        format!("{}: still running", db.container.name),
        Expect::Container {
            id: db.container.id.clone(),
            end: ContainerEnd::Running { healthy: false },
        },
    ));
    plan.kind = PlanKind::Backup(Box::new(BackupPlan {
        server: OnServer(server),
        db,
        settings,
    }));
    Ok(plan)
}

/// A progress line of a dump: bytes and rate.
pub(crate) fn progress_line(p: Progress) -> String {
    let rate = p.bytes as f64 / p.elapsed.as_secs_f64().max(0.001);
    format!(
        "{} written, {}",
        crate::format::bytes(p.bytes),
        crate::format::rate(rate)
    )
}

/// Takes the dump of a plan's step `i`, its progress as the step's output.
pub(crate) async fn take_step(
    engine: &Engine,
    server: &Server,
    db: &Db,
    settings: &Settings,
    request: &backup::Request,
    run: &Runner,
    i: usize,
) -> Result<Meta, String> {
    let progress = |p: Progress| run.line(i, progress_line(p));
    backup::take(engine, server, db, settings, request, &progress).await
}

pub(crate) async fn run(
    p: &BackupPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    run.images_before.insert(p.db.container.image_id.clone());
    run.images_after.insert(p.db.container.image_id.clone());
    let t = run.start(0).await;
    let request = backup::Request {
        name: p.db.label.clone(),
        ..Default::default()
    };
    let res = take_step(engine, &p.server.0, &p.db, &p.settings, &request, run, 0).await;
    let message = res.as_ref().map_err(Clone::clone).map(|m| {
        format!(
            "{} ({}, sha256 {})",
            m.file,
            crate::format::bytes(m.size),
            &m.sha256[..12.min(m.sha256.len())]
        )
    });
    if let Ok(m) = &res {
        run.metrics.insert("backup_id".into(), m.id.clone().into());
        run.metrics.insert("bytes".into(), m.size.into());
    }
    run.finish(0, t, message.clone()).await;
    message.map(|m| format!("backup {m}"))
}
