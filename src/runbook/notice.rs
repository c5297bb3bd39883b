//! What a run tells the team: a [`RunNotice`] when it starts and one when it ends, handed to the
//! [`RunNotify`] hook the caller plugged into [`super::RunOptions`] (the webhooks of `notify`).
//! The runbook only says what happened; how and where it is posted is the hook's business, and
//! the hook must not make the run wait.

use std::time::Duration;

use serde::Serialize;

use super::{Plan, RunResult, StepStatus};
use crate::engine::Engine;

/// Lines of a failing step's error a notice carries: enough to see the cause, short enough for chat.
pub const ERROR_LINES: usize = 5;
/// Characters of one such line.
const ERROR_LINE_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Started,
    Finished,
}

/// How a run ended, as the team reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Not ended yet (the `started` notice).
    Started,
    Succeeded,
    Failed,
    /// Failed, and the automatic restore put the previous state back.
    Restored,
    /// Cancelled (Ctrl-C, the run view's cancel) before it finished.
    Interrupted,
}

impl Outcome {
    /// How a run ended: a cancel wins over a restore (the restore is what a cancel does).
    fn of(ok: bool, cancelled: bool, statuses: &[Option<StepStatus>]) -> Outcome {
        if ok {
            Outcome::Succeeded
        } else if cancelled {
            Outcome::Interrupted
        } else if statuses.contains(&Some(StepStatus::Undone)) {
            Outcome::Restored
        } else {
            Outcome::Failed
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Restored => "restored",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// One notice. Text comes from the server (names, images, errors): whoever posts it cleans it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunNotice {
    /// The audit name of the action: restart, rollback, deploy, migrate, prune, …
    pub action: String,
    pub phase: Phase,
    pub server: String,
    pub environment: Option<String>,
    /// The service or container (`shop/web`), or what a prune touches.
    pub service: String,
    pub result: Outcome,
    /// `repo:tag (sha256:…)` where the plan knows it.
    pub from_image: Option<String>,
    pub to_image: Option<String>,
    /// Who ran it: `user@laptop`, and the SSH account on the server when there is one.
    pub user: String,
    pub duration: Duration,
    /// The plan's title when it starts, the run's final message when it ends.
    pub message: String,
    /// The first step that failed, as the plan describes it.
    pub failed_step: Option<String>,
    /// The first [`ERROR_LINES`] lines of that step's error.
    pub error: Option<String>,
}

/// Where notices go. Called on the run's task: it must return at once (spawn, never await).
pub trait RunNotify: Send + Sync {
    fn notify(&self, notice: RunNotice);
}

impl RunNotice {
    pub fn started(plan: &Plan, engine: &Engine) -> RunNotice {
        let (from_image, to_image) = images(plan, None);
        RunNotice {
            action: plan.action.clone(),
            phase: Phase::Started,
            server: engine.target.name.clone(),
            environment: engine.target.environment.clone(),
            service: plan.subject.clone(),
            result: Outcome::Started,
            from_image,
            to_image,
            user: user(engine),
            duration: Duration::ZERO,
            message: plan.title.clone(),
            failed_step: None,
            error: None,
        }
    }

    /// `statuses`: what each step ended as; `failure`: the first failed step and its message.
    pub(crate) fn finished(
        plan: &Plan,
        engine: &Engine,
        result: &RunResult,
        statuses: &[Option<StepStatus>],
        failure: Option<&(usize, String)>,
        cancelled: bool,
    ) -> RunNotice {
        let outcome = Outcome::of(result.ok, cancelled, statuses);
        let (from_image, to_image) = images(plan, Some(result));
        let (failed_step, error) = match failure {
            Some((i, message)) if !result.ok => (
                plan.steps.get(*i).map(|s| s.description.clone()),
                Some(first_lines(message)),
            ),
            _ if !result.ok => (None, Some(first_lines(&result.message))),
            _ => (None, None),
        };
        RunNotice {
            result: outcome,
            phase: Phase::Finished,
            from_image,
            to_image,
            duration: result.duration,
            message: result.message.clone(),
            failed_step,
            error,
            ..RunNotice::started(plan, engine)
        }
    }
}

fn user(engine: &Engine) -> String {
    let local = super::audit::local_user();
    match engine.ssh.as_ref() {
        Some(s) => format!("{local} (as {} on the server)", s.resolved().user),
        None => local,
    }
}

/// `repo:tag (sha256:0123456789ab)`, or the tag or id alone.
fn image_label(reference: Option<&str>, id: Option<&str>) -> Option<String> {
    let id = id.filter(|i| !i.is_empty()).map(|i| {
        let hex = i.strip_prefix("sha256:").unwrap_or(i);
        format!("sha256:{}", &hex[..hex.len().min(12)])
    });
    match (reference.filter(|r| !r.is_empty()), id) {
        (Some(r), Some(id)) if r != id => Some(format!("{r} ({id})")),
        (Some(r), _) => Some(r.to_string()),
        (None, id) => id,
    }
}

/// What the service ran before and runs after: the plan's `from`/`to` (a rollback, a deploy),
/// else, once it ended, the image ids the run saw change.
fn images(plan: &Plan, result: Option<&RunResult>) -> (Option<String>, Option<String>) {
    let p = &plan.parameters;
    let text = |key: &str| p.get(key).and_then(|v| v.as_str());
    let from = image_label(text("from"), text("from_image_id"));
    let to = image_label(
        text("to").filter(|_| p.get("image_id").is_some()),
        text("image_id"),
    )
    .or_else(|| image_label(text("to"), None));
    if from.is_some() || to.is_some() {
        return (from, to);
    }
    match result {
        Some(r) if r.images_before != r.images_after => {
            let join = |ids: &[String]| {
                let labels: Vec<String> = ids
                    .iter()
                    .filter_map(|i| image_label(None, Some(i)))
                    .collect();
                (!labels.is_empty()).then(|| labels.join(", "))
            };
            (join(&r.images_before), join(&r.images_after))
        }
        _ => (None, None),
    }
}

/// The first [`ERROR_LINES`] non-empty lines, each cut to a readable length.
pub fn first_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out: Vec<String> = lines
        .iter()
        .take(ERROR_LINES)
        .map(|l| crate::format::truncate(l.trim_end(), ERROR_LINE_CHARS))
        .collect();
    if lines.len() > ERROR_LINES {
        out.push(format!("(+{} more lines)", lines.len() - ERROR_LINES));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_a_run_ended() {
        use StepStatus::*;
        let restored = [Some(Undone), Some(Failed), Some(Ok)];
        assert_eq!(Outcome::of(true, false, &[Some(Ok)]), Outcome::Succeeded);
        assert_eq!(Outcome::of(false, false, &restored), Outcome::Restored);
        assert_eq!(Outcome::of(false, true, &restored), Outcome::Interrupted);
        assert_eq!(
            Outcome::of(false, false, &[Some(Ok), Some(Failed), Some(Skipped)]),
            Outcome::Failed
        );
    }

    #[test]
    fn image_labels() {
        assert_eq!(
            image_label(Some("web:v1"), Some("sha256:0123456789abcdef")),
            Some("web:v1 (sha256:0123456789ab)".into())
        );
        assert_eq!(image_label(None, Some("abc")), Some("sha256:abc".into()));
        assert_eq!(image_label(Some(""), None), None);
    }

    #[test]
    fn error_excerpt_is_bounded() {
        let long = (1..=9)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n\n");
        let e = first_lines(&long);
        assert_eq!(e, "line 1\nline 2\nline 3\nline 4\nline 5\n(+4 more lines)");
        assert!(first_lines(&"x".repeat(5000)).chars().count() <= ERROR_LINE_CHARS + 1);
    }
}
