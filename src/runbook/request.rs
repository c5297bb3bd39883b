//! What the user asks the runbook for, before there is a plan. The CLI and the console build the
//! same `Request`; `plan` turns it into a `Plan`, reading the engine only.

use std::sync::Arc;

use super::{
    ActionKind, BackupRequest, MigrateRequest, Plan, PruneRequest, RestoreRequest, RollbackRequest,
    RunbookError, SwarmAction, SwarmRequest, plan_action, plan_backup, plan_migrate_on, plan_prune,
    plan_restore, plan_rollback_with, plan_swarm,
};
use crate::config::Config;
use crate::engine::Engine;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Restart, start, stop, kill or remove a container or every replica of a service.
    Action {
        kind: ActionKind,
        name: String,
        project: Option<String>,
    },
    Migrate(MigrateRequest),
    Rollback(RollbackRequest),
    Prune(PruneRequest),
    /// Scale, restart, roll back or update a swarm service; drain or activate a node.
    Swarm(SwarmRequest),
    /// Dump a service's database into a file on the server.
    Backup(BackupRequest),
    /// Overwrite a service's database with one of its backups.
    Restore(RestoreRequest),
}

/// What planning reads besides the engine, through the front end's link to the server: the
/// compose projects' files and a shell on the server (a backup's dump and restore). `None`: this
/// machine's (a local engine).
#[derive(Clone, Default)]
pub struct Hooks {
    pub files: Option<Arc<dyn crate::compose::ProjectFiles>>,
    pub shell: Option<Arc<dyn crate::backup::shell::ServerShell>>,
}

impl Request {
    /// Whether the request changes the server (a migration status query does not).
    pub fn mutating(&self) -> bool {
        !matches!(self, Request::Migrate(m) if m.status)
    }

    /// The request in a few words, for "planning …".
    pub fn label(&self) -> String {
        match self {
            Request::Action { kind, name, .. } => format!("{} {name}", kind.as_str()),
            Request::Migrate(m) if m.status => format!("migration status of {}", m.name),
            Request::Migrate(m) => format!("migrate {}", m.name),
            Request::Rollback(r) => format!("rollback {}", r.name),
            Request::Prune(_) => "prune".into(),
            Request::Swarm(r) => r.label(),
            Request::Backup(r) => format!("backup {}", r.name),
            Request::Restore(r) => format!("restore {} from {}", r.name, r.from),
        }
    }
}

/// Builds the plan for a request; reads the engine only (and a local engine's compose files).
pub async fn plan(
    engine: &Engine,
    config: &Config,
    request: &Request,
) -> Result<Plan, RunbookError> {
    let hooks = Hooks {
        files: crate::compose::local_files(engine),
        shell: None,
    };
    plan_with(engine, config, request, hooks).await
}

/// [`plan`] reading compose projects' files and the server through `hooks` (over SSH for a
/// remote engine).
pub async fn plan_with(
    engine: &Engine,
    config: &Config,
    request: &Request,
    hooks: Hooks,
) -> Result<Plan, RunbookError> {
    let Hooks { files, shell } = hooks;
    let server = || {
        crate::backup::shell::server_of(engine, |_| shell.clone())
            .map(Arc::new)
            .map_err(RunbookError::Invalid)
    };
    match request {
        Request::Action {
            kind,
            name,
            project,
        } => {
            let planned = plan_action(engine, config, *kind, name, project.as_deref()).await;
            match (kind, project) {
                (ActionKind::Restart, None) => {
                    or_swarm(engine, config, planned, name, SwarmAction::Restart).await
                }
                _ => planned,
            }
        }
        // A status query writes nothing; a migration may take a backup first.
        Request::Migrate(req) => {
            let server = (!req.status).then(|| server().ok()).flatten();
            plan_migrate_on(engine, config, req, server).await
        }
        Request::Rollback(req) => {
            let mut planned = plan_rollback_with(engine, config, req, files).await;
            if let Ok(plan) = &mut planned
                && plan.action == "rollback"
            {
                let server = server().ok();
                super::migrate::note_rollback_across(
                    engine,
                    config,
                    &req.name,
                    req.project.as_deref(),
                    plan,
                    server.as_deref(),
                )
                .await;
            }
            if req.project.is_some() || req.recover.is_some() {
                return planned;
            }
            let action = match &req.to {
                Some(to) => SwarmAction::Image(to.clone()),
                None => SwarmAction::Rollback,
            };
            or_swarm(engine, config, planned, &req.name, action).await
        }
        Request::Prune(req) => plan_prune(engine, config, req).await,
        Request::Swarm(req) => plan_swarm(engine, config, req).await,
        Request::Backup(req) => plan_backup(engine, config, req, server()?).await,
        Request::Restore(req) => plan_restore(engine, config, req, server()?).await,
    }
}

/// A name that is no container or compose service may be a swarm service or stack: on a manager
/// that has one by that name, the same command acts on it the swarm's way.
async fn or_swarm(
    engine: &Engine,
    config: &Config,
    planned: Result<Plan, RunbookError>,
    name: &str,
    action: SwarmAction,
) -> Result<Plan, RunbookError> {
    let Err(RunbookError::NotFound(..)) = &planned else {
        return planned;
    };
    let is_service = match crate::swarm::detect(engine).await {
        Ok(role) if role.is_manager() => crate::swarm::snapshot(engine)
            .await
            .is_ok_and(|s| s.find(name).is_some()),
        _ => false,
    };
    if !is_service {
        return planned;
    }
    let req = SwarmRequest {
        action,
        name: name.to_string(),
    };
    plan_swarm(engine, config, &req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_status_query_changes_nothing() {
        let status = Request::Migrate(MigrateRequest {
            name: "db".into(),
            status: true,
            ..Default::default()
        });
        assert!(!status.mutating());
        assert_eq!(status.label(), "migration status of db");
        assert!(Request::Prune(PruneRequest::default()).mutating());
        let restart = Request::Action {
            kind: ActionKind::Restart,
            name: "web".into(),
            project: None,
        };
        assert!(restart.mutating());
        assert_eq!(restart.label(), "restart web");
    }
}
