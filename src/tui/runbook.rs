//! The runner's runbook commands: plans made and run off the loop (one server, or a group one
//! server at a time), the audit log read, webhooks tested, the images a service can go to.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::runner::{Runner, TuiPrompter};
use crate::action::{Action, Level, RunbookMsg, SharedGroupPlan, SharedPlan};
use crate::context::Context;
use crate::engine;
use crate::runbook;
use crate::ssh::SshOptions;

impl Runner {
    /// `Command::PlanRunbook`: the plan is made off the loop and comes back as `RunbookMsg::Planned`.
    pub(super) fn plan_runbook(&mut self, request: runbook::Request) {
        let Some(engine) = self.engine_or_say("not connected") else {
            return;
        };
        let tx = self.tx.clone();
        let config = self.ctx.config.clone();
        let hooks = crate::remote::plan_hooks(&engine);
        tokio::spawn(async move {
            let msg = match runbook::plan_with(&engine, &config, &request, hooks).await {
                Ok(p) => RunbookMsg::Planned(Ok(SharedPlan(std::sync::Arc::new(p)))),
                Err(runbook::RunbookError::NoJournal(why)) => {
                    RunbookMsg::JournalUnwritable { request, why }
                }
                Err(e) => RunbookMsg::Planned(Err(e.to_string())),
            };
            let _ = tx.send(Action::Runbook(msg)).await;
        });
    }

    /// `Command::RunPlan`: a confirmed plan runs to its end.
    pub(super) fn run_plan(&mut self, plan: SharedPlan) {
        let Some(engine) = self.engine_or_say("not connected: nothing was run") else {
            return;
        };
        let tx = self.tx.clone();
        let notifier = self.notifier.clone();
        // Not tied to the server session: a rollback finishes (or restores) even if the user
        // switches servers meanwhile.
        let cancel = self.runs_cancel.child_token();
        self.runs
            .spawn(run_one((*plan.0).clone(), engine, tx, notifier, cancel));
    }

    /// `Command::PlanGroup`: the members connected and planned; the answer is
    /// `RunbookMsg::GroupPlanned`.
    pub(super) fn plan_group(
        &mut self,
        group: String,
        members: Vec<String>,
        request: runbook::Request,
    ) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let ssh = SshOptions {
            batch: false,
            prompter: Some(std::sync::Arc::new(TuiPrompter {
                tx: self.tx.clone(),
            })),
            ..self.ctx.ssh_options()
        };
        tokio::spawn(async move {
            let planned = resolve_and_plan_group(&ctx, &group, &members, &request, &ssh)
                .await
                .map(|p| SharedGroupPlan(std::sync::Arc::new(p)));
            let _ = tx
                .send(Action::Runbook(RunbookMsg::GroupPlanned(planned)))
                .await;
        });
    }

    /// `Command::RunGroup`: one server at a time, the run view told which one runs.
    pub(super) fn run_group(&mut self, plan: SharedGroupPlan) {
        let tx = self.tx.clone();
        let notifier = self.notifier.clone();
        let members = plan.0.members.clone();
        let cancel = self.runs_cancel.clone();
        self.runs.spawn(async move {
            let outcome = crate::fleet::group::run(members, |index, member| {
                let tx = tx.clone();
                let notifier = notifier.clone();
                let cancel = cancel.child_token();
                async move {
                    let started = RunbookMsg::GroupMember { index };
                    let _ = tx.send(Action::Runbook(started)).await;
                    run_one(member.plan, member.engine, tx, notifier, cancel).await
                }
            })
            .await;
            let _ = tx
                .send(Action::Runbook(RunbookMsg::GroupDone(outcome)))
                .await;
        });
    }

    /// `Command::NotifyTest`: one message to every webhook, the answers in one footer line.
    pub(super) fn notify_test(&mut self) {
        let tx = self.tx.clone();
        let entries = self.ctx.config.notify.clone();
        tokio::spawn(async move {
            let results = crate::notify::test_all(&entries, crate::notify::Retry::default()).await;
            let failed = results.iter().any(|r| r.outcome.is_err());
            let said: Vec<String> = results
                .iter()
                .map(|r| match &r.outcome {
                    Ok(_) => format!("ok {} {}", r.kind, r.url),
                    Err(e) => format!("failed {} {}: {e}", r.kind, r.url),
                })
                .collect();
            let level = if failed { Level::Error } else { Level::Info };
            let text = format!("notify test: {}", said.join("; "));
            let _ = tx.send(Action::Notify(level, text)).await;
        });
    }

    /// `Command::LoadAudit`.
    pub(super) fn load_audit(&mut self) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let entries = tokio::task::spawn_blocking(|| {
                // One more than shown: the view says when older entries exist.
                runbook::AuditLog::from_env().read_last(crate::app::panels::AUDIT_SHOWN + 1)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            let _ = tx.send(Action::Runbook(RunbookMsg::Audit(entries))).await;
        });
    }

    /// `Command::LoadCandidates`: the images for the picker of a rollback or a deploy.
    pub(super) fn load_candidates(&mut self, name: String, project: Option<String>, forward: bool) {
        let Some(engine) = self.engine_or_say("not connected") else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = runbook::candidates_with_registry(&engine, &name, project.as_deref())
                .await
                .map_err(|e| e.to_string());
            let msg = RunbookMsg::Candidates {
                name,
                project,
                forward,
                result,
            };
            let _ = tx.send(Action::Runbook(msg)).await;
        });
    }
}

/// Runs one plan to its end, its events sent to the loop; audited, and posted to the webhooks.
async fn run_one(
    plan: runbook::Plan,
    engine: engine::Engine,
    tx: mpsc::Sender<Action>,
    notifier: Option<std::sync::Arc<crate::notify::Notifier>>,
    cancel: CancellationToken,
) -> runbook::RunResult {
    let mut options = crate::remote::SshAppend::run_options(&engine);
    options.notify = notifier.map(|n| n as std::sync::Arc<dyn runbook::RunNotify>);
    let (ev_tx, mut ev_rx) = mpsc::channel(runbook::EVENT_CHANNEL);
    let run = tokio::spawn(runbook::execute_with(plan, engine, ev_tx, cancel, options));
    // The loop gone (berth quitting), the run still goes to its end: events are dropped. A loop
    // that does not read (a shell open, a terminal nobody reads) holds only this forwarder: the
    // run's own sends never wait (see `runbook::outbox`).
    while let Some(ev) = ev_rx.recv().await {
        if tx
            .send(Action::Runbook(RunbookMsg::Event(ev)))
            .await
            .is_err()
        {
            break;
        }
    }
    match run.await {
        Ok(result) => result,
        Err(e) => runbook::RunResult {
            ok: false,
            message: format!("the run stopped: {e}"),
            duration: Duration::ZERO,
            images_before: vec![],
            images_after: vec![],
            metrics: Default::default(),
        },
    }
}

/// A group's run planned as `berth -s GROUP …` plans it: the members resolved (off the loop),
/// then each connected and planned in turn.
async fn resolve_and_plan_group(
    ctx: &Context,
    group: &str,
    members: &[String],
    request: &runbook::Request,
    ssh: &SshOptions,
) -> Result<crate::fleet::group::GroupPlan, String> {
    let timeout = ctx.config.fleet.connect_timeout()?;
    let resolved = {
        let (config, read_only) = (ctx.config.clone(), ctx.global.read_only);
        let (group, members) = (group.to_string(), members.to_vec());
        let mutating = request.mutating();
        tokio::task::spawn_blocking(move || {
            let env = crate::target::Environment::from_process();
            crate::fleet::group::member_targets(
                &config, &env, read_only, &group, &members, mutating,
            )
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let (targets, same_host) = resolved;
    crate::fleet::group::plan(
        group,
        targets,
        same_host,
        request,
        &ctx.config,
        ssh,
        timeout,
    )
    .await
}
