//! A runbook action across a `[groups.NAME]`, shared by `berth -s GROUP restart|rollback SERVICE`
//! and the fleet view: every member resolved, connected and planned before anything changes (one
//! plan and one confirmation for the whole run), then one server at a time, each verified by its
//! own run before the next; the first failure stops the run, which says which servers were done
//! and which were not started. Each server's run is audited on its own. No terminal here.

use std::future::Future;
use std::time::Duration;

use crate::config::Config;
use crate::engine::Engine;
use crate::runbook::guard::Guard;
use crate::runbook::{Plan, Request, RunResult};
use crate::ssh::SshOptions;
use crate::target::{Environment, Target};

/// A member left out as (its name, the earlier member at the same host and port).
pub type SameHost = (String, String);

/// One member ready to run: connected and planned.
#[derive(Clone)]
pub struct Member {
    pub target: Target,
    pub engine: Engine,
    pub plan: Plan,
}

/// The whole run, planned: what is shown and confirmed once.
#[derive(Clone)]
pub struct GroupPlan {
    pub group: String,
    /// The service as the request names it: `shop/web`.
    pub service: String,
    /// In the order they run.
    pub members: Vec<Member>,
    /// Members that do not run the service.
    pub skipped: Vec<String>,
    pub same_host: Vec<SameHost>,
}

impl GroupPlan {
    pub fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.target.name.clone()).collect()
    }

    /// One confirmation for the run: production anywhere in it asks for the group's name.
    pub fn guard(&self) -> Guard {
        Guard {
            server: self.group.clone(),
            read_only: false,
            production: self.members.iter().any(|m| m.target.is_production()),
        }
    }

    /// The members that make the run production (named when it is refused or confirmed).
    pub fn production_members(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.target.is_production())
            .map(|m| m.target.name.clone())
            .collect()
    }

    pub fn mutating(&self) -> bool {
        self.members.iter().any(|m| m.plan.mutating)
    }

    /// `restart shop/web on group app: 2 servers, one at a time`.
    pub fn title(&self) -> String {
        let what = self
            .members
            .first()
            .map(|m| m.plan.title.clone())
            .unwrap_or_else(|| self.service.clone());
        format!(
            "{what} on group {}: {} server{}, one at a time",
            self.group,
            self.members.len(),
            if self.members.len() == 1 { "" } else { "s" }
        )
    }

    /// Why members are left out, one line each (unsanitised).
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .same_host
            .iter()
            .map(|(name, first)| {
                format!(
                    "{name} is the same host as {first}: skipped, so nothing runs twice on one engine"
                )
            })
            .collect();
        notes.extend(
            self.skipped
                .iter()
                .map(|name| format!("{name} does not run {}: skipped", self.service)),
        );
        notes
    }
}

/// How a run across a group ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub done: Vec<String>,
    /// Where it stopped, and why.
    pub failed: Option<(String, String)>,
    pub not_started: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failed.is_none()
    }

    /// The run's last word (unsanitised): `group app: done on app-1, app-2`, or where it stopped,
    /// what was done and what was not started.
    pub fn line(&self, group: &str) -> String {
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        match &self.failed {
            None => format!("group {group}: done on {}", list(&self.done)),
            Some((server, error)) => format!(
                "group {group} stopped at {server}: {error}; done: {}; not started: {}",
                list(&self.done),
                list(&self.not_started)
            ),
        }
    }
}

/// The service a request names across a group, or why this request does not run across one.
pub fn service_of(group: &str, request: &Request) -> Result<String, String> {
    match request {
        Request::Action { name, project, .. } => Ok(service_name(name, project.as_deref())),
        Request::Rollback(r) if r.recover.is_none() => {
            Ok(service_name(&r.name, r.project.as_deref()))
        }
        _ => Err(format!(
            "group {group}: only container actions (restart, start, stop …) and rollback run across a group; name one server with -s SERVER for this command"
        )),
    }
}

fn service_name(name: &str, project: Option<&str>) -> String {
    match project {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
    }
}

/// Why a run that changes something may not run across `members` by the config alone: berth
/// read-only (`read_only`: `--read-only`, or `read_only = true` at the config's top), or a member
/// configured read-only, named. The console asks this before planning, the CLI before resolving;
/// [`member_targets`] still refuses a member that is read-only through another server at the
/// same place.
pub fn refuse_read_only(
    config: &Config,
    read_only: bool,
    group: &str,
    members: &[String],
    mutating: bool,
) -> Result<(), String> {
    if !mutating {
        return Ok(());
    }
    if read_only || config.read_only {
        return Err(format!(
            "group {group}: berth is read-only (--read-only or read_only = true in the config): the run was refused, nothing was changed"
        ));
    }
    match members
        .iter()
        .find(|m| config.servers.get(*m).is_some_and(|s| s.read_only))
    {
        Some(name) => Err(format!(
            "group {group}: server {name} is read-only (read_only = true in [servers.{name}]): the run was refused, nothing was changed; run on the other servers one by one with -s SERVER"
        )),
        None => Ok(()),
    }
}

/// The group's servers as targets, each refused up front when read-only (`read_only`: the flag or
/// the config's); a member at the same host and port as an earlier one is left out, paired with
/// that one's name. Reads `~/.ssh/config`: call it off an event loop.
pub fn member_targets(
    config: &Config,
    env: &Environment,
    read_only: bool,
    group: &str,
    members: &[String],
    mutating: bool,
) -> Result<(Vec<Target>, Vec<SameHost>), String> {
    refuse_read_only(config, read_only, group, members, mutating)?;
    let mut resolved = crate::target::resolve_servers(config, env);
    let mut targets: Vec<Target> = Vec::new();
    let mut places: Vec<(Option<(String, u16)>, String)> = Vec::new();
    let mut same_host = Vec::new();
    for name in members {
        let Some(i) = resolved.iter().position(|(n, _)| n == name) else {
            return Err(format!("group {group}: server {name} is not configured"));
        };
        let mut target = resolved
            .swap_remove(i)
            .1
            .map_err(|e| format!("group {group}: server {name}: {e}"))?;
        target.read_only |= read_only || config.read_only;
        Guard::for_target(&target)
            .allows(mutating)
            .map_err(|e| format!("group {group}: {e}; nothing was changed"))?;
        let place = crate::target::place(&target.endpoint, env);
        if let Some((_, first)) = places.iter().find(|(p, _)| p.is_some() && *p == place) {
            same_host.push((name.clone(), first.clone()));
            continue;
        }
        places.push((place, name.clone()));
        targets.push(target);
    }
    Ok((targets, same_host))
}

/// Connects to every member and plans the request there, in order. A member that cannot be
/// reached or planned stops it while the fleet is still as it was; a member without the service
/// is skipped; none with it is an error naming where berth looked.
pub async fn plan(
    group: &str,
    targets: Vec<Target>,
    same_host: Vec<SameHost>,
    request: &Request,
    config: &Config,
    ssh: &SshOptions,
    connect_timeout: Duration,
) -> Result<GroupPlan, String> {
    let service = service_of(group, request)?;
    let looked: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let mut members = Vec::new();
    let mut skipped = Vec::new();
    for target in targets {
        let name = target.name.clone();
        let engine =
            match tokio::time::timeout(connect_timeout, crate::engine::connect(&target, ssh)).await
            {
                Ok(Ok(engine)) => engine,
                Ok(Err(e)) => {
                    return Err(format!(
                        "group {group}: cannot reach {name} ({e}): nothing was changed"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "group {group}: {name} did not answer within {} s: nothing was changed",
                        connect_timeout.as_secs_f64()
                    ));
                }
            };
        let hooks = crate::remote::plan_hooks(&engine);
        match crate::runbook::plan_with(&engine, config, request, hooks).await {
            Ok(plan) => members.push(Member {
                target,
                engine,
                plan,
            }),
            Err(_) if !runs_service(&engine, request).await => skipped.push(name),
            Err(e) => {
                return Err(format!(
                    "group {group}: cannot plan on {name}: {e}; nothing was changed"
                ));
            }
        }
    }
    if members.is_empty() {
        return Err(format!(
            "group {group}: no server runs {service} (looked on {}); check the name with `berth -s SERVER ps`",
            looked.join(", ")
        ));
    }
    Ok(GroupPlan {
        group: group.to_string(),
        service,
        members,
        skipped,
        same_host,
    })
}

/// Whether the server runs anything the request names: a server without it is skipped, while a
/// server that has it and cannot be planned stops the run.
async fn runs_service(engine: &Engine, request: &Request) -> bool {
    let (name, project) = match request {
        Request::Action { name, project, .. } => (name, project),
        Request::Rollback(r) => (&r.name, &r.project),
        _ => return true,
    };
    let Ok(containers) = engine.containers().await else {
        return true;
    };
    let all: Vec<&crate::engine::model::Container> = containers.iter().collect();
    let full = service_name(name, project.as_deref());
    crate::logs::containers_named(&all, &full).is_ok_and(|found| !found.is_empty())
}

/// Runs the members one at a time through `drive` (the front end's way of running one plan and
/// showing it), stopping at the first that fails.
pub async fn run<F, Fut>(members: Vec<Member>, mut drive: F) -> Outcome
where
    F: FnMut(usize, Member) -> Fut,
    Fut: Future<Output = RunResult>,
{
    let mut outcome = Outcome::default();
    // Every member's service is locked before the first change anywhere: no other berth starts
    // on a later member while an earlier one runs. Each member's own run then neither takes nor
    // releases it.
    let mut members = members;
    let mut taken = Vec::new();
    for m in &mut members {
        let Some(scope) = m.plan.lock.as_mut() else {
            continue;
        };
        let locked = match crate::runbook::lock::acquire(&m.engine, scope).await {
            Ok(t) => match crate::runbook::lock::check_basis(&m.engine, scope).await {
                Ok(()) => Ok(t),
                Err(e) => {
                    let _ = crate::runbook::lock::release(&m.engine, &t).await;
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };
        match locked {
            Ok(t) => {
                scope.held_by_caller = true;
                taken.push((m.engine.clone(), t));
            }
            Err(e) => {
                release_all(&taken).await;
                outcome.failed = Some((
                    m.target.name.clone(),
                    format!("{e}; nothing was changed on any server"),
                ));
                outcome.not_started = members
                    .iter()
                    .map(|m| m.target.name.clone())
                    .filter(|n| Some(n) != outcome.failed.as_ref().map(|f| &f.0))
                    .collect();
                return outcome;
            }
        }
    }
    let mut queue = members.into_iter().enumerate();
    while let Some((i, member)) = queue.next() {
        let name = member.target.name.clone();
        let result = drive(i, member).await;
        if !result.ok {
            outcome.failed = Some((name, result.message));
            outcome.not_started = queue.map(|(_, m)| m.target.name).collect();
            release_all(&taken).await;
            return outcome;
        }
        outcome.done.push(name);
    }
    release_all(&taken).await;
    outcome
}

async fn release_all(taken: &[(Engine, crate::runbook::lock::Taken)]) {
    for (engine, t) in taken {
        let _ = crate::runbook::lock::release(engine, t).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_word_names_what_was_done_and_not_started() {
        let stopped = Outcome {
            done: vec!["app-1".into()],
            failed: Some(("app-2".into(), "health check failed".into())),
            not_started: vec!["app-3".into()],
        };
        assert!(!stopped.ok());
        assert_eq!(
            stopped.line("app"),
            "group app stopped at app-2: health check failed; done: app-1; not started: app-3"
        );
        let first = Outcome {
            failed: Some(("app-1".into(), "gone".into())),
            ..Default::default()
        };
        assert_eq!(
            first.line("app"),
            "group app stopped at app-1: gone; done: none; not started: none"
        );
        let all = Outcome {
            done: vec!["app-1".into(), "app-2".into()],
            ..Default::default()
        };
        assert_eq!(all.line("app"), "group app: done on app-1, app-2");
    }

    #[test]
    fn only_container_actions_and_rollback_run_across_a_group() {
        let restart = Request::Action {
            kind: crate::runbook::ActionKind::Restart,
            name: "web".into(),
            project: Some("shop".into()),
        };
        assert_eq!(service_of("app", &restart).as_deref(), Ok("shop/web"));
        let prune = Request::Prune(Default::default());
        assert!(
            service_of("app", &prune)
                .unwrap_err()
                .contains("name one server with -s SERVER")
        );
    }
}
