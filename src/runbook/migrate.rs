//! Database migrations: the service's migration command run inside its running container through the
//! exec API (or in a one-off container from its image), output streamed live, exit code checked.

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, StartContainerOptions,
    WaitContainerOptions,
};
use futures::StreamExt;

use super::{
    LABEL_ONEOFF, Plan, PlanKind, RunbookError, Runner, Step, eng, plan_base, resolve, short,
};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::{Container, mask_command};

/// Longest output line kept; longer ones are cut so one runaway line cannot grow memory.
const MAX_LINE: usize = 8192;

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
}

#[derive(Debug, Clone)]
pub(crate) struct MigratePlan {
    container: Container,
    argv: Vec<String>,
    one_off: bool,
}

/// Plans a migration (or a status query). Reads the engine only.
pub async fn plan_migrate(
    engine: &Engine,
    config: &Config,
    req: &MigrateRequest,
) -> Result<Plan, RunbookError> {
    let subject = resolve(engine, &req.name, req.project.as_deref()).await?;
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
    // What is shown, audited and posted: the command with its secrets masked; `argv` runs it.
    let command = mask_command(&command);
    plan.parameters = serde_json::json!({ "command": command, "target": req.target, "one_off": req.one_off, "container": container.name });
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
    }));
    Ok(plan)
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
    if p.one_off {
        return run_one_off(p, engine, run).await;
    }
    let d = &engine.docker;
    let t = run.start(0).await;
    // The command's own exit code: `berth migrate` exits with it.
    let mut exit_code: Option<i64> = None;
    let res = async {
        let exec = d
            .create_exec(
                &p.container.id,
                CreateExecOptions::<String> { attach_stdout: Some(true), attach_stderr: Some(true), cmd: Some(p.argv.clone()), ..Default::default() },
            )
            .await
            .map_err(|e| eng(engine, e))?;
        match d.start_exec(&exec.id, Some(StartExecOptions { detach: false, tty: false, output_capacity: None })).await.map_err(|e| eng(engine, e))? {
            StartExecResults::Attached { mut output, .. } => {
                let mut lines = Lines { partial: String::new() };
                loop {
                    let next = tokio::select! {
                        n = output.next() => n,
                        _ = run.cancel.cancelled() => return Err("cancelled: the command may still be running in the container".to_string()),
                    };
                    match next {
                        Some(Ok(chunk)) => {
                            for l in lines.push(&chunk.into_bytes()) {
                                run.out(0, l).await;
                            }
                        }
                        Some(Err(e)) => return Err(eng(engine, e)),
                        None => break,
                    }
                }
                if let Some(l) = lines.finish() {
                    run.out(0, l).await;
                }
            }
            StartExecResults::Detached => {}
        }
        let inspect = d.inspect_exec(&exec.id).await.map_err(|e| eng(engine, e))?;
        exit_code = inspect.exit_code;
        match inspect.exit_code {
            Some(0) => Ok("exit code 0".to_string()),
            Some(code) => Err(format!("exit code {code}")),
            None => Err("the command did not report an exit code".into()),
        }
    }
    .await;
    if let Some(code) = exit_code {
        run.metrics.insert("exit_code".into(), code.into());
    }
    let ok = run.finish(0, t, res.clone()).await;
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
    let t = run.start(0).await;
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
            run.finish(0, t, Err(e.clone())).await;
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
        let mut logs = d.logs(
            &id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let mut lines = Lines {
            partial: String::new(),
        };
        loop {
            let next = tokio::select! {
                n = logs.next() => n,
                _ = run.cancel.cancelled() => return Err("cancelled".to_string()),
            };
            match next {
                Some(Ok(chunk)) => {
                    for l in lines.push(&chunk.into_bytes()) {
                        run.out(0, l).await;
                    }
                }
                Some(Err(e)) => return Err(eng(engine, e)),
                None => break,
            }
        }
        if let Some(l) = lines.finish() {
            run.out(0, l).await;
        }
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
    let ok = run.finish(0, t, res.clone()).await;
    let t = run.start(1).await;
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
    run.finish(1, t, rm).await;
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
