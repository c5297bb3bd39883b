//! The runbook: plans of engine calls (restart, migrate, rollback, prune) that are shown before they
//! run, executed step by step with live output over a bounded channel, and audited. No terminal here:
//! the TUI and the CLI both build a [`Plan`] with a `plan_*` function and drive it with [`execute`].

pub mod actions;
pub mod audit;
pub mod backup;
mod client_probe;
pub mod guard;
pub mod health;
pub mod lock;
pub mod migrate;
pub mod migration_plan;
pub mod notice;
mod outbox;
pub mod postcondition;
pub mod prune;
pub mod request;
pub mod restore;
pub mod rollback;
pub mod swarm;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::kamal;
use crate::engine::model::Container;
use crate::engine::{Engine, EngineError};

pub use actions::{ActionKind, plan_action};
pub use audit::{AuditEntry, AuditLog, RemoteAppend};
pub use backup::{BackupRequest, plan_backup};
pub use guard::{Confirmation, Guard, GuardError};
pub use migrate::{MigrateRequest, plan_migrate, plan_migrate_on};
pub use notice::{RunNotice, RunNotify};
pub use prune::{PruneRequest, plan_prune};
pub use request::{Hooks, Request, plan, plan_with};
pub use restore::{RestoreRequest, plan_restore};
pub use rollback::{
    Candidate, RecoverChoice, RollbackRequest, candidates, candidates_for,
    candidates_with_registry, plan_rollback, plan_rollback_with,
};
pub use swarm::{SwarmAction, SwarmRequest, plan_swarm};

pub use crate::engine::model::NEW_MARK;
pub const LABEL_ROLLBACK_FROM: &str = "berth.rollback.from";
pub const LABEL_ROLLBACK_ID: &str = "berth.rollback.id";
pub const LABEL_ONEOFF: &str = "berth.oneoff";

/// Capacity of the event channel the caller should create: enough to batch a burst of output lines,
/// small enough that a stalled reader pushes back on the exec stream instead of growing memory.
pub const EVENT_CHANNEL: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no container or service named '{0}'{1}")]
    NotFound(String, String),
    #[error(
        "'{0}' is ambiguous: it names a service in several projects ({1}); add --project PROJECT"
    )]
    Ambiguous(String, String),
    #[error("{0}")]
    Invalid(String),
    /// The run journal cannot be written (not on production, where that is `Invalid`): the CLI
    /// needs `--force`, the console asks.
    #[error("{0}")]
    NoJournal(String),
}

/// One step of a plan: what it does in plain words, and the engine calls it makes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub description: String,
    pub calls: Vec<String>,
}

impl Step {
    pub fn new(description: impl Into<String>, calls: Vec<String>) -> Step {
        Step {
            description: description.into(),
            calls,
        }
    }
}

/// What the user confirms before anything changes.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub title: String,
    /// Server name, with its environment when the config names one.
    pub target: String,
    pub environment: Option<String>,
    /// Short action name for the audit log: restart, rollback, prune, …
    pub action: String,
    /// What the action is about (service or container), as the audit log records it.
    pub subject: String,
    /// What production asks to type, the same rule for every action: the service as the list
    /// shows it (`web`, or `shop/web` when another project has a `web`), else the container name.
    pub confirm_as: String,
    /// `project/service` (or the container name): also accepted, as it is never ambiguous.
    #[serde(skip)]
    pub confirm_full: String,
    /// Changes something on the server: needs confirmation, refused when read-only, audited.
    pub mutating: bool,
    /// Facts the user should know before confirming (kept configuration, port gaps, candidates…).
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
    /// What will be true on the engine after the run, checked against it when the run ends
    /// ([`postcondition::check`]); a promise that does not hold fails the run.
    pub promises: Vec<postcondition::Promise>,
    /// Recorded in the audit log.
    pub parameters: serde_json::Value,
    /// The same action with one choice flipped, offered where the plan is confirmed (the console's
    /// Tab): a rollback with or without the `.env` pin.
    #[serde(skip)]
    pub variant: Option<Variant>,
    /// The lock on the service the run takes before its first change (`None`: a plan that locks
    /// nothing: prune, swarm, a dry run).
    #[serde(skip)]
    pub lock: Option<lock::LockScope>,
    #[serde(skip)]
    pub(crate) kind: PlanKind,
}

/// Another plan the user may switch to before confirming: what it changes, and its request.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub label: String,
    pub request: Request,
}

#[derive(Debug, Clone)]
pub(crate) enum PlanKind {
    Action(actions::ActionPlan),
    Migrate(Box<migrate::MigratePlan>),
    Rollback(rollback::RollbackPlan),
    Recover(rollback::RecoverPlan),
    Prune(prune::PrunePlan),
    Swarm(swarm::SwarmPlan),
    SwarmStack(swarm::StackPlan),
    Backup(Box<backup::BackupPlan>),
    Restore(Box<restore::RestorePlan>),
    /// A plan that only informs (dry run, nothing to do).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Failed,
    /// Not needed (a restore step after a success) or not reached.
    Skipped,
    /// Done, then reverted by the automatic restore.
    Undone,
}

impl StepStatus {
    pub fn symbol(self) -> &'static str {
        match self {
            StepStatus::Ok => "✓",
            StepStatus::Failed => "✗",
            StepStatus::Skipped => "-",
            StepStatus::Undone => "↺",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub status: StepStatus,
    pub message: String,
    #[serde(rename = "duration_ms", serialize_with = "ser_ms")]
    pub duration: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunResult {
    pub ok: bool,
    pub message: String,
    #[serde(rename = "duration_ms", serialize_with = "ser_ms")]
    pub duration: Duration,
    /// Image ids the touched containers ran before and after.
    pub images_before: Vec<String>,
    pub images_after: Vec<String>,
    /// Measured figures: e.g. `gap_ms` (time without a serving container), `health_wait_ms`.
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    StepStarted { step: usize },
    Output { step: usize, line: String },
    StepFinished { step: usize, outcome: Outcome },
    Done { result: RunResult },
}

/// Debug builds only: with `BERTH_TEST_HOLD_STEP=N`, the run waits a while once step N has
/// started and before it does anything. The fault tests kill berth there: without it, a kill
/// "as step 7 starts" on a loaded machine can land after a quick last step already ended the run.
async fn hold_for_test(i: usize) {
    if cfg!(debug_assertions)
        && std::env::var("BERTH_TEST_HOLD_STEP")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            == Some(i + 1)
    {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// The longest output line a run hands on, in bytes.
pub const MAX_OUTPUT_LINE: usize = 8192;

/// Drives one run: step events out, bookkeeping of what each step ended as.
pub(crate) struct Runner {
    outbox: outbox::Outbox,
    pub cancel: CancellationToken,
    pub statuses: Vec<Option<StepStatus>>,
    pub images_before: BTreeSet<String>,
    pub images_after: BTreeSet<String>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// The first step that failed and its message, for the notice at the end.
    pub failure: Option<(usize, String)>,
    /// When the run's work was over and only reading its end was left (a rollback's last step):
    /// the end-state check gets what is left of its budget from there.
    pub work_done: Option<Instant>,
}

impl Runner {
    /// Never waits for the reader: a screen that stops reading must not stall a half-done change
    /// (see [`outbox`]); a reader that went away is not a reason to stop either.
    async fn send(&self, ev: RunEvent) {
        self.outbox.post(ev);
    }

    pub async fn start(&mut self, i: usize) -> Instant {
        self.send(RunEvent::StepStarted { step: i }).await;
        hold_for_test(i).await;
        Instant::now()
    }

    /// One output line of step `i`, cut at [`MAX_OUTPUT_LINE`] bytes: what keeps run output (a
    /// log line a rollback shows, a command's output) bounded in bytes wherever it is kept.
    pub async fn out(&self, i: usize, line: impl Into<String>) {
        self.line(i, line);
    }

    /// [`Runner::out`] from code that cannot await (a dump's progress callback).
    pub fn line(&self, i: usize, line: impl Into<String>) {
        let mut line = line.into();
        if line.len() > MAX_OUTPUT_LINE {
            let mut end = MAX_OUTPUT_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        self.outbox.post(RunEvent::Output { step: i, line });
    }

    /// Ends step `i`; returns whether it succeeded.
    pub async fn finish(
        &mut self,
        i: usize,
        started: Instant,
        res: Result<String, String>,
    ) -> bool {
        let (status, message) = match res {
            Ok(m) => (StepStatus::Ok, m),
            Err(m) => (StepStatus::Failed, m),
        };
        self.mark_timed(i, status, message, started.elapsed()).await;
        status == StepStatus::Ok
    }

    pub async fn mark(&mut self, i: usize, status: StepStatus, message: impl Into<String>) {
        self.mark_timed(i, status, message.into(), Duration::ZERO)
            .await;
    }

    async fn mark_timed(
        &mut self,
        i: usize,
        status: StepStatus,
        message: String,
        duration: Duration,
    ) {
        if let Some(s) = self.statuses.get_mut(i) {
            *s = Some(status);
        }
        if status == StepStatus::Failed && self.failure.is_none() {
            self.failure = Some((i, message.clone()));
        }
        let outcome = Outcome {
            ok: status != StepStatus::Failed,
            status,
            message,
            duration,
        };
        self.send(RunEvent::StepFinished { step: i, outcome }).await;
    }

    /// Runs a step: start event, the work, finish event. Returns whether it succeeded.
    pub async fn step<F>(&mut self, i: usize, work: F) -> bool
    where
        F: std::future::Future<Output = Result<String, String>>,
    {
        let t = self.start(i).await;
        let res = work.await;
        self.finish(i, t, res).await
    }

    /// Marks every step not yet run as skipped (after a failure or a cancel).
    pub async fn skip_rest(&mut self, why: &str) {
        for i in 0..self.statuses.len() {
            if self.statuses[i].is_none() {
                self.mark(i, StepStatus::Skipped, why).await;
            }
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Options for [`execute_with`]: where audit lines go.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// `None`: the default audit log in the data directory ([`AuditLog::from_env`]).
    pub audit: Option<AuditLog>,
    /// Appends the audit line on the server too (the target's `remote_audit` path).
    pub remote: Option<Arc<dyn RemoteAppend>>,
    /// Told when a changing run starts and when it ends (the `[[notify]]` webhooks).
    pub notify: Option<Arc<dyn RunNotify>>,
    /// Set to the instant the run's result is known: the front end bounds what it still waits
    /// for (the notices) by [`EXIT_BUDGET`] from there.
    pub ended: Option<Arc<std::sync::OnceLock<Instant>>>,
}

/// From a run's end to berth's exit, whatever the state of the link: the audit copy on the
/// server, the lock's release and the notices all fit in it.
pub const EXIT_BUDGET: Duration = Duration::from_secs(10);

/// The end-state check always gets this long, however long the closing reads took.
const MIN_CHECK: Duration = Duration::from_secs(3);

/// Why the engine's SSH link is down now (reconnecting without success, or given up); `None`
/// for a link that is up, frozen (it may still answer), or a local engine.
fn link_down(engine: &Engine) -> Option<String> {
    let status = engine.ssh.as_ref()?.status();
    let why = match &*status.borrow() {
        crate::ssh::LinkStatus::Reconnecting { last_error, .. } => last_error.clone(),
        crate::ssh::LinkStatus::Failed { error } => error.clone(),
        _ => return None,
    };
    Some(why)
}

/// How long the server's copy of an audit line may take: a frozen link must not hold the run's
/// start or its result (the local line is written first and always).
const REMOTE_AUDIT_WAIT: Duration = Duration::from_secs(3);

/// Runs a plan, sending events over `events` (bounded; create it with [`EVENT_CHANNEL`]). The last
/// event is [`RunEvent::Done`]. Mutating plans append one line to the audit log.
pub async fn execute(
    plan: Plan,
    engine: Engine,
    events: mpsc::Sender<RunEvent>,
    cancel: CancellationToken,
) -> RunResult {
    execute_with(plan, engine, events, cancel, RunOptions::default()).await
}

pub async fn execute_with(
    plan: Plan,
    engine: Engine,
    events: mpsc::Sender<RunEvent>,
    cancel: CancellationToken,
    options: RunOptions,
) -> RunResult {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut run = Runner {
        outbox: outbox::Outbox::new(
            events,
            plan.mutating.then(|| {
                format!(
                    "{}-{}",
                    started_at.format("%Y%m%dT%H%M%S%.3fZ"),
                    plan.action
                )
            }),
        ),
        cancel,
        statuses: vec![None; plan.steps.len()],
        images_before: BTreeSet::new(),
        images_after: BTreeSet::new(),
        metrics: serde_json::Map::new(),
        failure: None,
        work_done: None,
    };
    let mut refusal = (plan.mutating && engine.target.read_only)
        .then(|| GuardError::ReadOnly(engine.target.name.clone()).to_string());
    // The lock before the first change: a run that cannot take it changes nothing.
    let mut taken = None;
    if refusal.is_none()
        && plan.mutating
        && let Some(scope) = plan.lock.as_ref().filter(|s| !s.held_by_caller)
    {
        match lock::acquire(&engine, scope).await {
            Ok(t) => {
                if let Some(held) = &t.took_over {
                    let now = lock::server_now(&engine).await;
                    run.out(
                        0,
                        format!(
                            "took over the lock of the cut-off run ({})",
                            held.describe(now)
                        ),
                    )
                    .await;
                }
                match lock::check_basis(&engine, scope).await {
                    Ok(()) => taken = Some(t),
                    Err(e) => {
                        let _ = lock::release(&engine, &t).await;
                        refusal = Some(e);
                    }
                }
            }
            Err(e) => refusal = Some(e),
        }
    }
    let refused = refusal.is_some();
    // A warning about the audit of the whole run is shown under its last step.
    let last_step = plan.steps.len().saturating_sub(1);
    // A stack's run is audited per service, as each one starts and ends.
    let audited = plan.mutating && !matches!(plan.kind, PlanKind::SwarmStack(_));
    if plan.mutating && !refused {
        // A run found interrupted is recorded as such before its recovery starts.
        if let PlanKind::Recover(p) = &plan.kind {
            for id in &p.interrupted {
                let mut entry = phase_entry(&plan, &engine, "interrupted", started_at);
                entry.message = format!(
                    "rollback {id} did not finish (berth found what it left on the server); recovering"
                );
                audit_line(&engine, &options, &run, last_step, entry).await;
            }
        }
        // `started` before the first change: a run that never writes `finished` was cut off.
        if audited {
            let entry = phase_entry(&plan, &engine, "started", started_at);
            audit_line(&engine, &options, &run, last_step, entry).await;
        }
        if let Some(n) = &options.notify {
            n.notify(RunNotice::started(&plan, &engine));
        }
    }
    let res: Result<String, String> = if let Some(why) = refusal {
        Err(why)
    } else {
        match &plan.kind {
            PlanKind::Action(p) => actions::run(p, &engine, &mut run).await,
            PlanKind::Migrate(p) => migrate::run(p, &engine, &mut run).await,
            PlanKind::Rollback(p) => rollback::run(p, &engine, &mut run).await,
            PlanKind::Recover(p) => rollback::run_recover(p, &engine, &mut run).await,
            PlanKind::Prune(p) => prune::run(p, &engine, &mut run).await,
            PlanKind::Swarm(p) => swarm::run(p, &engine, &mut run).await,
            PlanKind::SwarmStack(p) => swarm::run_stack(p, &engine, &options, &mut run).await,
            PlanKind::Backup(p) => backup::run(p, &engine, &mut run).await,
            PlanKind::Restore(p) => restore::run(p, &engine, &mut run).await,
            PlanKind::Nothing => Ok("nothing to do".into()),
        }
    };
    let failed_step = run.statuses.contains(&Some(StepStatus::Failed));
    let (mut ok, mut message) = match res {
        Ok(m) if !failed_step => (true, m),
        Ok(m) => (false, m),
        Err(m) => (false, m),
    };
    // The run's word is the engine's state: what the plan promised is read back, whatever the
    // steps reported, and a promise that does not hold fails the run.
    // A stack's run read each service's promises back as that service ended.
    if plan.mutating && !refused && !matches!(plan.kind, PlanKind::SwarmStack(_)) {
        let checked = Instant::now();
        // The closing reads of a run (what serves, its journal's close) and this check share
        // one budget from the end of its work: a dead link holds the result once, not per read.
        // A run that already failed on a link that is down (it reconnected for its whole window
        // and the server still refused) gets a short try at its end state, not the whole budget:
        // the result is a failure either way, and the operator hears it now. A run whose steps
        // all held keeps the budget, so a blip at its end does not turn it into a failure.
        let down = (!ok).then(|| link_down(&engine)).flatten();
        let budget = match (&down, run.work_done) {
            (Some(_), _) => MIN_CHECK,
            (None, None) => postcondition::CHECK_BUDGET,
            (None, Some(done)) => postcondition::CHECK_BUDGET
                .saturating_sub(done.elapsed())
                .max(MIN_CHECK),
        };
        let differences =
            postcondition::check_within(&plan.promises, &engine, budget, down.as_deref()).await;
        if !plan.promises.is_empty() {
            run.metrics.insert(
                "postcondition_ms".into(),
                (checked.elapsed().as_millis() as u64).into(),
            );
        }
        if !differences.is_empty() {
            for d in &differences {
                run.out(last_step, format!("end state differs: {d}")).await;
            }
            ok = false;
            message = format!(
                "{message}; the engine does not show what the plan promised: {}",
                differences.join("; ")
            );
        }
    }
    if !ok {
        run.skip_rest(if run.cancelled() {
            "cancelled"
        } else {
            "not run after a failure"
        })
        .await;
    }
    let dropped = run.outbox.dropped();
    if dropped > 0 {
        run.metrics.insert("lines_not_shown".into(), dropped.into());
    }
    if let Some(ended) = &options.ended {
        let _ = ended.set(Instant::now());
    }
    let result = RunResult {
        ok,
        message,
        duration: started.elapsed(),
        images_before: run.images_before.iter().cloned().collect(),
        images_after: run.images_after.iter().cloned().collect(),
        metrics: run.metrics.clone(),
    };
    if plan.mutating {
        // A refused stack run changed nothing; it is still audited once, as refused.
        if audited || refused {
            let entry = AuditEntry::new(&plan, &engine.target, &result, started_at);
            audit_line(&engine, &options, &run, last_step, entry).await;
        }
        if let Some(n) = options.notify.as_ref().filter(|_| !refused) {
            n.notify(RunNotice::finished(
                &plan,
                &engine,
                &result,
                &run.statuses,
                run.failure.as_ref(),
                run.cancelled(),
            ));
        }
    }
    if let Some(t) = &taken
        && let Err(e) = lock::release(&engine, t).await
    {
        run.out(last_step, format!("warning: {e}")).await;
    }
    run.outbox
        .close(RunEvent::Done {
            result: result.clone(),
        })
        .await;
    result
}

/// An audit line for a phase of a run (`started`, `interrupted`): same fields, no result yet.
pub(crate) fn phase_entry(
    plan: &Plan,
    engine: &Engine,
    phase: &str,
    time: chrono::DateTime<chrono::Utc>,
) -> AuditEntry {
    let pending = RunResult {
        ok: true,
        message: String::new(),
        duration: Duration::ZERO,
        images_before: Vec::new(),
        images_after: Vec::new(),
        metrics: serde_json::Map::new(),
    };
    let mut entry = AuditEntry::new(plan, &engine.target, &pending, time);
    entry.result = phase.into();
    entry
}

/// Appends one audit line locally and, when configured, on the server; a failure is a warning in
/// the run's output, never a reason to stop a half-done change.
pub(crate) async fn audit_line(
    engine: &Engine,
    options: &RunOptions,
    run: &Runner,
    step: usize,
    mut entry: AuditEntry,
) {
    entry.ssh_user = engine.ssh.as_ref().map(|s| s.resolved().user.clone());
    let log = options.audit.clone().unwrap_or_else(AuditLog::from_env);
    if let Err(e) = log.append(&entry) {
        run.out(step, format!("warning: {e}")).await;
    }
    if let Some(path) = engine.target.remote_audit.as_deref()
        && let Some(e) = match options.remote.as_ref() {
            Some(remote) => {
                match tokio::time::timeout(REMOTE_AUDIT_WAIT, remote.append(path, &entry.to_line()))
                    .await
                {
                    Ok(r) => r.err(),
                    Err(_) => Some(format!(
                        "the server did not answer within {} s (the local audit has the line)",
                        REMOTE_AUDIT_WAIT.as_secs()
                    )),
                }
            }
            None => Some("the server is not reached over SSH, so berth cannot write there".into()),
        }
    {
        run.out(step, format!("warning: remote audit {path}: {e}"))
            .await;
    }
}

/// What a name on the command line resolved to.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `project/service`, or the container name.
    pub label: String,
    pub project: Option<String>,
    pub service: Option<String>,
    /// Replicas (a service) or the one container; never berth's kept or one-off containers. Of a
    /// Kamal role or app, the current release only.
    pub containers: Vec<Container>,

    /// Every container on the engine, for callers that need the rest (rollback history, prune).
    pub all: Vec<Container>,
}

impl Subject {
    /// The older releases of the Kamal roles the subject acts on: the other containers of the
    /// same app, role and destination, which an action leaves as they are.
    pub fn older_releases(&self) -> Vec<&Container> {
        let groups: BTreeSet<_> = self
            .containers
            .iter()
            .filter_map(kamal::release_group)
            .collect();
        if groups.is_empty() {
            return Vec::new();
        }
        let members: Vec<&Container> = self
            .all
            .iter()
            .filter(|c| !is_berth_aux(c))
            .filter(|c| kamal::release_group(c).is_some_and(|g| groups.contains(&g)))
            .collect();
        let current = kamal::current_ids(members.iter().copied());
        let mut older: Vec<&Container> = members
            .into_iter()
            .filter(|c| !current.contains(&c.id.as_str()))
            .filter(|c| !self.containers.iter().any(|s| s.id == c.id))
            .collect();
        older.sort_by(|a, b| b.created.cmp(&a.created).then(a.name.cmp(&b.name)));
        older
    }

    /// The name production asks to type for this subject (see [`Plan::confirm_as`]).
    pub fn confirm_name(&self) -> String {
        let Some(service) = &self.service else {
            return self.label.clone();
        };
        let elsewhere = self
            .all
            .iter()
            .any(|c| c.service.as_deref() == Some(service.as_str()) && c.project != self.project);
        match &self.project {
            Some(p) if elsewhere => format!("{p}/{service}"),
            _ => service.clone(),
        }
    }
}

impl Plan {
    /// Whether `given` names what this plan changes: the name production asks for, the subject
    /// as the audit log has it, or `project/service` (always unambiguous).
    pub fn confirm_accepts(&self, given: &str) -> bool {
        let given = given.trim();
        given == self.confirm_as || given == self.subject || given == self.confirm_full
    }

    /// Sets what production asks to type for `subject`.
    pub(crate) fn confirm_by(&mut self, subject: &Subject) {
        self.confirm_as = subject.confirm_name();
        self.confirm_full = match (&subject.project, &subject.service) {
            (Some(p), Some(s)) => format!("{p}/{s}"),
            _ => subject.label.clone(),
        };
    }
}

/// berth's own bookkeeping containers: kept old ones, new ones not yet renamed, one-offs, run
/// journals.
pub fn is_berth_aux(c: &Container) -> bool {
    c.is_kept()
        || c.is_run_journal()
        || c.is_lock()
        || c.name.contains(NEW_MARK)
        || c.labels.contains_key(LABEL_ONEOFF)
}

fn is_oneoff(c: &Container) -> bool {
    c.labels
        .get(crate::engine::model::LABEL_ONEOFF)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Resolves a container name, else a compose service (optionally `project/service` or `--project`).
pub async fn resolve(
    engine: &Engine,
    name: &str,
    project: Option<&str>,
) -> Result<Subject, RunbookError> {
    let all = engine.containers().await?;
    resolve_in(all, name, project)
}

pub fn resolve_in(
    all: Vec<Container>,
    name: &str,
    project: Option<&str>,
) -> Result<Subject, RunbookError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(RunbookError::Invalid(
            "the name is empty: give a container or service name".into(),
        ));
    }
    if project.is_none()
        && let Some(c) = all
            .iter()
            .find(|c| c.name == name || (name.len() >= 6 && c.id.starts_with(name)))
    {
        return Ok(Subject {
            label: c.name.clone(),
            project: c.project.clone(),
            service: c.service.clone(),
            containers: vec![c.clone()],
            all: all.clone(),
        });
    }
    let (base, destination) = kamal::split_destination(name);
    let (project, service) = match (project, base.split_once('/')) {
        (None, Some((p, s))) => (Some(p), s),
        _ => (project, base),
    };
    let matching: Vec<&Container> = all
        .iter()
        .filter(|c| c.service.as_deref() == Some(service))
        .filter(|c| project.is_none_or(|p| c.project.as_deref() == Some(p)))
        .filter(|c| kamal::in_destination(c, destination))
        .filter(|c| !is_berth_aux(c) && !is_oneoff(c))
        .collect();
    let projects: BTreeSet<&str> = matching
        .iter()
        .filter_map(|c| c.project.as_deref())
        .collect();
    if projects.len() > 1 {
        let list: Vec<String> = projects.iter().map(|p| format!("{p}/{service}")).collect();
        return Err(RunbookError::Ambiguous(
            service.to_string(),
            list.join(", "),
        ));
    }
    if matching.is_empty() {
        // A Kamal app named alone (`shop`, `shop@staging`): every role of it.
        if project.is_none()
            && all
                .iter()
                .any(|c| c.is_kamal() && c.project.as_deref() == Some(service))
        {
            let app: Vec<&Container> = all
                .iter()
                .filter(|c| c.is_kamal() && c.project.as_deref() == Some(service))
                .filter(|c| kamal::in_destination(c, destination))
                .filter(|c| !is_berth_aux(c))
                .collect();
            if !app.is_empty() {
                let containers = current_of(app);
                return Ok(Subject {
                    label: name.to_string(),
                    project: Some(service.to_string()),
                    service: None,
                    containers,
                    all,
                });
            }
        }
        let hint = match (project, destination) {
            (_, Some(d)) => format!(
                " in destination '{d}' (a Kamal `destination` label); list them with `berth ps -a`"
            ),
            (Some(p), None) => format!(" in project '{p}'; list them with `berth ps -a`"),
            (None, None) => "; list containers and services with `berth ps -a`".into(),
        };
        return Err(RunbookError::NotFound(name.to_string(), hint));
    }
    let mut containers = current_of(matching);
    containers.sort_by_key(|c| (c.number.unwrap_or(0), c.name.clone()));
    let project = containers[0].project.clone();
    let label = match &project {
        Some(p) => format!("{p}/{service}"),
        None => service.to_string(),
    };
    Ok(Subject {
        label: match destination {
            Some(d) => format!("{label}@{d}"),
            None => label,
        },
        project,
        service: Some(service.to_string()),
        containers,
        all,
    })
}

/// The containers an action on a name acts on: of a Kamal role (or app), its current release only
/// ([`kamal`]'s rule); every other container.
fn current_of(matching: Vec<&Container>) -> Vec<Container> {
    let current = kamal::current_ids(matching.iter().copied());
    matching
        .into_iter()
        .filter(|c| !c.is_kamal() || current.contains(&c.id.as_str()))
        .cloned()
        .collect()
}

/// Health verification settings for a service: `[services]` overrides `[runbook]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    pub retries: u32,
    pub interval: Duration,
    pub url: Option<String>,
    /// The service's own steady window (`health_window_ms`); else derived from the interval.
    pub steady: Option<Duration>,
    /// The interval was chosen in the config: a container's own health check interval does not
    /// replace it.
    pub interval_configured: bool,
}

impl HealthSettings {
    pub fn describe(&self) -> String {
        format!(
            "{} tries × {:.1} s",
            self.retries,
            self.interval.as_secs_f64()
        )
    }
    pub fn budget(&self) -> Duration {
        self.interval * self.retries
    }
    /// How long a container must be seen serving, without a lost answer, before it is called
    /// healthy: the service's `health_window_ms`, else one poll interval, at least one second —
    /// polled at the health check's own interval, that is two passing checks in a row, seen
    /// running in between (a crash loop or a pending stop shows).
    pub fn window(&self) -> Duration {
        self.steady
            .unwrap_or_else(|| self.interval.max(Duration::from_secs(1)))
    }

    /// Polls at the container's own HEALTHCHECK interval when the config chose none: the engine
    /// learns nothing new between its checks, and a slower poll only delays the switch. The
    /// time allowed stays what the config's tries × interval allow.
    pub fn at_check_interval(mut self, check_interval: Option<Duration>) -> HealthSettings {
        let Some(every) = check_interval.filter(|d| !d.is_zero()) else {
            return self;
        };
        if self.interval_configured {
            return self;
        }
        let every = every.max(Duration::from_millis(50));
        let budget = self.budget();
        self.retries = (budget.as_millis().div_ceil(every.as_millis().max(1)) as u32).max(1);
        self.interval = every;
        self
    }
}

/// The HEALTHCHECK interval a container runs with (its own or its image's), `None` without one.
pub fn check_interval(i: &bollard::models::ContainerInspectResponse) -> Option<Duration> {
    let hc = i.config.as_ref()?.healthcheck.as_ref()?;
    let test = hc.test.as_deref().unwrap_or_default();
    if test.first().map(String::as_str) == Some("NONE") {
        return None;
    }
    // The engine's default when the health check names none: 30 s.
    let ns = hc.interval.filter(|n| *n > 0).unwrap_or(30_000_000_000);
    Some(Duration::from_nanos(ns as u64))
}

pub fn health_settings(
    config: &Config,
    project: Option<&str>,
    service: Option<&str>,
) -> HealthSettings {
    let svc = service.and_then(|s| config.service(project, s));
    let retries = svc
        .and_then(|s| s.health_retries)
        .unwrap_or(config.runbook.health_retries)
        .max(1);
    let own = svc.and_then(|s| {
        s.health_interval_ms
            .map(Duration::from_millis)
            .or(s.health_interval_secs.map(Duration::from_secs))
    });
    let configured = own.or(config.runbook.health_interval_ms.map(Duration::from_millis));
    let interval = configured
        .unwrap_or(Duration::from_secs(config.runbook.health_interval_secs))
        .max(Duration::from_millis(50));
    HealthSettings {
        retries,
        interval,
        url: svc.and_then(|s| s.health_url.clone()),
        steady: svc
            .and_then(|s| s.health_window_ms)
            .map(Duration::from_millis),
        interval_configured: configured.is_some(),
    }
}

/// Earlier releases a rollback or deploy of this service keeps as stopped containers.
pub fn keep_old(config: &Config, project: Option<&str>, service: Option<&str>) -> usize {
    service
        .and_then(|s| config.service(project, s))
        .and_then(|s| s.keep_old)
        .unwrap_or(config.runbook.keep_old)
}

/// The target line of a plan: `prod (production)`.
pub(crate) fn target_label(engine: &Engine) -> String {
    match &engine.target.environment {
        Some(e) => format!("{} ({e})", engine.target.name),
        None => engine.target.name.clone(),
    }
}

pub(crate) fn plan_base(
    engine: &Engine,
    title: String,
    action: &str,
    subject: &str,
    mutating: bool,
) -> Plan {
    Plan {
        title,
        target: target_label(engine),
        environment: engine.target.environment.clone(),
        action: action.into(),
        subject: subject.into(),
        confirm_as: subject.into(),
        confirm_full: subject.into(),
        mutating,
        notes: Vec::new(),
        steps: Vec::new(),
        promises: Vec::new(),
        parameters: serde_json::Value::Null,
        variant: None,
        lock: None,
        kind: PlanKind::Nothing,
    }
}

pub(crate) fn eng(engine: &Engine, e: bollard::errors::Error) -> String {
    EngineError::from_bollard(&engine.target.endpoint.to_string(), e).to_string()
}

pub(crate) fn short(id: &str) -> &str {
    crate::engine::model::short_id(id)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::model::{Health, State};
    use std::collections::BTreeMap;

    pub(crate) fn container(name: &str, project: Option<&str>, service: Option<&str>) -> Container {
        let mut labels = BTreeMap::new();
        if let Some(p) = project {
            labels.insert(
                crate::engine::model::LABEL_PROJECT.to_string(),
                p.to_string(),
            );
        }
        Container {
            id: format!("{name:0<64}"),
            name: name.into(),
            project: project.map(Into::into),
            service: service.map(Into::into),
            number: Some(1),
            state: State::Running,
            health: Health::Healthy,
            exit_code: None,
            oom_killed: false,
            error: None,
            created: None,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            restart_policy: "no".into(),
            image: "app:v2".into(),
            image_id: "sha256:aaa".into(),
            command: vec![],
            entrypoint: vec![],
            ports: vec![],
            labels,
            env: vec![],
            mounts: vec![],
            networks: vec![],
            health_log: vec![],
            has_healthcheck: true,
            stop_timeout: None,
        }
    }

    #[test]
    fn resolves_names() {
        let all = vec![
            container("shop-web-1", Some("shop"), Some("web")),
            container("shop-web-2", Some("shop"), Some("web")),
            container("blog-web-1", Some("blog"), Some("web")),
            container("shop-web-1-berth-old-123", Some("shop"), Some("web")),
            container("lonely", None, None),
        ];
        let s = resolve_in(all.clone(), "lonely", None).unwrap();
        assert_eq!(s.containers.len(), 1);
        let e = resolve_in(all.clone(), "web", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("shop/web") && e.contains("blog/web") && e.contains("--project"),
            "{e}"
        );
        let s = resolve_in(all.clone(), "web", Some("shop")).unwrap();
        assert_eq!(s.label, "shop/web");
        assert_eq!(
            s.containers.len(),
            2,
            "the kept old container is not a replica"
        );
        assert_eq!(
            resolve_in(all.clone(), "blog/web", None)
                .unwrap()
                .containers
                .len(),
            1
        );
        let e = resolve_in(all.clone(), "nope", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no container or service named 'nope'"), "{e}");
        assert!(resolve_in(all, " ", None).is_err());
    }

    fn kamal(name: &str, role: &str, dest: Option<&str>, age_min: i64, up: bool) -> Container {
        let mut c = container(name, Some("shop"), Some(role));
        c.labels.clear();
        c.labels.insert("service".into(), "shop".into());
        c.labels.insert("role".into(), role.into());
        if let Some(d) = dest {
            c.labels.insert("destination".into(), d.into());
        }
        c.number = None;
        c.created = Some(chrono::Utc::now() - chrono::Duration::minutes(age_min));
        if !up {
            c.state = State::Exited;
        }
        c
    }

    /// A Kamal role means its current release: the previous one (stopped) is left alone and
    /// named as such; `@staging` takes that destination alone; the app alone takes every role.
    #[test]
    fn kamal_names_mean_the_current_release() {
        let all = vec![
            kamal("shop-web-3f2a1c7", "web", None, 60, false),
            kamal("shop-web-9b8e4d2", "web", None, 10, true),
            kamal("shop-web-staging-9b8e4d2", "web", Some("staging"), 5, true),
            kamal("shop-web-staging-1111111", "web", Some("staging"), 50, true),
            kamal("shop-job-9b8e4d2", "job", None, 10, true),
        ];
        let names = |s: &Subject| -> Vec<String> {
            let mut n: Vec<String> = s.containers.iter().map(|c| c.name.clone()).collect();
            n.sort();
            n
        };
        let s = resolve_in(all.clone(), "shop/web", None).unwrap();
        assert_eq!(names(&s), ["shop-web-9b8e4d2", "shop-web-staging-9b8e4d2"]);
        let older: Vec<&str> = s.older_releases().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(older, ["shop-web-staging-1111111", "shop-web-3f2a1c7"]);
        let s = resolve_in(all.clone(), "shop/web@staging", None).unwrap();
        assert_eq!(names(&s), ["shop-web-staging-9b8e4d2"]);
        assert_eq!(s.label, "shop/web@staging");
        let s = resolve_in(all.clone(), "web@staging", Some("shop")).unwrap();
        assert_eq!(names(&s), ["shop-web-staging-9b8e4d2"]);
        let s = resolve_in(all.clone(), "shop", None).unwrap();
        assert_eq!(
            names(&s),
            [
                "shop-job-9b8e4d2",
                "shop-web-9b8e4d2",
                "shop-web-staging-9b8e4d2"
            ]
        );
        // An old release by its own name is that container.
        let s = resolve_in(all.clone(), "shop-web-3f2a1c7", None).unwrap();
        assert_eq!(names(&s), ["shop-web-3f2a1c7"]);
        let e = resolve_in(all, "shop/web@prod", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("destination 'prod'"), "{e}");
    }

    #[test]
    fn health_settings_override() {
        let c = crate::config::file::parse(
            "[runbook]\nhealth_retries = 7\nhealth_interval_ms = 300\n[services.\"shop/web\"]\nhealth_retries = 2\nhealth_url = \"http://127.0.0.1:1/health\"\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let h = health_settings(&c, Some("shop"), Some("web"));
        assert_eq!(
            h,
            HealthSettings {
                retries: 2,
                interval: Duration::from_millis(300),
                url: Some("http://127.0.0.1:1/health".into()),
                steady: None,
                interval_configured: true,
            }
        );
        // A configured interval is kept whatever the container's check runs at.
        assert_eq!(h.clone().at_check_interval(Some(Duration::from_secs(1))), h);
        let d = health_settings(&Config::default(), None, None);
        assert_eq!((d.retries, d.interval), (5, Duration::from_secs(5)));
        // Unconfigured: the container's 1 s check is polled, within the same 25 s.
        let fast = d.at_check_interval(Some(Duration::from_secs(1)));
        assert_eq!((fast.retries, fast.interval), (25, Duration::from_secs(1)));
        assert_eq!(fast.window(), Duration::from_secs(1));
        let c = crate::config::file::parse(
            "[services.web]\nhealth_window_ms = 700\nkeep_old = 3\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let w = health_settings(&c, None, Some("web"));
        assert_eq!(w.window(), Duration::from_millis(700));
        assert_eq!(keep_old(&c, None, Some("web")), 3);
        assert_eq!(keep_old(&c, None, Some("api")), 1);
    }
}
