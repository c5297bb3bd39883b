//! The lock a run holds on its service while it changes it, kept on the server as Kamal keeps
//! one: a container `berth-lock-<project>-<service>` that is created and never started, whose
//! labels say who holds it (local user and host, SSH user, process), for what and which run. The
//! engine creates a name once: a second create answers 409, so taking the lock is atomic for every
//! berth on every machine that reaches this engine. Its age comes from the container's `Created`,
//! stamped by the server's clock and read against the server's clock, so a laptop clock hours off
//! does not matter.

use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunbookError, Subject};
use crate::engine::Engine;
use crate::engine::model::{Container, LABEL_LOCK, LOCK_PREFIX};

/// How long a release may take before the run ends without it: a dead link must not hold the
/// result (the lock is then left for `berth lock release`, which the warning names).
pub const RELEASE_WAIT: Duration = Duration::from_secs(3);

/// Who holds a lock and for what, as its label records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub run_id: String,
    /// The run's action: `rollback`, `deploy`, `restart`, …
    pub action: String,
    /// What the run is about: `shop/web`.
    pub subject: String,
    /// `user@host` of the machine berth runs on.
    pub user: String,
    /// The account on the server, when reached over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_user: Option<String>,
    pub pid: u32,
}

/// A lock found on the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The lock container's name and id.
    pub name: String,
    pub id: String,
    pub holder: Holder,
    /// When it was taken, by the server's clock.
    pub since: Option<DateTime<Utc>>,
}

impl Held {
    /// `rollback by alice@laptop (ssh deploy), pid 4242, run 2026…, since 2026-12-07 11:23:04 UTC
    /// (3m ago)`: `now` is the server's clock when known.
    pub fn describe(&self, now: Option<DateTime<Utc>>) -> String {
        let h = &self.holder;
        let ssh = h
            .ssh_user
            .as_deref()
            .map(|u| format!(" (ssh {u})"))
            .unwrap_or_default();
        let since = match self.since {
            Some(t) => {
                let age = now
                    .map(|n| {
                        format!(
                            " ({} ago)",
                            crate::format::duration((n - t).num_seconds().max(0))
                        )
                    })
                    .unwrap_or_default();
                format!(", since {}{age}", t.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            None => String::new(),
        };
        format!(
            "{} by {}{ssh}, pid {}, run {}{since}",
            h.action, h.user, h.pid, h.run_id
        )
    }

    /// Whether the run left a journal on the server: a rollback cut off, for `berth recover`.
    pub fn has_journal(&self, all: &[Container]) -> bool {
        all.iter().any(|c| {
            c.is_run_journal()
                && c.name
                    .strip_prefix(crate::engine::model::RUN_JOURNAL_PREFIX)
                    .is_some_and(|id| id == safe(&self.holder.run_id))
        })
    }
}

/// The lock a plan takes before its first change.
#[derive(Debug, Clone, PartialEq)]
pub struct LockScope {
    /// The lock container's name.
    pub name: String,
    /// An image the server has (one the subject runs), to create the lock container from.
    pub image: String,
    pub holder: Holder,
    /// A recovery takes over the lock of the run it recovers: that run was cut off.
    pub takeover: bool,
    /// The caller holds it already (a group's run locks every member first): the run neither
    /// takes nor releases it.
    pub held_by_caller: bool,
    /// Containers the plan was made against (name, id): checked once the lock is taken, so a
    /// plan made while another run held the service is not run on what that run changed.
    pub basis: Vec<(String, String)>,
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The lock's container name for a subject: `berth-lock-<project>-<service>`, or the container's
/// own name for one outside compose.
pub fn lock_name(project: Option<&str>, service: Option<&str>, label: &str) -> String {
    match (project, service) {
        (Some(p), Some(s)) => format!("{LOCK_PREFIX}{}-{}", safe(p), safe(s)),
        (None, Some(s)) => format!("{LOCK_PREFIX}{}", safe(s)),
        _ => format!("{LOCK_PREFIX}{}", safe(label)),
    }
}

/// The lock of `subject` among `all` (every container on the engine), if someone holds it.
pub fn held_in(all: &[Container], name: &str) -> Option<Held> {
    all.iter().find(|c| c.name == name).map(|c| Held {
        name: c.name.clone(),
        id: c.id.clone(),
        holder: c
            .labels
            .get(LABEL_LOCK)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_else(|| unknown_holder(&c.name)),
        since: c.created,
    })
}

/// Every lock on the engine.
pub fn all_held(all: &[Container]) -> Vec<Held> {
    all.iter()
        .filter(|c| c.is_lock())
        .filter_map(|c| held_in(all, &c.name))
        .collect()
}

fn unknown_holder(name: &str) -> Holder {
    Holder {
        run_id: "?".into(),
        action: "?".into(),
        subject: name.trim_start_matches(LOCK_PREFIX).into(),
        user: "an unknown berth".into(),
        ssh_user: None,
        pid: 0,
    }
}

/// The server's clock, for a lock's age (`None` when the engine does not say).
pub async fn server_now(engine: &Engine) -> Option<DateTime<Utc>> {
    let info = tokio::time::timeout(Duration::from_secs(5), engine.docker.info())
        .await
        .ok()?
        .ok()?;
    DateTime::parse_from_rfc3339(info.system_time.as_deref()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The lock a plan on `subject` takes, held for run `run_id`.
pub fn scope_for(engine: &Engine, subject: &Subject, action: &str, run_id: &str) -> LockScope {
    let image = subject
        .containers
        .first()
        .map(|c| c.image_id.clone())
        .unwrap_or_default();
    LockScope {
        name: lock_name(
            subject.project.as_deref(),
            subject.service.as_deref(),
            &subject.label,
        ),
        image,
        holder: Holder {
            run_id: run_id.to_string(),
            action: action.to_string(),
            subject: subject.label.clone(),
            user: super::audit::local_user(),
            ssh_user: engine.ssh.as_ref().map(|s| s.resolved().user.clone()),
            pid: std::process::id(),
        },
        takeover: false,
        held_by_caller: false,
        basis: subject
            .containers
            .iter()
            .map(|c| (c.name.clone(), c.id.clone()))
            .collect(),
    }
}

/// A new run id: the UTC time and a few bits of this process.
pub fn new_run_id() -> String {
    format!(
        "{}-{:x}",
        Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id() ^ Utc::now().timestamp_subsec_nanos()
    )
}

/// What to do about a lock another run holds: refuse, before anything is planned, saying who
/// holds it and how to go on.
pub async fn refuse_if_held(engine: &Engine, subject: &Subject) -> Result<(), RunbookError> {
    let name = lock_name(
        subject.project.as_deref(),
        subject.service.as_deref(),
        &subject.label,
    );
    let Some(held) = held_in(&subject.all, &name) else {
        return Ok(());
    };
    let now = server_now(engine).await;
    Err(RunbookError::Invalid(held_message(
        &subject.label,
        subject.project.as_deref(),
        subject.service.as_deref(),
        &held,
        now,
        held.has_journal(&subject.all),
    )))
}

/// `shop/web is locked by …: wait …, or …`: the one refusal, from the planner and from a run that
/// lost the race for the lock.
pub fn held_message(
    label: &str,
    project: Option<&str>,
    service: Option<&str>,
    held: &Held,
    now: Option<DateTime<Utc>>,
    journal: bool,
) -> String {
    let cli_name = match (project, service) {
        (Some(p), Some(s)) => format!("{s} -p {p}"),
        _ => label.to_string(),
    };
    let next = if journal {
        format!(
            "if that berth is gone (killed, laptop closed), its rollback was cut off: `berth recover {cli_name} --finish` or `--restore` takes the lock over and ends it"
        )
    } else {
        format!(
            "if that berth is gone (killed, laptop closed): `berth lock release {cli_name}` (`berth lock status` shows every lock)"
        )
    };
    format!(
        "{label} is locked: {} holds it. Wait for that run to end; {next}",
        held.describe(now)
    )
}

/// A lock taken by a run: released by [`release`].
#[derive(Debug, Clone)]
pub struct Taken {
    pub name: String,
    pub id: String,
    /// The cut-off run's lock this one replaced, said in the run's output.
    pub took_over: Option<Held>,
}

/// Takes the lock: creates its container, or (a recovery) replaces a cut-off run's. `Err`: the
/// refusal to show, naming the holder.
pub async fn acquire(engine: &Engine, scope: &LockScope) -> Result<Taken, String> {
    let mut took_over = None;
    for attempt in 0..6u32 {
        match create(engine, scope).await {
            Ok(id) => {
                return Ok(Taken {
                    name: scope.name.clone(),
                    id,
                    took_over,
                });
            }
            Err(CreateError::Exists) => {}
            Err(CreateError::Other(e)) => return Err(format!("cannot take the lock: {e}")),
        }
        let found = engine
            .inspect(&scope.name)
            .await
            .map_err(|e| format!("cannot read the lock {}: {e}", scope.name))?;
        let Some(c) = found.filter(|c| c.is_lock()) else {
            // The engine reserves a name before the container shows: another berth is creating
            // it right now (or just removed it). Look again in a moment.
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1))).await;
            continue;
        };
        let held = held_in(std::slice::from_ref(&c), &scope.name)
            .ok_or_else(|| format!("cannot read the lock {}", scope.name))?;
        // This berth holds it already: a group whose members reach one engine by two names.
        if held.holder.pid == scope.holder.pid && held.holder.user == scope.holder.user {
            return Ok(Taken {
                name: scope.name.clone(),
                id: held.id,
                took_over,
            });
        }
        if !scope.takeover || took_over.is_some() {
            let all = engine.containers().await.unwrap_or_default();
            let now = server_now(engine).await;
            let (project, service) = scope
                .holder
                .subject
                .split_once('/')
                .map(|(p, s)| (Some(p), Some(s)))
                .unwrap_or((None, None));
            return Err(held_message(
                &scope.holder.subject,
                project,
                service,
                &held,
                now,
                held.has_journal(&all),
            ));
        }
        remove(engine, &held.id).await?;
        took_over = Some(held);
    }
    Err(format!(
        "cannot take the lock {}: the engine says the name is taken but shows no lock under it; try again",
        scope.name
    ))
}

enum CreateError {
    Exists,
    Other(String),
}

async fn create(engine: &Engine, scope: &LockScope) -> Result<String, CreateError> {
    let label =
        serde_json::to_string(&scope.holder).map_err(|e| CreateError::Other(e.to_string()))?;
    let body = ContainerCreateBody {
        image: Some(scope.image.clone()),
        // Never started: a command of its own, so an image without one still makes the container.
        cmd: Some(vec!["berth-lock".into()]),
        labels: Some([(LABEL_LOCK.to_string(), label)].into()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        network_disabled: Some(true),
        ..Default::default()
    };
    match engine
        .docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(scope.name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
    {
        Ok(r) => Ok(r.id),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Err(CreateError::Exists),
        Err(e) => Err(CreateError::Other(super::eng(engine, e))),
    }
}

async fn remove(engine: &Engine, id: &str) -> Result<(), String> {
    match engine
        .docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(super::eng(engine, e)),
    }
}

/// Releases a lock this run took (by id: a lock taken over since is someone else's), within
/// [`RELEASE_WAIT`]. `Err`: the warning to show.
pub async fn release(engine: &Engine, taken: &Taken) -> Result<(), String> {
    match tokio::time::timeout(RELEASE_WAIT, remove(engine, &taken.id)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the lock {} was not released ({e}): `berth lock release` frees it",
            taken.name
        )),
        Err(_) => Err(format!(
            "the lock {} was not released: the server did not answer within {} s; `berth lock release` frees it",
            taken.name,
            RELEASE_WAIT.as_secs()
        )),
    }
}

/// Checks, once the lock is taken, that the containers the plan was made against are still
/// there under their names: another run may have held the service and changed it meanwhile.
pub async fn check_basis(engine: &Engine, scope: &LockScope) -> Result<(), String> {
    if scope.basis.is_empty() {
        return Ok(());
    }
    // One inspect per container, not the engine's whole list: this runs inside every run.
    for (name, id) in &scope.basis {
        let now = engine.inspect(name).await.map_err(|e| e.to_string())?;
        if now.is_none_or(|c| &c.id != id) {
            return Err(format!(
                "{} changed since this plan was made ({name} is no longer the container {}): another run ended meanwhile; plan again",
                scope.holder.subject,
                super::short(id)
            ));
        }
    }
    Ok(())
}

/// Releases a lock for `berth lock release`: the one found under `name`, by its id.
pub async fn release_held(engine: &Engine, held: &Held) -> Result<(), String> {
    remove(engine, &held.id).await
}

/// The plan an audit line of `berth lock release` is written from: what was freed, whose.
pub fn audit_plan(engine: &Engine, held: &Held, forced: bool) -> super::Plan {
    let mut plan = super::plan_base(
        engine,
        format!("release the lock of {}", held.holder.subject),
        "lock-release",
        &held.holder.subject,
        true,
    );
    plan.parameters = serde_json::json!({
        "lock": held.name,
        "holder": held.holder,
        "since": held.since,
        "forced": forced,
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_named_by_its_service_and_says_who_holds_it() {
        assert_eq!(
            lock_name(Some("shop"), Some("web"), "shop/web"),
            "berth-lock-shop-web"
        );
        assert_eq!(lock_name(None, None, "lonely one"), "berth-lock-lonely-one");
        let held = Held {
            name: "berth-lock-shop-web".into(),
            id: "c0ffee".into(),
            holder: Holder {
                run_id: "20261205-1".into(),
                action: "rollback".into(),
                subject: "shop/web".into(),
                user: "alice@laptop".into(),
                ssh_user: Some("deploy".into()),
                pid: 42,
            },
            since: Some("2026-12-05T10:00:00Z".parse().unwrap()),
        };
        // Two days old by the server's clock, whatever this machine's says.
        let now = "2026-12-07T10:00:00Z".parse().ok();
        let m = held_message("shop/web", Some("shop"), Some("web"), &held, now, false);
        assert!(
            m.contains("rollback by alice@laptop (ssh deploy), pid 42, run 20261205-1")
                && m.contains("since 2026-12-05 10:00:00 UTC (2d ago)")
                && m.contains("`berth lock release web -p shop`"),
            "{m}"
        );
        let m = held_message("shop/web", Some("shop"), Some("web"), &held, now, true);
        assert!(m.contains("`berth recover web -p shop --finish`"), "{m}");
    }
}
