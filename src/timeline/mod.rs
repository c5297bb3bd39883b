//! The incident's timeline: the engine's events that matter, berth's audit and the last log lines
//! before each container death, merged into one time-ordered account (`berth timeline`, the
//! console's timeline view). Building it is pure ([`build`]); reading its inputs is in
//! [`collect`], the bounded local history of events berth saw in [`history`], the text, Markdown
//! and JSON forms in [`render`].

pub mod collect;
pub mod history;
pub mod render;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::runbook::AuditEntry;

/// The engine keeps this many events in memory (dockerd's `eventsLimit`); older ones are gone.
pub const ENGINE_EVENTS_KEPT: usize = 256;
/// A gap between two entries longer than this is shown as one "quiet" line.
pub const QUIET_GAP: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// Log lines shown before a container's death.
pub const LOG_LINES_BEFORE_DEATH: usize = 10;

/// One engine event as the timeline keeps it (from the engine or from berth's local history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineEvent {
    pub time: DateTime<Utc>,
    /// `container`, `image`.
    pub kind: String,
    /// `die`, `oom`, `health_status: unhealthy`, `pull` …
    pub action: String,
    pub id: String,
    /// The container's name, or the image's reference.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// A swarm task's service (its container's `com.docker.swarm.service.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_service: Option<String>,
    /// Read from the container's state (its last start, its last finish, its health log), not
    /// from an event: what is left when the engine's events have moved on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_state: bool,
}

impl EngineEvent {
    /// Whether the timeline shows it: the events that tell what happened, not the noise of every
    /// health probe's exec or every attach.
    pub fn matters(&self) -> bool {
        match self.kind.as_str() {
            "container" => {
                matches!(
                    self.action.as_str(),
                    "start" | "restart" | "die" | "stop" | "kill" | "oom" | "destroy" | "create"
                ) || self.action.starts_with("health_status")
            }
            "image" => self.action == "pull",
            _ => false,
        }
    }

    /// Same event from two sources (the engine and the local history).
    fn key(&self) -> (i64, &str, &str) {
        (
            self.time.timestamp_nanos_opt().unwrap_or(0),
            self.action.as_str(),
            self.id.as_str(),
        )
    }

    /// `shop/web`, the swarm service, or the container's name.
    pub fn subject(&self) -> String {
        match (&self.project, &self.service, &self.swarm_service) {
            (Some(p), Some(s), _) => format!("{p}/{s} ({})", self.name),
            (_, _, Some(s)) => format!("{s} ({})", self.name),
            _ => self.name.clone(),
        }
    }

    fn summary(&self) -> String {
        let task = self.swarm_service.is_some();
        match (self.action.as_str(), self.exit_code) {
            ("die", Some(code)) if task && code != 0 => format!("task failed, exit code {code}"),
            ("die", Some(code)) => format!("died, exit code {code}"),
            ("die", None) => "died".into(),
            ("oom", _) => "out of memory (OOM kill)".into(),
            ("start", _) => "started".into(),
            ("restart", _) => "restarted".into(),
            ("stop", _) => "stopped".into(),
            ("kill", _) => "killed".into(),
            ("create", _) => "created".into(),
            ("destroy", _) => "removed".into(),
            ("pull", _) => "image pulled".into(),
            (a, _) => match a.strip_prefix("health_status:") {
                Some(h) => format!("health: {}", h.trim()),
                None => a.to_string(),
            },
        }
    }

    /// Whether the filter names this event's container: its name, service, project or swarm
    /// service (an image pull is shown only without a filter).
    pub(crate) fn named_by(&self, names: &[String]) -> bool {
        self.kind == "container"
            && names_container(
                names,
                &self.name,
                self.project.as_deref(),
                self.service.as_deref(),
                self.swarm_service.as_deref(),
            )
    }
}

/// Whether one of `names` (a container, `project/service`, a service, a project or a swarm
/// service) names this container.
pub(crate) fn names_container(
    names: &[String],
    container: &str,
    project: Option<&str>,
    service: Option<&str>,
    swarm_service: Option<&str>,
) -> bool {
    names.iter().any(|n| {
        let (want_project, want_service) = match n.split_once('/') {
            Some((p, s)) => (Some(p), s),
            None => (None, n.as_str()),
        };
        container == n
            || swarm_service == Some(n.as_str())
            || (want_project.is_none() && project == Some(n.as_str()))
            || (service == Some(want_service) && want_project.is_none_or(|p| project == Some(p)))
    })
}

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The engine's events (or berth's local history of them).
    Engine,
    /// berth's audit log: who ran what, and how it ended.
    Audit,
    /// Something about the timeline itself: where a history ends, a quiet stretch.
    Note,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub time: DateTime<Utc>,
    pub source: Source,
    /// What it is about: `shop/web (shop-web-1)`, `rollback shop/web`.
    pub subject: String,
    /// What happened.
    pub what: String,
    /// The same thing happened this many times in a row (a restart loop): the entry is the last.
    #[serde(skip_serializing_if = "is_one")]
    pub repeated: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The last log lines before a death, sanitised.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// An entry that needs attention: a death with a non-zero code, an OOM, unhealthy, a failed run.
    pub bad: bool,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The last log lines of a container (by id) before its death at that time.
pub type DeathLog = ((String, DateTime<Utc>), Vec<String>);

/// Everything a timeline is built from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The server's name as the audit names it.
    pub server: String,
    pub since: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// Only these containers, services or projects (empty: all).
    pub names: Vec<String>,
    /// The engine's events, as it returned them (oldest first), all kinds.
    pub engine: Vec<EngineEvent>,
    /// How many events the engine returned for its whole history (to tell a full buffer from a
    /// restart).
    pub engine_total: usize,
    /// Events berth saw earlier on this server.
    pub history: Vec<EngineEvent>,
    /// What the containers' state tells (see [`EngineEvent::from_state`]).
    pub state: Vec<EngineEvent>,
    pub audit: Vec<AuditEntry>,
    /// The last log lines before a death, by (container id, death time).
    pub logs: Vec<DeathLog>,
}

/// The account, oldest first, and what it cannot tell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub server: String,
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub entries: Vec<Entry>,
}

/// Merges, filters and orders the inputs; collapses repeats and quiet stretches; says where the
/// engine's history begins and why.
pub fn build(inputs: &Inputs) -> Timeline {
    let in_window = |t: DateTime<Utc>| inputs.since.is_none_or(|s| t >= s) && t <= inputs.now;
    let mut entries: Vec<Entry> = Vec::new();

    let engine_start = inputs.engine.iter().map(|e| e.time).min();
    let mut seen = std::collections::HashSet::new();
    let recorded: Vec<&EngineEvent> = inputs
        .engine
        .iter()
        .chain(inputs.history.iter())
        .filter(|e| seen.insert(e.key()))
        .collect();
    // A state reading stands for an event only when no event recorded it: the same start or
    // death within a second or two; for health, any unhealthy event of the container.
    let recorded_by_event = |s: &EngineEvent| {
        recorded.iter().any(|e| {
            e.id == s.id
                && e.action == s.action
                && (s.action.starts_with("health_status")
                    || (e.time - s.time).abs() <= chrono::TimeDelta::seconds(2))
        })
    };
    let state: Vec<&EngineEvent> = inputs
        .state
        .iter()
        .filter(|s| !recorded_by_event(s))
        .collect();
    let events = recorded
        .into_iter()
        .chain(state)
        .filter(|e| e.matters() && in_window(e.time))
        .filter(|e| inputs.names.is_empty() || e.named_by(&inputs.names));
    for e in events {
        let log = inputs
            .logs
            .iter()
            .find(|((id, t), _)| *id == e.id && *t == e.time && e.action == "die")
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let bad = match e.action.as_str() {
            "die" => e.exit_code.is_some_and(|c| c != 0),
            "oom" => true,
            a => a.starts_with("health_status") && a.contains("unhealthy"),
        };
        entries.push(Entry {
            time: e.time,
            source: Source::Engine,
            subject: e.subject(),
            what: e.summary(),
            repeated: 1,
            first_time: None,
            exit_code: e.exit_code.filter(|_| e.action == "die"),
            log,
            bad,
        });
    }

    // Containers by name, with their labels, for the audit's targets.
    let known: std::collections::HashMap<&str, &EngineEvent> = inputs
        .engine
        .iter()
        .chain(inputs.history.iter())
        .filter(|e| e.kind == "container")
        .map(|e| (e.name.as_str(), e))
        .collect();
    for a in inputs.audit.iter().filter(|a| {
        a.server == inputs.server
            && in_window(a.time)
            && (inputs.names.is_empty() || audit_named_by(a, &inputs.names, &known))
    }) {
        let by = match &a.ssh_user {
            Some(ssh) => format!("{} (as {ssh})", a.user),
            None => a.user.clone(),
        };
        let mut what = format!("{} {} by {by}", a.action, a.result);
        if !a.message.is_empty() && a.result != "started" {
            what.push_str(": ");
            what.push_str(&a.message);
        }
        // A run's closing line carries the run's start time and its duration (a delivery
        // failure's line is written when it happened).
        let time = if a.result == "started" || a.action == "notify" {
            a.time
        } else {
            a.time + chrono::TimeDelta::milliseconds(a.duration_ms as i64)
        };
        entries.push(Entry {
            time,
            source: Source::Audit,
            subject: format!("{} {}", a.action, a.target),
            what,
            repeated: 1,
            first_time: None,
            exit_code: None,
            log: Vec::new(),
            bad: a.result == "failed" || a.result == "interrupted",
        });
    }

    // Stable: an audit line and an engine event at the same instant keep their source order.
    entries.sort_by_key(|e| e.time);
    let mut entries = collapse_repeats(entries);

    if let Some(note) = history_note(inputs, engine_start) {
        let at = note.time;
        let pos = entries.partition_point(|e| e.time < at);
        entries.insert(pos, note);
    }
    let entries = mark_quiet(entries);
    Timeline {
        server: inputs.server.clone(),
        since: inputs.since,
        until: inputs.now,
        entries,
    }
}

/// Whether the filter names an audit entry: its target as written (`shop/web`, a container), or
/// a container it acted on, placed in its project and service by the engine's events.
fn audit_named_by(
    a: &AuditEntry,
    names: &[String],
    known: &std::collections::HashMap<&str, &EngineEvent>,
) -> bool {
    if names_container(names, &a.target, None, None, None) {
        return true;
    }
    if let Some((p, s)) = a.target.split_once('/')
        && names_container(names, "", Some(p), Some(s), None)
    {
        return true;
    }
    let containers = a.parameters["containers"].as_array().into_iter().flatten();
    std::iter::once(a.target.as_str())
        .chain(containers.filter_map(|c| c.as_str()))
        .filter_map(|c| known.get(c))
        .any(|e| e.named_by(names))
}

/// Where the engine's own history starts, and what that means: a full buffer dropped older
/// events; a short one with berth's history reaching before it means the engine restarted.
fn history_note(inputs: &Inputs, engine_start: Option<DateTime<Utc>>) -> Option<Entry> {
    let first_history = inputs.history.iter().map(|e| e.time).min();
    let note = |time: DateTime<Utc>, what: String| Entry {
        time,
        source: Source::Note,
        subject: "engine history".into(),
        what,
        repeated: 1,
        first_time: None,
        exit_code: None,
        log: Vec::new(),
        bad: false,
    };
    let Some(start) = engine_start else {
        return Some(note(
            inputs.now,
            match first_history {
                Some(_) => "the engine returned no events: it restarted and its history is gone; the entries above come from berth's own history of this server".into(),
                None => "the engine returned no events and berth has no history of this server".into(),
            },
        ));
    };
    let reach = match first_history {
        Some(h) if h < start => "; the entries before come from berth's own history of this server",
        _ => "",
    };
    let what = if inputs.engine_total >= ENGINE_EVENTS_KEPT {
        format!(
            "the engine's history begins here: it keeps only its last {ENGINE_EVENTS_KEPT} events{reach}"
        )
    } else if first_history.is_some_and(|h| h < start) {
        format!(
            "the engine's history begins here: the engine restarted and its earlier events are gone{reach}"
        )
    } else {
        "the engine's history begins here (its first event since it started)".to_string()
    };
    // Not worth saying when the window starts after it.
    if inputs.since.is_some_and(|s| s > start) {
        return None;
    }
    Some(note(start, what))
}

/// Consecutive entries saying the same about the same subject (a restart loop) become one, with
/// the count, the first time and the last one's log.
fn collapse_repeats(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        if let Some(last) = out.last_mut()
            && last.source == e.source
            && last.subject == e.subject
            && last.what == e.what
        {
            last.first_time.get_or_insert(last.time);
            last.repeated += 1;
            last.time = e.time;
            if !e.log.is_empty() {
                last.log = e.log;
            }
            continue;
        }
        out.push(e);
    }
    out
}

/// A gap longer than [`QUIET_GAP`] between two entries becomes one line saying how long nothing
/// happened.
fn mark_quiet(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        if let Some(prev) = out.last()
            && e.time - prev.time > QUIET_GAP
        {
            let gap = e.time - prev.time;
            out.push(Entry {
                time: prev.time,
                source: Source::Note,
                subject: String::new(),
                what: format!("quiet for {}", crate::format::duration(gap.num_seconds())),
                repeated: 1,
                first_time: None,
                exit_code: None,
                log: Vec::new(),
                bad: false,
            });
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests;
