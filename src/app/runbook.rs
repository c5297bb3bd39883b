//! The runbook in the console: a key asks for a plan, the plan is confirmed (typed on production),
//! then executed while the run view shows each step and its output. The engine side lives in
//! `crate::runbook` and knows nothing of this.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, Command, Overlay, View};
use crate::action::Level;
use crate::action::{RunbookMsg, SharedPlan};
use crate::keymap::{Intent, Scope};
use crate::runbook::{
    Candidate, Confirmation, Guard, Plan, Request, RollbackRequest, RunEvent, RunResult, StepStatus,
};

/// Output lines kept per run; the audit log and the CLI keep the whole story.
pub const RUN_OUTPUT_KEPT: usize = 5000;

/// The image picker of a rollback or a deploy: the service's candidate images, newest first.
#[derive(Debug, Clone)]
pub struct ImagePicker {
    pub name: String,
    pub project: Option<String>,
    /// A deploy: Enter plans `berth deploy --to` (the rollback machinery pointed forward).
    pub forward: bool,
    pub candidates: Vec<Candidate>,
    pub selected: usize,
    /// Why the registry's tags are missing or partial, shown under the list.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct StepState {
    pub running: bool,
    pub status: Option<StepStatus>,
    pub message: String,
    pub duration: Duration,
}

/// One run as the run view shows it.
#[derive(Debug, Clone)]
pub struct RunState {
    pub plan: Arc<Plan>,
    pub steps: Vec<StepState>,
    /// (step, line), oldest first, bounded by [`RUN_OUTPUT_KEPT`].
    pub output: VecDeque<(usize, String)>,
    /// Earlier output lines pushed out by the bound, for the view to say so.
    pub dropped: u64,
    pub result: Option<RunResult>,
    pub started: DateTime<Utc>,
    pub scroll: usize,
}

impl RunState {
    pub fn new(plan: Arc<Plan>, started: DateTime<Utc>) -> RunState {
        let steps = vec![StepState::default(); plan.steps.len()];
        RunState {
            plan,
            steps,
            output: VecDeque::new(),
            dropped: 0,
            result: None,
            started,
            scroll: 0,
        }
    }

    pub fn apply(&mut self, event: RunEvent) {
        match event {
            RunEvent::StepStarted { step } => {
                if let Some(s) = self.steps.get_mut(step) {
                    s.running = true;
                }
            }
            RunEvent::Output { step, line } => {
                // A pull's progress line replaces the one before it: a bar, not a scroll.
                let prefix = crate::runbook::rollback::registry::PROGRESS_PREFIX;
                if line.starts_with(prefix)
                    && let Some(last) = self.output.back_mut()
                    && last.0 == step
                    && last.1.starts_with(prefix)
                {
                    last.1 = line;
                    return;
                }
                if self.output.len() == RUN_OUTPUT_KEPT {
                    self.output.pop_front();
                    self.dropped += 1;
                }
                self.output.push_back((step, line));
            }
            RunEvent::StepFinished { step, outcome } => {
                if let Some(s) = self.steps.get_mut(step) {
                    s.running = false;
                    s.status = Some(outcome.status);
                    s.message = outcome.message;
                    s.duration = outcome.duration;
                }
            }
            RunEvent::Done { result } => {
                for s in &mut self.steps {
                    s.running = false;
                }
                self.result = Some(result);
            }
        }
    }

    pub fn finished(&self) -> bool {
        self.result.is_some()
    }
}

impl App {
    /// A runbook key or palette command, planned first. (A read-only server refused it already:
    /// `App::run_command` applies the command table's `mutating`.)
    pub fn request_runbook(&mut self, request: Request) -> Vec<Command> {
        if self.run_in_progress() {
            self.notify(
                Level::Warn,
                "a runbook is still running; wait for it to finish (the run view shows it)",
            );
            self.view = View::Runbook;
            return vec![];
        }
        self.notify(Level::Info, format!("planning {} …", request.label()));
        vec![Command::PlanRunbook(request)]
    }

    pub fn on_runbook(&mut self, msg: RunbookMsg) -> Vec<Command> {
        match msg {
            RunbookMsg::Planned(Err(e)) => {
                // The error belongs where the "planning …" note did (a container, or everywhere).
                let about = self.status.as_ref().and_then(|s| s.about.clone());
                self.notify(Level::Error, e);
                if let Some(s) = &mut self.status {
                    s.about = about;
                }
            }
            RunbookMsg::Planned(Ok(plan)) => return self.confirm_plan(plan),
            RunbookMsg::JournalUnwritable { request, why } => {
                self.ask_without_journal(request, why)
            }
            RunbookMsg::GroupPlanned(Err(e)) => {
                self.notify(Level::Error, crate::format::printable(&e));
            }
            RunbookMsg::GroupPlanned(Ok(plan)) => return self.confirm_group(plan),
            RunbookMsg::GroupMember { index } => self.on_group_member(index),
            RunbookMsg::GroupDone(outcome) => self.on_group_done(outcome),
            RunbookMsg::Event(ev) => {
                if let Some(run) = &mut self.run {
                    let done = matches!(&ev, RunEvent::Done { .. });
                    run.apply(ev);
                    if done && let Some(r) = &run.result {
                        let (level, text) = if r.ok {
                            (
                                Level::Info,
                                format!("{}: done — {}", run.plan.title, r.message),
                            )
                        } else {
                            (
                                Level::Error,
                                format!("{}: FAILED — {}", run.plan.title, r.message),
                            )
                        };
                        self.notify(level, text);
                    }
                    if done {
                        return self.reload_compose_files();
                    }
                }
            }
            RunbookMsg::Audit(Ok(mut entries)) => {
                let older = entries.len() > super::panels::AUDIT_SHOWN;
                entries.drain(..entries.len().saturating_sub(super::panels::AUDIT_SHOWN));
                self.audit = super::AuditPanel {
                    entries,
                    scroll: 0,
                    older,
                };
                self.view = View::Audit;
            }
            RunbookMsg::Audit(Err(e)) => self.notify(Level::Error, e),
            RunbookMsg::Candidates { result: Err(e), .. } => self.notify(Level::Error, e),
            RunbookMsg::Candidates {
                name,
                project,
                forward,
                result: Ok((candidates, note)),
            } => {
                if !candidates.iter().any(|c| !c.current) {
                    let msg = match note {
                        Some(n) => format!("{name}: no other image on this server ({n})"),
                        None => format!(
                            "{name}: no other image of its repository on this server or in its registry"
                        ),
                    };
                    self.notify(Level::Warn, msg);
                    return vec![];
                }
                // A rollback starts on what the CLI would pick: the image the service ran before,
                // never one that is newer and never ran. A deploy starts on the newest image after
                // the current one.
                let pick = if forward {
                    crate::runbook::rollback::preselect_forward(&candidates)
                } else {
                    crate::runbook::rollback::preselect(&candidates)
                };
                let selected = pick
                    .or_else(|| candidates.iter().position(|c| c.current))
                    .unwrap_or(0);
                self.status = None;
                self.overlay = Overlay::Images(ImagePicker {
                    name,
                    project,
                    forward,
                    candidates,
                    selected,
                    note,
                });
            }
        }
        vec![]
    }

    pub fn on_image_picker_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let intent = self.keymap.lookup(Scope::Global, &key);
        let Overlay::Images(p) = &mut self.overlay else {
            return vec![];
        };
        match (key.code, intent) {
            (KeyCode::Enter, _) => {
                let Some(c) = p.candidates.get(p.selected).cloned() else {
                    return vec![];
                };
                if c.current {
                    self.notify(
                        Level::Warn,
                        "the service runs this image already: pick another",
                    );
                    return vec![];
                }
                let (name, project, forward) = (p.name.clone(), p.project.clone(), p.forward);
                self.overlay = Overlay::None;
                // The tag reads well in the plan; the plan names the image id it resolved to, and
                // nothing runs before that plan is confirmed. Untagged images go by id.
                let to = c.tags.first().cloned().unwrap_or(c.id);
                return self.request_runbook(Request::Rollback(RollbackRequest {
                    name,
                    project,
                    to: Some(to),
                    forward,
                    ..Default::default()
                }));
            }
            (_, Some(i)) if super::move_in_list(&mut p.selected, p.candidates.len(), i) => {}
            (_, Some(Intent::Back | Intent::Quit)) => self.overlay = Overlay::None,
            _ => {}
        }
        vec![]
    }

    fn confirm_plan(&mut self, plan: SharedPlan) -> Vec<Command> {
        let Some(target) = self.target.clone() else {
            return vec![];
        };
        let p = plan.0.clone();
        // The plan is on screen now: the "planning …" note has done its job.
        if self
            .status
            .as_ref()
            .is_some_and(|s| s.text.starts_with("planning "))
        {
            self.status = None;
        }
        let confirmation = match Guard::for_target(&target).confirmation(p.mutating, &p.confirm_as)
        {
            Ok(c) => c,
            Err(e) => {
                self.notify(Level::Error, e.to_string());
                return vec![];
            }
        };
        // The summary first (where, what, what to expect), the steps below it: a long plan
        // scrolls and never pushes the confirmation prompt off the screen.
        let mut summary = vec![format!(
            "On {}: {} step{}.",
            p.target,
            p.steps.len(),
            if p.steps.len() == 1 { "" } else { "s" }
        )];
        let on_failure = match p.action.as_str() {
            "rollback" | "deploy" => Some(
                "If a new container fails its health check, the old one is restored and checked again.",
            ),
            a if crate::runbook::ActionKind::parse(a).is_some() => Some(
                "On a failure berth stops at that container and says so; the ones before it stay changed.",
            ),
            "migrate" => Some(
                "On a failure the command's output and exit code are shown; nothing is undone.",
            ),
            _ => None,
        };
        for note in &p.notes {
            summary.push(format!("• {note}"));
        }
        for promise in &p.promises {
            summary.push(format!("• After: {}", promise.text));
        }
        if let Some(f) = on_failure.filter(|_| p.mutating && !p.steps.is_empty()) {
            summary.push(format!("• {f}"));
        }
        if p.steps.is_empty() {
            summary.push("Nothing to do.".into());
        }
        if let Some(v) = &p.variant {
            summary.push(format!("Tab: {} (plans again)", v.label));
        }
        let mut body = Vec::new();
        for (i, step) in p.steps.iter().enumerate() {
            body.push(format!("{}. {}", i + 1, step.description));
            for call in &step.calls {
                body.push(format!("     {call}"));
            }
        }
        let run = vec![Command::RunPlan(plan)];
        match confirmation {
            Confirmation::None => {
                if p.steps.is_empty() {
                    // A dry run or a plan with nothing to do: show it, run nothing.
                    self.ask_plan(p.title.clone(), summary, body, None, vec![]);
                    return vec![];
                }
                self.start_run(p);
                run
            }
            Confirmation::YesNo => {
                self.ask_plan(p.title.clone(), summary, body, None, run);
                vec![]
            }
            Confirmation::TypeName(name) => {
                self.ask_plan(p.title.clone(), summary, body, Some(name), run);
                vec![]
            }
        }
    }

    /// The confirmation of a plan: its summary always in view, its steps scrolling below.
    /// The journal cannot be written (not on production: that refusal is final): the CLI's
    /// `--force`, asked. Yes plans again without a journal; the plan then says so in its notes,
    /// and the run is confirmed as any other.
    fn ask_without_journal(&mut self, request: Request, why: String) {
        let Request::Rollback(mut r) = request else {
            self.notify(Level::Error, crate::format::printable(&why));
            return;
        };
        r.force = true;
        self.ask(
            "The run journal cannot be written",
            vec![
                crate::format::printable(&why),
                String::new(),
                "y plans the run without a journal (its plan says so); Esc cancels.".into(),
            ],
            None,
            vec![Command::PlanRunbook(Request::Rollback(r))],
        );
    }

    pub(super) fn ask_plan(
        &mut self,
        title: String,
        summary: Vec<String>,
        steps: Vec<String>,
        typed: Option<String>,
        then: Vec<Command>,
    ) {
        let variant = match then.first() {
            Some(Command::RunPlan(plan)) => plan.0.variant.clone(),
            _ => None,
        };
        self.ask(title, steps, typed, then);
        if let Overlay::Confirm(c) = &mut self.overlay {
            c.summary = summary;
            c.variant = variant;
        }
    }

    /// Opens the run view for a plan that is about to run.
    pub fn start_run(&mut self, plan: Arc<Plan>) {
        self.group_run = None;
        self.run = Some(RunState::new(plan, self.now));
        self.view = View::Runbook;
    }

    /// The request a runbook key makes for the selected row.
    pub fn runbook_for_selection(
        &mut self,
        make: impl Fn(String, Option<String>) -> Request,
    ) -> Vec<Command> {
        match self.selected_container() {
            Some(c) => {
                let id = c.id.clone();
                let req = make(c.name.clone(), None);
                let commands = self.request_runbook(req);
                if let Some(s) = &mut self.status {
                    s.about = Some(id);
                }
                commands
            }
            None => {
                self.notify(Level::Warn, "select a container first");
                vec![]
            }
        }
    }

    /// Rollback and deploy (`forward`) act on the service when the container belongs to one.
    pub fn rollback_selection(&mut self, forward: bool) -> Vec<Command> {
        let Some(c) = self.selected_container() else {
            let what = if forward { "deploy" } else { "roll back" };
            self.notify(
                Level::Warn,
                format!("select a container of the service to {what}"),
            );
            return vec![];
        };
        let (name, project) = match (&c.service, &c.project) {
            (Some(s), Some(p)) => (s.clone(), Some(p.clone())),
            _ => (c.name.clone(), None),
        };
        self.pick_image(name, project, forward)
    }

    /// Opens the image picker of a rollback or a deploy (`forward`) for a service (or container)
    /// once its candidates (the server's images and the registry's tags) are read.
    pub fn pick_image(
        &mut self,
        name: String,
        project: Option<String>,
        forward: bool,
    ) -> Vec<Command> {
        let what = if forward { "deploy" } else { "roll back to" };
        self.notify(
            Level::Info,
            format!("listing the images {name} can {what} …"),
        );
        vec![Command::LoadCandidates {
            name,
            project,
            forward,
        }]
    }
}
