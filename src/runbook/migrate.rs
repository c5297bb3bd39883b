//! Database migrations: the service's migration command run inside its running container through the
//! exec API (or in a one-off container from its image), output streamed live, exit code checked.

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, StartContainerOptions,
    WaitContainerOptions,
};
use futures::StreamExt;

use std::sync::Arc;
use std::time::Duration;

use super::backup::{OnServer, dump_step, plan_parts, take_step};
use super::migration_plan::{self as mplan, Pending};
use super::postcondition::{Expect, Promise};
use super::{
    LABEL_ONEOFF, Plan, PlanKind, RunbookError, Runner, Step, Subject, eng, plan_base, resolve,
    short,
};
use crate::backup::shell::Server;
use crate::backup::{self, Db, Settings};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::{Container, mask_command};

/// Longest output line kept; longer ones are cut so one runaway line cannot grow memory.
const MAX_LINE: usize = 8192;
/// Most output a read-only command (plan, probe, status) may return; the rest is cut.
const READ_MAX: usize = 256 * 1024;
/// Longest a read-only command may take: a Django start on a busy server takes seconds.
pub(crate) const READ_BUDGET: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Alembic,
    Django,
    Rails,
    Prisma,
}

impl Preset {
    pub fn parse(s: &str) -> Result<Preset, RunbookError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "alembic" => Ok(Preset::Alembic),
            "django" => Ok(Preset::Django),
            "rails" => Ok(Preset::Rails),
            "prisma" => Ok(Preset::Prisma),
            other => Err(RunbookError::Invalid(format!(
                "unknown migration preset '{other}': use alembic, django, rails or prisma"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Alembic => "alembic",
            Preset::Django => "django",
            Preset::Rails => "rails",
            Preset::Prisma => "prisma",
        }
    }

    /// The command line: migrate (to `target` when given) or show status.
    pub fn command(self, status: bool, target: Option<&str>) -> Result<String, RunbookError> {
        Ok(match (self, status, target) {
            (Preset::Alembic, true, _) => "alembic current".into(),
            (Preset::Alembic, false, None) => "alembic upgrade head".into(),
            // Migrating to a named target is how one rolls a migration back.
            (Preset::Alembic, false, Some(t)) => format!(
                "alembic downgrade {}",
                shlex::try_quote(t).map_err(|_| bad_target(t))?
            ),
            (Preset::Django, true, _) => "python manage.py showmigrations".into(),
            (Preset::Django, false, None) => "python manage.py migrate".into(),
            (Preset::Django, false, Some(t)) => {
                // `app target` (two words) as Django takes them.
                let parts: Vec<String> = t
                    .split_whitespace()
                    .map(|p| shlex::try_quote(p).map(|q| q.into_owned()))
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad_target(t))?;
                format!("python manage.py migrate {}", parts.join(" "))
            }
            (Preset::Rails, true, _) => "bin/rails db:migrate:status".into(),
            (Preset::Rails, false, None) => "bin/rails db:migrate".into(),
            (Preset::Rails, false, Some(t)) => format!(
                "bin/rails db:migrate VERSION={}",
                shlex::try_quote(t).map_err(|_| bad_target(t))?
            ),
            (Preset::Prisma, true, _) => "npx prisma migrate status".into(),
            (Preset::Prisma, false, None) => "npx prisma migrate deploy".into(),
            (Preset::Prisma, false, Some(_)) => {
                return Err(RunbookError::Invalid(
                    "prisma has no migrate-to-target; use --command with `npx prisma migrate resolve --rolled-back NAME`".into(),
                ));
            }
        })
    }

    /// The command that prints the migration plan without applying it (to `target` when given).
    pub fn plan_command(self, target: Option<&str>) -> Result<Option<String>, RunbookError> {
        Ok(match self {
            Preset::Django => Some(match target {
                None => "python manage.py migrate --plan".into(),
                Some(t) => {
                    let migrate = Preset::Django.command(false, Some(t))?;
                    format!("{migrate} --plan")
                }
            }),
            Preset::Alembic => Some(match target {
                None => "alembic history -r current:heads --verbose".into(),
                Some(t) => format!(
                    "alembic history -r {}:current --verbose",
                    shlex::try_quote(t).map_err(|_| bad_target(t))?
                ),
            }),
            Preset::Rails | Preset::Prisma => None,
        })
    }

    /// A guess from the image name, labels and environment.
    pub fn guess(c: &Container) -> Option<Preset> {
        if let Some(p) = c
            .labels
            .get("berth.migrate.preset")
            .and_then(|p| Preset::parse(p).ok())
        {
            return Some(p);
        }
        let image = c.image.to_ascii_lowercase();
        let env_has = |k: &str| c.env.iter().any(|e| e.split('=').next() == Some(k));
        if image.contains("alembic") || env_has("ALEMBIC_CONFIG") {
            Some(Preset::Alembic)
        } else if image.contains("django") || env_has("DJANGO_SETTINGS_MODULE") {
            Some(Preset::Django)
        } else if image.contains("rails") || env_has("RAILS_ENV") {
            Some(Preset::Rails)
        } else if image.contains("prisma")
            || env_has("PRISMA_SCHEMA")
            || env_has("PRISMA_QUERY_ENGINE_LIBRARY")
        {
            Some(Preset::Prisma)
        } else {
            None
        }
    }
}

fn bad_target(t: &str) -> RunbookError {
    RunbookError::Invalid(format!(
        "migration target '{t}' cannot be quoted for the shell"
    ))
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrateRequest {
    pub name: String,
    pub project: Option<String>,
    pub command: Option<String>,
    pub preset: Option<String>,
    pub target: Option<String>,
    pub status: bool,
    pub one_off: bool,
    /// Back up the database before migrating also where it is not production.
    pub backup: bool,
    /// On production, migrate without the backup; needs `reason` (audited).
    pub no_backup: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct MigratePlan {
    container: Container,
    argv: Vec<String>,
    one_off: bool,
    /// The backup taken before the migration, as step 0.
    backup: Option<SafetyBackup>,
    /// The migration's own step.
    step: usize,
}

#[derive(Debug, Clone)]
struct SafetyBackup {
    server: OnServer,
    db: Db,
    settings: Settings,
    request: backup::Request,
}

/// What the migration tool said before anything ran.
struct ReadPlan {
    /// The command that printed it, as shown.
    command: String,
    pending: Vec<Pending>,
    /// How the status command reports these migrations: only Django's and alembic's plans name
    /// migrations berth can check afterwards (`None`: a configured plan, shown as it is).
    format: Option<mplan::StatusFormat>,
    /// Every revision the plan command named (alembic), the target's included.
    revisions: Vec<String>,
}

impl ReadPlan {
    fn names_known(&self) -> bool {
        self.format.is_some()
    }
}

/// Plans a migration (or a status query). Reads the engine only (and, for the backup before
/// it, a local engine's server: this machine).
pub async fn plan_migrate(
    engine: &Engine,
    config: &Config,
    req: &MigrateRequest,
) -> Result<Plan, RunbookError> {
    let server = crate::backup::shell::server_of(engine, |_| None)
        .ok()
        .map(Arc::new);
    plan_migrate_on(engine, config, req, server).await
}

/// [`plan_migrate`] with the server's shell the backup is written with (`None`: a TCP engine,
/// which has none).
pub async fn plan_migrate_on(
    engine: &Engine,
    config: &Config,
    req: &MigrateRequest,
    server: Option<Arc<Server>>,
) -> Result<Plan, RunbookError> {
    let subject = resolve(engine, &req.name, req.project.as_deref()).await?;
    if !req.status {
        super::lock::refuse_if_held(engine, &subject).await?;
    }
    let container = if req.one_off {
        subject.containers.first().cloned()
    } else {
        subject.containers.iter().find(|c| c.state == crate::engine::model::State::Running).cloned()
    }
    .ok_or_else(|| {
        RunbookError::Invalid(format!("{} has no running container to exec into; add --one-off to run it in a fresh container from its image", subject.label))
    })?;
    let svc = subject
        .service
        .as_deref()
        .and_then(|s| config.service(subject.project.as_deref(), s));
    let (command, source) = choose_command(req, svc, &container)?;
    if !req.status && req.no_backup && req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(RunbookError::Invalid(
            "--no-backup needs --reason TEXT: say why this migration runs without a backup (it is written to the audit)".into(),
        ));
    }
    // The preset that reads the plan and the status, also under a configured command.
    let preset = match req
        .preset
        .as_deref()
        .or(svc.and_then(|s| s.migrate_preset.as_deref()))
    {
        Some(p) => Some(Preset::parse(p)?),
        None => Preset::guess(&container),
    };
    let status_command = svc
        .and_then(|s| s.migrate_status.clone())
        .or_else(|| preset.and_then(|p| p.command(true, None).ok()));
    let argv = shlex::split(&command)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            RunbookError::Invalid(format!(
                "cannot parse the migration command `{}`: check its quotes",
                mask_command(&command)
            ))
        })?;
    let verb = if req.status {
        "migration status"
    } else {
        "migrate"
    };
    let title = format!("{verb} {} ({})", subject.label, source);
    let mut plan = plan_base(
        engine,
        title,
        if req.status {
            "migrate-status"
        } else {
            "migrate"
        },
        &subject.label,
        !req.status,
    );
    plan.confirm_by(&subject);
    if !req.status {
        plan.lock = Some(super::lock::scope_for(
            engine,
            &subject,
            "migrate",
            &super::lock::new_run_id(),
        ));
    }
    // What is shown, audited and posted: the command with its secrets masked; `argv` runs it.
    let command = mask_command(&command);
    plan.parameters = serde_json::json!({ "command": command, "target": req.target, "one_off": req.one_off, "container": container.name });
    let mut backup_step = None;
    if !req.status {
        let read = read_plan(
            engine,
            req,
            svc,
            preset,
            status_command.as_deref(),
            &container,
        )
        .await?;
        let applied = match (&read, &status_command) {
            (Some(r), Some(cmd)) if !r.pending.is_empty() => match r.format {
                Some(format) => Some(read_applied(engine, &container.id, cmd, format).await?),
                None => None,
            },
            _ => None,
        };
        // With a target, the plan undoes what is applied (Django's own way to roll back).
        let backwards = req.target.is_some()
            && match (&read, &applied) {
                (Some(r), Some(a)) => r.pending.first().is_some_and(|m| a.contains(&m.name)),
                _ => true,
            };
        if read.is_none() {
            plan.notes.push(if req.one_off {
                "the migration plan is not read for --one-off (no running container to read it in)".into()
            } else {
                "no migration plan is read first: set migrate_plan (or migrate_preset) for this service to see the pending migrations and which cannot be undone".into()
            });
        }
        if let Some(r) = &read {
            if backwards {
                refuse_across_irreversible(engine, config, &subject, svc, server.as_deref(), r)
                    .await?;
            }
            note_plan(&mut plan, r, backwards);
        }
        backup_step = plan_safety_backup(
            engine,
            config,
            req,
            &subject,
            svc,
            server,
            read.as_ref().filter(|_| !backwards),
            &container,
            &mut plan,
        )
        .await?;
        if let (Some(r), Some(cmd)) = (&read, &status_command)
            && r.names_known()
            && !r.pending.is_empty()
            && !req.one_off
        {
            let names: Vec<String> = r.pending.iter().map(|m| m.name.clone()).collect();
            let argv = split_command(cmd)?;
            let format = r.format.unwrap_or(mplan::StatusFormat::Django);
            // `alembic current` names the one revision the database is at: the last applied
            // going forwards, the target going back.
            let (applied, unapplied) = match (format, backwards) {
                (mplan::StatusFormat::Django, false) => (names.clone(), Vec::new()),
                (mplan::StatusFormat::Django, true) => (Vec::new(), names.clone()),
                (mplan::StatusFormat::Alembic, false) => {
                    (names.last().cloned().into_iter().collect(), Vec::new())
                }
                (mplan::StatusFormat::Alembic, true) => (
                    req.target
                        .iter()
                        .filter(|t| r.revisions.contains(*t))
                        .cloned()
                        .collect(),
                    names.clone(),
                ),
            };
            plan.promises.push(Promise::new(
                format!(
                    "`{}` reports {} {}",
                    mask_command(cmd),
                    if backwards {
                        "not applied:"
                    } else {
                        "applied:"
                    },
                    names.join(", ")
                ),
                Expect::Migrations {
                    container: container.id.clone(),
                    command: argv,
                    applied,
                    unapplied,
                    format,
                },
            ));
        }
    }
    let step = plan.steps.len();
    let s = short(&container.id).to_string();
    if req.one_off {
        plan.steps.push(Step::new(
            format!(
                "run `{command}` in a one-off container from {} with {}'s env, networks and mounts",
                container.image, container.name
            ),
            vec![
                "POST /containers/create".into(),
                "POST /containers/{new}/start".into(),
                "GET /containers/{new}/logs?follow=1".into(),
                "POST /containers/{new}/wait".into(),
            ],
        ));
        plan.steps.push(Step::new(
            "remove the one-off container",
            vec!["DELETE /containers/{new}".into()],
        ));
    } else {
        plan.steps.push(Step::new(
            format!("run `{command}` inside {} ({s})", container.name),
            vec![
                format!("POST /containers/{s}/exec"),
                "POST /exec/{exec}/start".into(),
                "GET /exec/{exec}/json".into(),
            ],
        ));
    }
    if plan.mutating {
        // A migration runs beside the service: its containers run as they did before it.
        for c in subject
            .containers
            .iter()
            .filter(|c| c.state == crate::engine::model::State::Running)
        {
            let healthy = c.health == crate::engine::model::Health::Healthy;
            plan.promises.push(super::postcondition::Promise::new(
                format!(
                    "{}: still running{}",
                    c.name,
                    if healthy { ", healthy" } else { "" }
                ),
                super::postcondition::Expect::Container {
                    id: c.id.clone(),
                    end: super::postcondition::ContainerEnd::Running { healthy },
                },
            ));
        }
    }
    plan.kind = PlanKind::Migrate(Box::new(MigratePlan {
        container,
        argv,
        one_off: req.one_off,
        backup: backup_step,
        step,
    }));
    Ok(plan)
}

fn split_command(command: &str) -> Result<Vec<String>, RunbookError> {
    shlex::split(command)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            RunbookError::Invalid(format!(
                "cannot parse the command `{}`: check its quotes",
                mask_command(command)
            ))
        })
}

/// The migration plan as the tool prints it, before anything runs: the configured `migrate_plan`,
/// else the preset's (Django's `migrate --plan`, with Django's own probe of which operations have
/// a reverse). `None`: no plan command is known (the plan says so).
async fn read_plan(
    engine: &Engine,
    req: &MigrateRequest,
    svc: Option<&crate::config::ServiceConfig>,
    preset: Option<Preset>,
    status_command: Option<&str>,
    container: &Container,
) -> Result<Option<ReadPlan>, RunbookError> {
    if req.one_off {
        return Ok(None);
    }
    let configured = svc.and_then(|s| s.migrate_plan.clone());
    // A configured migrate command under a preset berth only guessed may migrate otherwise than
    // the preset's plan says: its plan is read when the preset is named.
    let named_preset = req.preset.is_some() || svc.is_some_and(|s| s.migrate_preset.is_some());
    let own_command = req.target.is_none() && svc.is_some_and(|s| s.migrate.is_some());
    let command = match (&configured, &req.command) {
        (Some(c), _) => c.clone(),
        // A command of one's own: berth cannot know what it would apply.
        (None, Some(_)) => return Ok(None),
        (None, None) if own_command && !named_preset => return Ok(None),
        (None, None) => match preset {
            Some(p) => match p.plan_command(req.target.as_deref())? {
                Some(c) => c,
                None => return Ok(None),
            },
            None => return Ok(None),
        },
    };
    let argv = split_command(&command)?;
    let (code, out, err) = exec_read(engine, &container.id, &argv)
        .await
        .map_err(RunbookError::Invalid)?;
    if code != 0 {
        return Err(RunbookError::Invalid(format!(
            "the migration plan `{}` failed in {} (exit code {code}{}): fix it or set migrate_plan in the config; nothing was migrated",
            mask_command(&command),
            container.name,
            last_line(&err)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )));
    }
    let django = preset == Some(Preset::Django) && out.contains("Planned operations:");
    let alembic = preset == Some(Preset::Alembic)
        && (out.contains("Rev: ") || out.trim().is_empty())
        && !out.contains("Planned operations:");
    if alembic {
        return read_alembic_plan(engine, req, status_command, container, &command, &out)
            .await
            .map(Some);
    }
    if !django {
        return Ok(Some(ReadPlan {
            command: mask_command(&command),
            pending: mplan::parse_generic_plan(&crate::logs::sanitize::plain_lines(&out)),
            format: None,
            revisions: Vec::new(),
        }));
    }
    let mut pending = mplan::parse_django_plan(&out);
    if req.target.is_none() && !pending.is_empty() {
        // Going forwards Django does not say which RunPython / RunSQL has a reverse: Django's
        // own `reversible`, read by its shell, does.
        let probe = vec![
            "python".to_string(),
            "manage.py".into(),
            "shell".into(),
            "-c".into(),
            mplan::DJANGO_PROBE.into(),
        ];
        let ops = match exec_read(engine, &container.id, &probe).await {
            Ok((0, out, _)) => Some(mplan::parse_django_ops(&out)),
            _ => None,
        };
        mplan::apply_django_ops(&mut pending, ops.as_deref());
    }
    Ok(Some(ReadPlan {
        command: mask_command(&command),
        pending,
        format: Some(mplan::StatusFormat::Django),
        revisions: Vec::new(),
    }))
}

/// alembic's plan: `alembic history --verbose` from the database's revision to the heads (or
/// back to the target), the revision the database is at left out, and each revision's script
/// read in the container for a downgrade that is empty or raises.
async fn read_alembic_plan(
    engine: &Engine,
    req: &MigrateRequest,
    status_command: Option<&str>,
    container: &Container,
    command: &str,
    history: &str,
) -> Result<ReadPlan, RunbookError> {
    let revisions = mplan::parse_alembic_history(history);
    let mut ordered: Vec<&mplan::Revision> = match &req.target {
        // Newest first: the order they are undone in, down to the target, which stays.
        Some(t) => revisions.iter().filter(|r| &r.rev != t).collect(),
        None => {
            let current = match status_command {
                Some(cmd) => {
                    read_applied(engine, &container.id, cmd, mplan::StatusFormat::Alembic).await?
                }
                None => Default::default(),
            };
            revisions
                .iter()
                .rev()
                .filter(|r| !current.contains(&r.rev))
                .collect()
        }
    };
    ordered.dedup_by(|a, b| a.rev == b.rev);
    let mut pending = Vec::new();
    for r in ordered {
        let mut irreversible = Vec::new();
        if let Some(path) = &r.path {
            let cat = vec!["cat".to_string(), path.clone()];
            match exec_read(engine, &container.id, &cat).await {
                Ok((0, source, _)) => {
                    irreversible.extend(mplan::alembic_downgrade_irreversible(&source))
                }
                _ => irreversible.push(format!("its script {path} could not be read")),
            }
        }
        pending.push(Pending {
            name: r.rev.clone(),
            operations: (!r.message.is_empty())
                .then(|| r.message.clone())
                .into_iter()
                .collect(),
            irreversible,
        });
    }
    Ok(ReadPlan {
        command: mask_command(command),
        pending,
        format: Some(mplan::StatusFormat::Alembic),
        revisions: revisions.into_iter().map(|r| r.rev).collect(),
    })
}

fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| crate::format::printable(l.trim()))
}

/// The migrations the status command reports applied.
async fn read_applied(
    engine: &Engine,
    container: &str,
    command: &str,
    format: mplan::StatusFormat,
) -> Result<std::collections::BTreeSet<String>, RunbookError> {
    let argv = split_command(command)?;
    match exec_read(engine, container, &argv).await {
        Ok((0, out, _)) => Ok(format.applied(&out)),
        Ok((code, _, err)) => Err(RunbookError::Invalid(format!(
            "the migration status `{}` failed (exit code {code}{}): fix it or set migrate_status in the config",
            mask_command(command),
            last_line(&err)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        ))),
        Err(e) => Err(RunbookError::Invalid(e)),
    }
}

/// The plan's migrations as notes: each with its operations, the irreversible ones flagged.
fn note_plan(plan: &mut Plan, read: &ReadPlan, backwards: bool) {
    let verb = if backwards { "undoes" } else { "applies" };
    if read.pending.is_empty() {
        plan.notes.push(format!(
            "migration plan (`{}`): nothing to apply",
            read.command
        ));
        return;
    }
    let irreversible = read
        .pending
        .iter()
        .filter(|m| !m.irreversible.is_empty())
        .count();
    plan.notes.push(format!(
        "migration plan (`{}`): {verb} {} migration(s){}",
        read.command,
        read.pending.len(),
        if irreversible > 0 {
            format!(", {irreversible} IRREVERSIBLE")
        } else {
            String::new()
        }
    ));
    for m in &read.pending {
        plan.notes.push(format!("  {}", m.describe()));
    }
    plan.parameters["pending"] = read.pending.iter().map(|m| m.name.clone()).collect();
    plan.parameters["irreversible"] = read
        .pending
        .iter()
        .filter(|m| !m.irreversible.is_empty())
        .map(|m| m.name.clone())
        .collect();
}

/// The service whose database the migration changes: `migrate_db` in the config, else the
/// migrating service itself.
async fn database_of(
    engine: &Engine,
    config: &Config,
    subject: &Subject,
    svc: Option<&crate::config::ServiceConfig>,
) -> Result<(Db, Settings), RunbookError> {
    let name = svc
        .and_then(|s| s.migrate_db.clone())
        .or_else(|| subject.service.clone())
        .unwrap_or_else(|| subject.label.clone());
    let (_, db, settings) = plan_parts(engine, config, &name, subject.project.as_deref()).await?;
    Ok((db, settings))
}

/// Migrating back across a migration that cannot be undone is refused: the way back is the
/// backup taken before it, named.
async fn refuse_across_irreversible(
    engine: &Engine,
    config: &Config,
    subject: &Subject,
    svc: Option<&crate::config::ServiceConfig>,
    server: Option<&Server>,
    read: &ReadPlan,
) -> Result<(), RunbookError> {
    // The oldest one undone: restoring the backup before it undoes every later one too.
    let Some(m) = read
        .pending
        .iter()
        .rev()
        .find(|m| !m.irreversible.is_empty())
    else {
        return Ok(());
    };
    let found = match (server, database_of(engine, config, subject, svc).await) {
        (Some(server), Ok((db, settings))) => backup::list_dir(server, &settings.dir)
            .await
            .ok()
            .and_then(|metas| {
                metas
                    .into_iter()
                    .rev()
                    .find(|b| b.before_migrations.contains(&m.name))
            })
            .map(|b| (b, db)),
        _ => None,
    };
    Err(RunbookError::Invalid(match found {
        Some((b, db)) => format!(
            "{} cannot be migrated back ({}): restore backup {}, taken before migration {}: berth restore {} -p {} --from {}",
            m.name,
            m.irreversible.join("; "),
            b.id,
            m.name,
            db.service,
            db.project,
            b.id
        ),
        None => format!(
            "{} cannot be migrated back ({}), and no backup taken before it is recorded: restore an older backup of the database (`berth backup --list`)",
            m.name,
            m.irreversible.join("; ")
        ),
    }))
}

/// A rollback of a release that applied an irreversible migration, to an image older than that
/// migration: the plan says so first, and names the backup taken before it as the way back to
/// the data (the old release meets a schema it does not know; no migration can undo it).
pub(crate) async fn note_rollback_across(
    engine: &Engine,
    config: &Config,
    name: &str,
    project: Option<&str>,
    plan: &mut Plan,
    server: Option<&Server>,
) {
    let (Some(from), Some(to)) = (
        plan.parameters["from_image_id"]
            .as_str()
            .map(str::to_string),
        plan.parameters["image_id"].as_str().map(str::to_string),
    ) else {
        return;
    };
    let Some(server) = server.filter(|_| from != to) else {
        return;
    };
    let Ok(subject) = resolve(engine, name, project).await else {
        return;
    };
    let svc = subject
        .service
        .as_deref()
        .and_then(|s| config.service(subject.project.as_deref(), s));
    let Ok((db, settings)) = database_of(engine, config, &subject, svc).await else {
        return;
    };
    let Ok(metas) = backup::list_dir(server, &settings.dir).await else {
        return;
    };
    let created = engine
        .docker
        .inspect_image(&to)
        .await
        .ok()
        .and_then(|i| i.created)
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok());
    // The oldest such migration: its backup holds the data before every later one too.
    let Some(m) = metas.iter().find(|m| {
        m.migrated_by.as_deref() == Some(from.as_str())
            && !m.irreversible.is_empty()
            && created.is_none_or(|c| c < m.started)
    }) else {
        return;
    };
    let migration = &m.irreversible[0];
    plan.notes.insert(
        0,
        format!(
            "{} is older than migration {migration} (IRREVERSIBLE), which the running release applied: the old release meets a schema it does not know, and no migration undoes it; for the data before it, restore backup {}, taken before migration {migration}: berth restore {} -p {} --from {}",
            plan.parameters["to"].as_str().unwrap_or(&to),
            m.id,
            db.service,
            db.project,
            m.id
        ),
    );
    plan.parameters["restore_instead"] = m.id.clone().into();
}

/// The backup before the migration: on production unless `--no-backup --reason`, elsewhere
/// with `--backup`; none when the plan says nothing is pending.
#[allow(clippy::too_many_arguments)]
async fn plan_safety_backup(
    engine: &Engine,
    config: &Config,
    req: &MigrateRequest,
    subject: &Subject,
    svc: Option<&crate::config::ServiceConfig>,
    server: Option<Arc<Server>>,
    forward: Option<&ReadPlan>,
    migrating: &Container,
    plan: &mut Plan,
) -> Result<Option<SafetyBackup>, RunbookError> {
    let production = engine.target.is_production();
    if req.no_backup {
        let reason = req.reason.clone().unwrap_or_default();
        plan.notes.push(format!(
            "no backup before it (--no-backup: {})",
            reason.trim()
        ));
        plan.parameters["backup"] = "skipped".into();
        plan.parameters["reason"] = reason.trim().into();
        return Ok(None);
    }
    if !production && !req.backup {
        plan.parameters["backup"] = "none".into();
        return Ok(None);
    }
    if forward.is_some_and(|r| r.pending.is_empty()) {
        plan.notes
            .push("nothing to apply: no backup is taken".into());
        plan.parameters["backup"] = "none".into();
        return Ok(None);
    }
    let why = if production {
        "on production a backup is taken before migrating"
    } else {
        "--backup"
    };
    let fix = if production {
        "; or pass --no-backup --reason TEXT"
    } else {
        ""
    };
    let (db, settings) = database_of(engine, config, subject, svc)
        .await
        .map_err(|e| RunbookError::Invalid(format!("{why}, and {e}{fix}")))?;
    let server = server.ok_or_else(|| {
        RunbookError::Invalid(format!(
            "{why}, and this engine gives no shell on the server to write it with: reach the server over SSH{fix}"
        ))
    })?;
    let names: Vec<String> = forward
        .filter(|r| r.names_known())
        .map(|r| r.pending.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    plan.steps
        .push(dump_step(&server, &db, &settings, " before migrating"));
    plan.parameters["backup"] = "taken".into();
    let request = backup::Request {
        name: db.label.clone(),
        reason: Some(if names.is_empty() {
            format!("before migrate of {}", subject.label)
        } else {
            format!("before migrations {}", names.join(", "))
        }),
        before_migrations: names,
        irreversible: forward
            .filter(|r| r.names_known())
            .map(|r| {
                r.pending
                    .iter()
                    .filter(|m| !m.irreversible.is_empty())
                    .map(|m| m.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
        migrated_by: Some(migrating.image_id.clone()),
        ..Default::default()
    };
    Ok(Some(SafetyBackup {
        server: OnServer(server),
        db,
        settings,
        request,
    }))
}

/// What an attached exec (or a container's followed log) writes: its stdout and stderr frames.
type ExecOutput = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
            + Send,
    >,
>;

/// `argv` started in `container` with stdout and stderr attached: the exec's id, and its output
/// (none when the engine did not attach).
async fn exec_attached(
    engine: &Engine,
    container: &str,
    argv: &[String],
) -> Result<(String, Option<ExecOutput>), String> {
    let d = &engine.docker;
    let exec = d
        .create_exec(
            container,
            CreateExecOptions::<String> {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| eng(engine, e))?;
    let started = d
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: None,
            }),
        )
        .await
        .map_err(|e| eng(engine, e))?;
    let output = match started {
        StartExecResults::Attached { output, .. } => Some(output),
        StartExecResults::Detached => None,
    };
    Ok((exec.id, output))
}

/// The exit code of an exec whose output has ended (none: the engine did not say).
async fn exec_exit_code(engine: &Engine, exec: &str) -> Result<Option<i64>, String> {
    Ok(engine
        .docker
        .inspect_exec(exec)
        .await
        .map_err(|e| eng(engine, e))?
        .exit_code)
}

/// A short read-only command run in a running container (plan, probe, status): its exit code,
/// stdout and stderr, each cut at [`READ_MAX`], within [`READ_BUDGET`].
pub(crate) async fn exec_read(
    engine: &Engine,
    container: &str,
    argv: &[String],
) -> Result<(i64, String, String), String> {
    let work = async {
        let (exec, output) = exec_attached(engine, container, argv).await?;
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut output) = output {
            while let Some(chunk) = output.next().await {
                let (buf, bytes) = match chunk.map_err(|e| eng(engine, e))? {
                    bollard::container::LogOutput::StdErr { message } => (&mut err, message),
                    other => (&mut out, other.into_bytes()),
                };
                let room = READ_MAX.saturating_sub(buf.len());
                buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
        let code = exec_exit_code(engine, &exec).await?.unwrap_or(-1);
        Ok((
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        ))
    };
    tokio::time::timeout(READ_BUDGET, work)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "`{}` did not finish within {} s",
                mask_command(&argv.join(" ")),
                READ_BUDGET.as_secs()
            ))
        })
}

fn choose_command(
    req: &MigrateRequest,
    svc: Option<&crate::config::ServiceConfig>,
    c: &Container,
) -> Result<(String, String), RunbookError> {
    if let Some(cmd) = &req.command {
        return Ok((cmd.clone(), "--command".into()));
    }
    if req.target.is_none() {
        let configured = if req.status {
            svc.and_then(|s| s.migrate_status.clone())
        } else {
            svc.and_then(|s| s.migrate.clone())
        };
        if let Some(cmd) = configured {
            return Ok((cmd, "from the config".into()));
        }
    }
    let preset = match req.preset.as_deref().or(svc.and_then(|s| s.migrate_preset.as_deref())) {
        Some(p) => (Preset::parse(p)?, "preset"),
        None => (
            Preset::guess(c).ok_or_else(|| {
                RunbookError::Invalid(format!(
                    "no migration command for {}: set `migrate` under [services] in the config, or pass --preset alembic|django|rails|prisma or --command CMD",
                    c.name
                ))
            })?,
            "guessed preset",
        ),
    };
    Ok((
        preset.0.command(req.status, req.target.as_deref())?,
        format!("{} {}", preset.1, preset.0.name()),
    ))
}

/// Splits output chunks into lines for the step, bounding each line.
struct Lines {
    partial: String,
}

impl Lines {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            out.push(cut(line.trim_end_matches(['\n', '\r'])));
        }
        if self.partial.len() > MAX_LINE {
            out.push(cut(&std::mem::take(&mut self.partial)));
        }
        out
    }
    fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        (!rest.is_empty()).then(|| cut(&rest))
    }
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_LINE {
        return s.to_string();
    }
    let mut end = MAX_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(crate) async fn run(
    p: &MigratePlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    run.images_before.insert(p.container.image_id.clone());
    run.images_after.insert(p.container.image_id.clone());
    let mut taken = None;
    if let Some(b) = &p.backup {
        run.images_before.insert(b.db.container.image_id.clone());
        run.images_after.insert(b.db.container.image_id.clone());
        let t = run.start(0).await;
        let res = take_step(engine, &b.server.0, &b.db, &b.settings, &b.request, run, 0)
            .await
            .map_err(|e| {
                format!("the backup before the migration failed: {e}; nothing was migrated")
            });
        let message = res.as_ref().map_err(Clone::clone).map(|m| {
            format!(
                "backup {} ({}, sha256 {})",
                m.id,
                crate::format::bytes(m.size),
                &m.sha256[..12.min(m.sha256.len())]
            )
        });
        if let Ok(m) = &res {
            run.metrics.insert("backup_id".into(), m.id.clone().into());
        }
        if !run.finish(0, t, message).await {
            return res.map(|_| String::new());
        }
        if run.cancelled() {
            return Err("cancelled: nothing was migrated".into());
        }
        taken = res.ok();
    }
    let res = if p.one_off {
        run_one_off(p, engine, run).await
    } else {
        run_exec(p, engine, run).await
    };
    // The audit line and the result name the way back.
    let Some(m) = taken else { return res };
    let back = format!(
        " (backup {} of {} taken before it: berth restore {} -p {} --from {})",
        m.id,
        m.project_service(),
        m.service,
        m.project,
        m.id
    );
    res.map(|r| format!("{r}{back}"))
        .map_err(|e| format!("{e}{back}"))
}

/// The command's output, line by line, as `step`'s output until it ends; a cancelled run stops
/// reading and says `cancelled`.
async fn stream_lines(
    mut output: ExecOutput,
    engine: &Engine,
    run: &Runner,
    step: usize,
    cancelled: &str,
) -> Result<(), String> {
    let mut lines = Lines {
        partial: String::new(),
    };
    loop {
        let next = tokio::select! {
            n = output.next() => n,
            _ = run.cancel.cancelled() => return Err(cancelled.to_string()),
        };
        match next {
            Some(Ok(chunk)) => {
                for l in lines.push(&chunk.into_bytes()) {
                    run.out(step, l).await;
                }
            }
            Some(Err(e)) => return Err(eng(engine, e)),
            None => break,
        }
    }
    if let Some(l) = lines.finish() {
        run.out(step, l).await;
    }
    Ok(())
}

async fn run_exec(p: &MigratePlan, engine: &Engine, run: &mut Runner) -> Result<String, String> {
    let t = run.start(p.step).await;
    // The command's own exit code: `berth migrate` exits with it.
    let mut exit_code: Option<i64> = None;
    let res = async {
        let (exec, output) = exec_attached(engine, &p.container.id, &p.argv).await?;
        if let Some(output) = output {
            let cancelled = "cancelled: the command may still be running in the container";
            stream_lines(output, engine, run, p.step, cancelled).await?;
        }
        exit_code = exec_exit_code(engine, &exec).await?;
        match exit_code {
            Some(0) => Ok("exit code 0".to_string()),
            Some(code) => Err(format!("exit code {code}")),
            None => Err("the command did not report an exit code".into()),
        }
    }
    .await;
    if let Some(code) = exit_code {
        run.metrics.insert("exit_code".into(), code.into());
    }
    let ok = run.finish(p.step, t, res.clone()).await;
    if ok {
        Ok(format!(
            "migration finished in {}: {}",
            p.container.name,
            res.unwrap_or_default()
        ))
    } else {
        Err(format!(
            "migration failed: {}",
            res.err().unwrap_or_default()
        ))
    }
}

async fn run_one_off(p: &MigratePlan, engine: &Engine, run: &mut Runner) -> Result<String, String> {
    let d = &engine.docker;
    let inspect = d
        .inspect_container(
            &p.container.id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(|e| eng(engine, e))?;
    let mut body = crate::engine::clone::create_body(&inspect, &p.container.image_id);
    body.cmd = Some(p.argv.clone());
    body.healthcheck = None;
    body.exposed_ports = None;
    let mut labels = body.labels.take().unwrap_or_default();
    // Not a replica: compose and berth must not count it as one.
    labels.retain(|k, _| !k.starts_with("com.docker.compose."));
    labels.insert(LABEL_ONEOFF.into(), "migrate".into());
    body.labels = Some(labels);
    if let Some(h) = body.host_config.as_mut() {
        h.port_bindings = None;
        h.publish_all_ports = Some(false);
        h.restart_policy = None;
        h.auto_remove = Some(false);
    }
    let extra_networks = crate::engine::clone::take_extra_networks(&mut body);
    let name = format!(
        "{}-berth-oneoff-{}",
        p.container.name,
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    );
    let t = run.start(p.step).await;
    let created = d
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| eng(engine, e));
    let id = match created {
        Ok(c) => c.id,
        Err(e) => {
            run.finish(p.step, t, Err(e.clone())).await;
            return Err(e);
        }
    };
    // The command's own exit code: `berth migrate` exits with it.
    let mut exit_code: Option<i64> = None;
    let res = async {
        for (net, ep) in extra_networks {
            d.connect_network(
                &net,
                bollard::models::NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(ep),
                },
            )
            .await
            .map_err(|e| eng(engine, e))?;
        }
        d.start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(|e| eng(engine, e))?;
        run.out(
            0,
            format!("one-off container {name} ({}) started", short(&id)),
        )
        .await;
        let logs = d.logs(
            &id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        stream_lines(Box::pin(logs), engine, run, p.step, "cancelled").await?;
        let mut wait = d.wait_container(&id, None::<WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(w)) => w.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(eng(engine, e)),
            None => return Err("the engine did not report an exit code".into()),
        };
        exit_code = Some(code);
        if code == 0 {
            Ok("exit code 0".to_string())
        } else {
            Err(format!("exit code {code}"))
        }
    }
    .await;
    if let Some(code) = exit_code {
        run.metrics.insert("exit_code".into(), code.into());
    }
    let ok = run.finish(p.step, t, res.clone()).await;
    let t = run.start(p.step + 1).await;
    let rm = d
        .remove_container(
            &id,
            Some(RemoveContainerOptions {
                force: true,
                v: false,
                link: false,
            }),
        )
        .await
        .map(|_| format!("{name} removed"))
        .map_err(|e| eng(engine, e));
    run.finish(p.step + 1, t, rm).await;
    if ok {
        Ok(format!(
            "one-off migration finished: {}",
            res.unwrap_or_default()
        ))
    } else {
        Err(format!(
            "migration failed: {}",
            res.err().unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        assert_eq!(
            Preset::Alembic.command(false, None).unwrap(),
            "alembic upgrade head"
        );
        assert_eq!(
            Preset::Alembic.command(true, None).unwrap(),
            "alembic current"
        );
        assert_eq!(
            Preset::Alembic.command(false, Some("ae1027a6acf")).unwrap(),
            "alembic downgrade ae1027a6acf"
        );
        assert_eq!(
            Preset::Django.command(false, Some("shop 0003")).unwrap(),
            "python manage.py migrate shop 0003"
        );
        assert_eq!(
            Preset::Django.command(true, None).unwrap(),
            "python manage.py showmigrations"
        );
        assert_eq!(
            Preset::Rails.command(false, Some("20241101")).unwrap(),
            "bin/rails db:migrate VERSION=20241101"
        );
        assert_eq!(
            Preset::Rails.command(true, None).unwrap(),
            "bin/rails db:migrate:status"
        );
        assert_eq!(
            Preset::Prisma.command(false, None).unwrap(),
            "npx prisma migrate deploy"
        );
        assert!(Preset::Prisma.command(false, Some("x")).is_err());
        assert_eq!(
            Preset::Alembic.command(false, Some("a; rm -rf /")).unwrap(),
            "alembic downgrade 'a; rm -rf /'"
        );
        assert!(
            Preset::parse("flyway")
                .unwrap_err()
                .to_string()
                .contains("alembic, django")
        );
    }

    #[test]
    fn guesses() {
        let mut c = crate::runbook::tests::container("web", None, None);
        assert_eq!(Preset::guess(&c), None);
        c.env = vec!["DJANGO_SETTINGS_MODULE=app.settings".into()];
        assert_eq!(Preset::guess(&c), Some(Preset::Django));
        c.env.clear();
        c.image = "registry/shop-rails:v3".into();
        assert_eq!(Preset::guess(&c), Some(Preset::Rails));
    }

    #[test]
    fn command_precedence() {
        let c = crate::runbook::tests::container("web", None, None);
        let svc = crate::config::ServiceConfig {
            migrate: Some("make migrate".into()),
            ..Default::default()
        };
        let mut req = MigrateRequest {
            preset: Some("alembic".into()),
            ..Default::default()
        };
        assert_eq!(
            choose_command(&req, Some(&svc), &c).unwrap().0,
            "make migrate"
        );
        req.command = Some("echo hi".into());
        assert_eq!(choose_command(&req, Some(&svc), &c).unwrap().0, "echo hi");
        let req = MigrateRequest {
            preset: Some("alembic".into()),
            target: Some("base".into()),
            ..Default::default()
        };
        assert_eq!(
            choose_command(&req, Some(&svc), &c).unwrap().0,
            "alembic downgrade base"
        );
        let e = choose_command(&MigrateRequest::default(), None, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--preset"), "{e}");
    }

    #[test]
    fn lines_split_and_bound() {
        let mut l = Lines {
            partial: String::new(),
        };
        assert_eq!(l.push(b"a\nb"), vec!["a"]);
        assert_eq!(l.push(b"c\r\n"), vec!["bc"]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert_eq!(l.push(&long).len(), 1);
        assert_eq!(l.finish(), None);
    }
}
