//! Reads a timeline's inputs: the engine's whole event history, the log lines before each
//! container death, berth's audit and its local history of the server's events.

use std::collections::HashMap;

use bollard::query_parameters::{EventsOptions, LogsOptions};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::history::History;
use super::{EngineEvent, Inputs, LOG_LINES_BEFORE_DEATH, Timeline};
use crate::engine::Engine;
use crate::runbook::AuditLog;

/// Deaths whose logs are read, newest first; older ones are listed without their lines.
const MAX_DEATH_LOGS: usize = 50;
/// Lines read back from the end of the log to find those before a death (a container that
/// restarted has logged after it).
const LOG_SCAN: usize = 1000;
/// Audit lines read from the end of the log.
const AUDIT_SCAN: usize = 20_000;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub since: Option<DateTime<Utc>>,
    pub names: Vec<String>,
}

/// Reads everything and builds the timeline; the engine's events that matter and are newer than
/// berth's history are added to it, so the next timeline reaches back past them.
pub async fn timeline(
    engine: &Engine,
    audit: &AuditLog,
    history: &History,
    request: &Request,
) -> Result<Timeline, String> {
    let now = Utc::now();
    let engine_events = engine_events(engine, now).await?;
    let history_events = history.read().map_err(|e| {
        format!(
            "cannot read berth's event history {}: {e}",
            history.path.display()
        )
    })?;
    let newest_kept = history_events.iter().map(|e| e.time).max();
    let fresh: Vec<EngineEvent> = engine_events
        .iter()
        .filter(|e| e.matters() && newest_kept.is_none_or(|t| e.time > t))
        .cloned()
        .collect();
    // The timeline still answers when the history cannot be written (a read-only data dir).
    let _ = history.append(&fresh);
    let audit_entries = audit.read_last(AUDIT_SCAN).map_err(|e| e.to_string())?;
    let mut inputs = Inputs {
        server: engine.target.name.clone(),
        since: request.since,
        now,
        names: request.names.clone(),
        engine_total: engine_events.len(),
        engine: engine_events,
        history: history_events,
        state: Vec::new(),
        audit: audit_entries,
        logs: Vec::new(),
    };
    inputs.state = state_events(engine, &request.names).await;
    inputs.logs = death_logs(engine, &inputs).await;
    Ok(super::build(&inputs))
}

/// The engine's whole event history (every kind: the count tells a full buffer), oldest first.
async fn engine_events(engine: &Engine, now: DateTime<Utc>) -> Result<Vec<EngineEvent>, String> {
    let opts = EventsOptions {
        since: Some("0".into()),
        until: Some((now.timestamp() + 1).to_string()),
        filters: None,
    };
    let mut stream = engine.docker.events(Some(opts));
    let mut out = Vec::new();
    // The `until` ends the stream; the bound guards against an engine that keeps more than it
    // says.
    while let Some(msg) = stream.next().await {
        let msg = msg.map_err(|e| format!("reading the engine's events: {e}"))?;
        if out.len() >= 100_000 {
            break;
        }
        out.push(from_message(&msg));
    }
    out.sort_by_key(|e| e.time);
    Ok(out)
}

/// One engine message as the timeline keeps it.
pub fn from_message(msg: &bollard::models::EventMessage) -> EngineEvent {
    let empty = HashMap::new();
    let attrs = msg
        .actor
        .as_ref()
        .and_then(|a| a.attributes.as_ref())
        .unwrap_or(&empty);
    let label = |k: &str| attrs.get(k).filter(|v| !v.is_empty()).cloned();
    let id = msg
        .actor
        .as_ref()
        .and_then(|a| a.id.clone())
        .unwrap_or_default();
    let kind = msg.typ.map(|t| t.to_string()).unwrap_or_default();
    EngineEvent {
        time: match msg.time_nano {
            Some(n) => DateTime::from_timestamp_nanos(n),
            None => DateTime::from_timestamp(msg.time.unwrap_or(0), 0).unwrap_or_default(),
        },
        action: msg.action.clone().unwrap_or_default(),
        name: label("name").unwrap_or_else(|| id.clone()),
        exit_code: label("exitCode").and_then(|c| c.parse().ok()),
        project: label(crate::engine::model::LABEL_PROJECT),
        service: label(crate::engine::model::LABEL_SERVICE),
        swarm_service: label("com.docker.swarm.service.name"),
        from_state: false,
        kind,
        id,
    }
}

/// What the containers' own state still tells after the engine's few hundred events have moved
/// on (on a busy engine every health probe is three events): when each started and last
/// finished, with the exit code and an OOM kill, and when a failing health check made it
/// unhealthy. Only the containers `names` names (all without names).
async fn state_events(engine: &Engine, names: &[String]) -> Vec<EngineEvent> {
    use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
    let Ok(list) = engine
        .docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
    else {
        return Vec::new();
    };
    let ids: Vec<String> = list
        .iter()
        .filter(|c| {
            if names.is_empty() {
                return true;
            }
            let empty = HashMap::new();
            let labels = c.labels.as_ref().unwrap_or(&empty);
            let label = |k: &str| labels.get(k).map(String::as_str);
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/'))
                .unwrap_or_default();
            super::names_container(
                names,
                name,
                label(crate::engine::model::LABEL_PROJECT),
                label(crate::engine::model::LABEL_SERVICE),
                label("com.docker.swarm.service.name"),
            )
        })
        .filter_map(|c| c.id.clone())
        .collect();
    let inspected: Vec<_> = futures::stream::iter(ids)
        .map(|id| async move {
            engine
                .docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .ok()
        })
        .buffer_unordered(8)
        .collect()
        .await;
    inspected
        .into_iter()
        .flatten()
        .flat_map(|i| from_state(&i))
        .collect()
}

/// One container's state as events.
pub fn from_state(i: &bollard::models::ContainerInspectResponse) -> Vec<EngineEvent> {
    use crate::engine::model::parse_time;
    let empty = HashMap::new();
    let labels = i
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .unwrap_or(&empty);
    let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    let id = i.id.clone().unwrap_or_default();
    let event = |time, action: &str, exit_code| EngineEvent {
        time,
        kind: "container".into(),
        action: action.into(),
        id: id.clone(),
        name: i
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        exit_code,
        project: label(crate::engine::model::LABEL_PROJECT),
        service: label(crate::engine::model::LABEL_SERVICE),
        swarm_service: label("com.docker.swarm.service.name"),
        from_state: true,
    };
    let Some(state) = &i.state else {
        return Vec::new();
    };
    // The engine writes 0001-01-01 for "never".
    let real = |t: Option<DateTime<Utc>>| t.filter(|t| t.timestamp() > 0);
    let started = real(parse_time(state.started_at.as_deref()));
    let finished = real(parse_time(state.finished_at.as_deref()));
    let running = state.running.unwrap_or(false);
    let mut out = Vec::new();
    if let Some(t) = started {
        out.push(event(t, "start", None));
    }
    if let Some(t) = finished {
        // A running container's exit code is reset by its start: the code of that death is gone.
        let code = if running { None } else { state.exit_code };
        out.push(event(t, "die", code));
        if state.oom_killed == Some(true) && !running {
            out.push(event(t, "oom", None));
        }
    }
    if let Some(h) = &state.health
        && h.status.map(|s| s.to_string()).as_deref() == Some("unhealthy")
    {
        let log = h.log.as_deref().unwrap_or_default();
        let retries = i
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|c| c.retries)
            .filter(|r| *r > 0)
            .unwrap_or(3) as usize;
        let streak = h.failing_streak.unwrap_or(0).max(0) as usize;
        let failing_logged = log
            .iter()
            .rev()
            .take_while(|p| p.exit_code.unwrap_or(0) != 0)
            .count();
        // The probe that made it unhealthy when the log still holds it, else the oldest failing
        // probe it holds (it was unhealthy by then).
        let (probe, action) = if streak >= retries && streak - retries < failing_logged {
            (
                log.get(log.len() - streak + retries - 1),
                "health_status: unhealthy".to_string(),
            )
        } else {
            (
                log.get(log.len() - failing_logged),
                format!("health_status: unhealthy (by then; {streak} failed probes in a row)"),
            )
        };
        if let Some(t) =
            probe.and_then(|p| real(parse_time(p.end.as_deref().or(p.start.as_deref()))))
        {
            out.push(event(t, &action, None));
        }
    }
    out
}

/// For the newest deaths the timeline shows, the log lines the container wrote before it.
async fn death_logs(engine: &Engine, inputs: &Inputs) -> Vec<super::DeathLog> {
    let mut deaths: Vec<&EngineEvent> = inputs
        .engine
        .iter()
        .chain(inputs.history.iter())
        .chain(inputs.state.iter())
        .filter(|e| e.kind == "container" && e.action == "die")
        .filter(|e| inputs.since.is_none_or(|s| e.time >= s))
        .filter(|e| inputs.names.is_empty() || e.named_by(&inputs.names))
        .collect();
    deaths.sort_by_key(|e| std::cmp::Reverse(e.time));
    deaths.dedup_by_key(|e| (e.id.clone(), e.time));
    let mut out = Vec::new();
    for e in deaths.into_iter().take(MAX_DEATH_LOGS) {
        let lines = match lines_before(engine, &e.id, e.time).await {
            Some(lines) => lines,
            None => vec!["(no log: the container is gone)".into()],
        };
        out.push(((e.id.clone(), e.time), lines));
    }
    out
}

/// The last lines `id` logged up to `until`, sanitised; `None` when the container is gone.
async fn lines_before(engine: &Engine, id: &str, until: DateTime<Utc>) -> Option<Vec<String>> {
    let opts = LogsOptions {
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        until: (until.timestamp() + 1) as i32,
        tail: LOG_SCAN.to_string(),
        ..Default::default()
    };
    let mut stream = engine.docker.logs(id, Some(opts));
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => bytes.extend_from_slice(&c.into_bytes()),
            Err(_) if bytes.is_empty() => return None,
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (ts, rest) = l.split_once(' ').unwrap_or((l, ""));
            match DateTime::parse_from_rfc3339(ts) {
                Ok(t) if t.with_timezone(&Utc) > until => None,
                _ => Some(crate::format::printable(rest)),
            }
        })
        .collect();
    let skip = lines.len().saturating_sub(LOG_LINES_BEFORE_DEATH);
    lines.drain(..skip);
    Some(lines)
}
