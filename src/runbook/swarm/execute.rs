//! Running a swarm plan: the spec change through the manager, then watching the tasks converge.

use std::time::Duration;

use bollard::models::NodeSpecAvailabilityEnum;
use bollard::query_parameters::{InspectServiceOptions, ListTasksOptions, UpdateNodeOptions};

use std::time::Instant;

use super::super::audit::AuditEntry;
use super::super::postcondition::check_promises;
use super::super::{
    PlanKind, RunOptions, RunResult, Runner, StepStatus, audit_line, eng, phase_entry,
};
use super::{StackPlan, SwarmAction, SwarmPlan, spec};
use crate::engine::Engine;
use crate::engine::model::parse_time;
use crate::swarm::{TaskInfo, image_without_digest};

/// A stack's services one after another, each audited (started, then its result) and converged
/// before the next; the first failure stops the run and says which were done.
pub(crate) async fn run_stack(
    p: &StackPlan,
    engine: &Engine,
    options: &RunOptions,
    run: &mut Runner,
) -> Result<String, String> {
    let mut done: Vec<&str> = Vec::new();
    let done_text = |done: &[&str]| {
        if done.is_empty() {
            "none done".to_string()
        } else {
            format!("done: {}", done.join(", "))
        }
    };
    for (i, member) in p.members.iter().enumerate() {
        let PlanKind::Swarm(sp) = &member.kind else {
            continue;
        };
        let rest: Vec<&str> = p.members[i..].iter().map(|m| m.subject.as_str()).collect();
        if run.cancelled() {
            return Err(format!(
                "cancelled before {}; {}; not run: {}",
                member.subject,
                done_text(&done),
                rest.join(", ")
            ));
        }
        let started = Instant::now();
        let started_at = chrono::Utc::now();
        // This service's steps in the stack's run: its audit warnings show under them.
        let steps = sp.step..sp.step + member.steps.len();
        let entry = phase_entry(member, engine, "started", started_at);
        audit_line(engine, options, run, steps.start, entry).await;
        let images_before = std::mem::take(&mut run.images_before);
        let images_after = std::mem::take(&mut run.images_after);
        let res = self::run(sp, engine, run).await;
        let failed_step = run.statuses[steps.clone()].contains(&Some(StepStatus::Failed));
        let (mut ok, mut message) = match res {
            Ok(m) if !failed_step => (true, m),
            Ok(m) | Err(m) => (false, m),
        };
        // Each service's promises are read back as it ends, so its own audit line says
        // whether the engine shows them, and a difference stops the stack there.
        let differences = check_promises(&member.promises, engine).await;
        if !differences.is_empty() {
            for d in &differences {
                run.out(
                    steps.end.saturating_sub(1),
                    format!("end state differs: {d}"),
                )
                .await;
            }
            ok = false;
            message = format!(
                "{message}; the engine does not show what the plan promised: {}",
                differences.join("; ")
            );
        }
        let result = RunResult {
            ok,
            message: message.clone(),
            duration: started.elapsed(),
            images_before: run.images_before.iter().cloned().collect(),
            images_after: run.images_after.iter().cloned().collect(),
            metrics: Default::default(),
        };
        run.images_before.extend(images_before);
        run.images_after.extend(images_after);
        let entry = AuditEntry::new(member, &engine.target, &result, started_at);
        audit_line(engine, options, run, steps.end.saturating_sub(1), entry).await;
        if !ok {
            let after: Vec<&str> = rest[1..].to_vec();
            return Err(format!(
                "stopped at {}: {message}; {}; not run: {}",
                member.subject,
                done_text(&done),
                if after.is_empty() {
                    "none".to_string()
                } else {
                    after.join(", ")
                }
            ));
        }
        done.push(&member.subject);
    }
    Ok(format!(
        "{} service(s) of stack {} one after another, each converged: {}",
        done.len(),
        p.stack,
        done.join(", ")
    ))
}

pub(crate) async fn run(
    p: &SwarmPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    if p.action.on_node() {
        return run_node(p, engine, run).await;
    }
    let t = run.start(p.step).await;
    // The spec goes back as the engine wrote it, with only the plan's field edited: a field
    // berth's types do not model is neither dropped nor defaulted (which would restart tasks).
    let current = match engine.get_json(&format!("/services/{}", p.id)).await {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            run.finish(p.step, t, Err(msg.clone())).await;
            return Err(msg);
        }
    };
    let before_update = parse_time(
        current
            .pointer("/UpdateStatus/StartedAt")
            .and_then(|v| v.as_str()),
    );
    let spec_now = current.get("Spec").cloned().unwrap_or_default();
    let before_image = spec_now
        .pointer("/TaskTemplate/ContainerSpec/Image")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    run.images_before
        .insert(image_without_digest(before_image).to_string());
    let version = current
        .pointer("/Version/Index")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let edited = spec::edit(&spec_now, &p.action, p.image.as_deref(), p.policy.as_ref());
    let sent = match edited {
        Ok(new_spec) => {
            let rollback = if p.action == SwarmAction::Rollback {
                "&rollback=previous"
            } else {
                ""
            };
            engine
                .post_json(
                    &format!("/services/{}/update?version={version}{rollback}", p.id),
                    &new_spec,
                )
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("{}: {e}", p.name)),
    };
    let said = match sent {
        Ok(answer) => {
            let warnings = answer.get("Warnings").and_then(|w| w.as_array());
            for w in warnings.into_iter().flatten() {
                let w = w
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| w.to_string());
                run.out(p.step, format!("engine: {w}")).await;
            }
            Ok(format!("the manager accepted the new spec of {}", p.name))
        }
        Err(e) => Err(e),
    };
    if !run.finish(p.step, t, said.clone()).await {
        return Err(said.unwrap_err());
    }
    let t = run.start(p.step + 1).await;
    let res = converge(p, engine, run, before_update).await;
    let ok = run.finish(p.step + 1, t, res.clone()).await;
    if let Some(i) = &p.image
        && ok
    {
        run.images_after.insert(i.clone());
    }
    res
}

/// What the wait saw last.
struct Seen {
    state: Option<String>,
    message: Option<String>,
    new_update: bool,
    wanted: usize,
    running: usize,
    tasks: Vec<TaskInfo>,
}

async fn look(
    p: &SwarmPlan,
    engine: &Engine,
    before_update: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Seen, String> {
    let d = &engine.docker;
    let service = d
        .inspect_service(&p.id, None::<InspectServiceOptions>)
        .await
        .map_err(|e| eng(engine, e))?;
    let filters = std::collections::HashMap::from([("service".to_string(), vec![p.id.clone()])]);
    let tasks = d
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| eng(engine, e))?;
    let snap = crate::swarm::build(std::slice::from_ref(&service), &tasks, &[]);
    let info = snap.services.first();
    let update = service.update_status.as_ref();
    let wanted: Vec<&TaskInfo> = snap.tasks.iter().filter(|t| t.wants_running()).collect();
    Ok(Seen {
        state: info.and_then(|i| i.update_state.clone()),
        message: info.and_then(|i| i.update_message.clone()),
        new_update: update
            .and_then(|u| parse_time(u.started_at.as_deref()))
            .is_some_and(|s| before_update.is_none_or(|b| s > b)),
        wanted: wanted.len(),
        running: wanted.iter().filter(|t| t.is_running()).count(),
        tasks: snap.tasks.clone(),
    })
}

/// Errors of the tasks that failed since the change, newest first, at most five distinct.
fn task_errors(seen: &Seen, since: chrono::DateTime<chrono::Utc>) -> String {
    let mut failed: Vec<&TaskInfo> = seen
        .tasks
        .iter()
        .filter(|t| t.error.is_some() && t.created_at.is_none_or(|c| c >= since))
        .collect();
    failed.sort_by_key(|t| std::cmp::Reverse(t.since));
    let mut out: Vec<String> = Vec::new();
    for t in failed {
        let line = format!(
            "{} {}: {}",
            t.label(),
            t.state,
            t.error.as_deref().unwrap_or("")
        );
        if !out.contains(&line) {
            out.push(line);
        }
        if out.len() == 5 {
            break;
        }
    }
    if out.is_empty() {
        "none reported".into()
    } else {
        out.join("; ")
    }
}

async fn converge(
    p: &SwarmPlan,
    engine: &Engine,
    run: &mut Runner,
    before_update: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<String, String> {
    let started = std::time::Instant::now();
    let since = chrono::Utc::now() - chrono::Duration::seconds(2);
    let mut last_line = String::new();
    let mut seen: Option<Seen> = None;
    // Bounded by time and, as a second guard, by count (0.5 s apart).
    let max_polls = (p.wait.as_millis() / 500) as usize + 2;
    for _ in 0..max_polls {
        if run.cancelled() {
            return Err(
                "cancelled: the swarm goes on with the change; `berth services` shows where it is"
                    .into(),
            );
        }
        if started.elapsed() > p.wait {
            break;
        }
        let s = match look(p, engine, before_update).await {
            Ok(s) => s,
            Err(e) => {
                run.out(p.step + 1, format!("could not read the service: {e}"))
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let state = if s.new_update {
            s.state.clone().unwrap_or_else(|| "updating".into())
        } else {
            "not started".into()
        };
        let line = format!("{}/{} running · update {state}", s.running, s.wanted);
        if line != last_line {
            run.out(p.step + 1, line.clone()).await;
            last_line = line;
        }
        let all_running = s.running == s.wanted;
        let image_ok = |s: &Seen| {
            p.image.as_ref().is_none_or(|i| {
                s.tasks
                    .iter()
                    .filter(|t| t.wants_running())
                    .all(|t| &t.image == i)
            })
        };
        let final_state = s.new_update.then(|| s.state.clone()).flatten();
        let done = match (&p.action, final_state.as_deref()) {
            (SwarmAction::Scale(n), _) => (all_running && s.wanted as u64 == *n)
                .then(|| Ok(format!("{} task(s) running", s.running))),
            (SwarmAction::Rollback, Some("rollback_completed")) if all_running && image_ok(&s) => {
                Some(Ok(format!("rolled back: {} task(s) running", s.running)))
            }
            (SwarmAction::Restart | SwarmAction::Image(_), Some("completed"))
                if all_running && image_ok(&s) =>
            {
                Some(Ok(format!(
                    "update completed: {} task(s) running",
                    s.running
                )))
            }
            (SwarmAction::Restart | SwarmAction::Image(_), Some("rollback_completed")) => {
                Some(Err(format!(
                    "the update failed and the swarm rolled {} back to what it ran before ({}); task errors: {}",
                    p.name,
                    s.message.as_deref().unwrap_or("no message"),
                    task_errors(&s, since)
                )))
            }
            (_, Some(st @ ("paused" | "rollback_paused"))) => Some(Err(format!(
                "the swarm {} the {} of {} ({}); task errors: {}; resume with `docker service update {}` or roll back",
                if st == "paused" {
                    "paused"
                } else {
                    "paused the rollback, stopping"
                },
                if st == "paused" { "update" } else { "rollback" },
                p.name,
                s.message.as_deref().unwrap_or("no message"),
                task_errors(&s, since),
                p.name
            ))),
            _ => None,
        };
        if let Some(res) = done {
            run.metrics.insert(
                "converge_ms".into(),
                serde_json::json!(started.elapsed().as_millis() as u64),
            );
            return res;
        }
        seen = Some(s);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (what, errors) = match &seen {
        Some(s) => (
            format!(
                "{}/{} running, update status {}",
                s.running,
                s.wanted,
                if s.new_update {
                    s.state.as_deref().unwrap_or("updating")
                } else {
                    "not started"
                }
            ),
            task_errors(s, since),
        ),
        None => ("the service could not be read".into(), "unknown".into()),
    };
    Err(format!(
        "{} did not converge within {} s ({what}); task errors: {errors}. The swarm goes on by itself: `berth ps {}` shows its tasks",
        p.name,
        p.wait.as_secs(),
        p.name
    ))
}

async fn run_node(p: &SwarmPlan, engine: &Engine, run: &mut Runner) -> Result<String, String> {
    let d = &engine.docker;
    let t = run.start(p.step).await;
    let res = async {
        let node = d.inspect_node(&p.id).await.map_err(|e| eng(engine, e))?;
        let mut spec = node.spec.clone().unwrap_or_default();
        spec.availability = Some(if p.action == SwarmAction::Drain {
            NodeSpecAvailabilityEnum::DRAIN
        } else {
            NodeSpecAvailabilityEnum::ACTIVE
        });
        let version = node.version.as_ref().and_then(|v| v.index).unwrap_or(0) as i64;
        d.update_node(&p.id, spec, UpdateNodeOptions { version })
            .await
            .map_err(|e| eng(engine, e))?;
        Ok(format!(
            "node {} is now {}",
            p.name,
            if p.action == SwarmAction::Drain {
                "drain"
            } else {
                "active"
            }
        ))
    }
    .await;
    if !run.finish(p.step, t, res.clone()).await || p.action != SwarmAction::Drain {
        return res;
    }
    let t = run.start(p.step + 1).await;
    let res = watch_drain(p, engine, run).await;
    run.finish(p.step + 1, t, res.clone()).await;
    res
}

/// Waits until nothing runs on the drained node and its moved tasks run elsewhere, then says
/// where each went. A node that goes down meanwhile (its engine stopped, the host crashed, the
/// link cut) never reports its tasks stopped: the wait then ends as soon as the moved tasks run elsewhere (or at the bound),
/// and says so, instead of waiting out the bound on tasks the manager can no longer see.
async fn watch_drain(p: &SwarmPlan, engine: &Engine, run: &mut Runner) -> Result<String, String> {
    let started = std::time::Instant::now();
    let max_polls = (p.wait.as_millis() / 500) as usize + 2;
    let mut last = String::new();
    let mut gone: Option<(String, usize, String)> = None;
    for _ in 0..max_polls {
        if run.cancelled() {
            return Err(
                "cancelled: the node stays drained; the swarm goes on moving its tasks".into(),
            );
        }
        let snap = crate::swarm::snapshot(engine)
            .await
            .map_err(|e| e.to_string())?;
        let left = snap
            .tasks
            .iter()
            .filter(|t| t.node_id == p.id && (t.is_running() || t.wants_running()))
            .count();
        let status = snap
            .nodes
            .iter()
            .find(|n| n.id == p.id)
            .map_or("removed", |n| n.status.as_str());
        let line = if status == "ready" {
            format!("{left} task(s) still on {}", p.name)
        } else {
            format!(
                "{} is {status}: {left} task(s) last reported there, not known to have stopped",
                p.name
            )
        };
        if line != last {
            run.out(p.step + 1, line.clone()).await;
            last = line;
        }
        let (went, placed, stuck) = placements(p, &snap);
        if left == 0 && (placed || stuck.is_some()) {
            run.metrics.insert(
                "drain_ms".into(),
                serde_json::json!(started.elapsed().as_millis() as u64),
            );
            // Tasks the scheduler holds pending with no node for them: the services they belong
            // to run below their desired count, which is an outage, not a drain that worked.
            if let Some(stuck) = stuck {
                return Err(format!(
                    "{} drained, but {} task(s) wait pending: no node can take them ({}); below their desired count: {}. Activate a node (`berth activate {}`) or add one",
                    p.name,
                    stuck.len(),
                    stuck.join(", "),
                    below_desired(p, &snap),
                    p.name
                ));
            }
            return Ok(if went.is_empty() {
                format!("{} drained; no task had to move", p.name)
            } else {
                format!("{} drained: {}", p.name, went.join(", "))
            });
        }
        if status != "ready" {
            gone = Some((status.to_string(), left, went.join(", ")));
            if placed {
                break;
            }
        } else {
            gone = None;
        }
        if started.elapsed() > p.wait {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    run.metrics.insert(
        "drain_ms".into(),
        serde_json::json!(started.elapsed().as_millis() as u64),
    );
    if let Some((status, left, went)) = gone {
        return Err(format!(
            "node {} went down during the drain (status {status}): the manager no longer hears from it, so the {left} task(s) it last reported there are not known to have stopped (the node stops them when it is back, being drained). Where its tasks went: {}. See `berth nodes`",
            p.name,
            if went.is_empty() {
                "none had to move".to_string()
            } else {
                went
            }
        ));
    }
    Err(format!(
        "tasks still run on {} after {} s: the node is drained, the swarm goes on moving them (`berth nodes`)",
        p.name,
        p.wait.as_secs()
    ))
}

/// Where each task of the drained node runs now (`web.2 → node (state)`), whether every
/// replicated one has a replacement running on another node (a global task has none to have),
/// and, when every one without is held pending because no node suits it, those (`web.2: no
/// suitable node …`).
fn placements(
    p: &SwarmPlan,
    snap: &crate::swarm::Snapshot,
) -> (Vec<String>, bool, Option<Vec<String>>) {
    let mut went = Vec::new();
    let mut all = true;
    let mut stuck = Vec::new();
    let mut moving_on = false;
    for (label, service, slot) in &p.moving {
        let now = snap.tasks.iter().find(|t| {
            &t.service_id == service && t.slot == *slot && t.wants_running() && t.node_id != p.id
        });
        if slot.is_some() && !now.is_some_and(|t| t.is_running()) {
            all = false;
            match now {
                Some(t)
                    if t.state == "pending"
                        && t.error
                            .as_deref()
                            .is_some_and(|e| e.contains("no suitable node")) =>
                {
                    stuck.push(format!(
                        "{label}: {}",
                        t.error.as_deref().unwrap_or_default()
                    ))
                }
                _ => moving_on = true,
            }
        }
        went.push(match now {
            Some(t) => format!("{label} → {} ({})", t.node, t.state),
            None => format!("{label} → not placed"),
        });
    }
    let stuck = (!stuck.is_empty() && !moving_on).then_some(stuck);
    (went, all, stuck)
}

/// The services of the drained node's tasks that run fewer tasks than they want (`web 0/2`).
fn below_desired(p: &SwarmPlan, snap: &crate::swarm::Snapshot) -> String {
    let mut below: Vec<String> = snap
        .services
        .iter()
        .filter(|s| p.moving.iter().any(|(_, id, _)| id == &s.id) && s.running < s.desired)
        .map(|s| format!("{} {}", s.name, s.replicas()))
        .collect();
    below.sort();
    if below.is_empty() {
        "none".into()
    } else {
        below.join(", ")
    }
}
