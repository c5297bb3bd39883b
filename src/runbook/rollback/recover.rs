//! Recovering a rollback that was cut off (SSH drop, berth killed, laptop asleep, engine restart):
//! the containers it left on the server say where it stopped — the old one renamed `-berth-old-`
//! with compose's labels still on, a new one beside it or under the service's name, a temporary
//! `-berth-new-` one. The operator chooses to finish (verify the new one for a full window, then
//! keep the old one out of compose's sight) or to restore (the old one back under its name).

use std::collections::BTreeMap;
use std::sync::Arc;

use bollard::query_parameters::{RenameContainerOptions, StartContainerOptions};
use serde::Serialize;

use super::super::{
    HealthSettings, LABEL_ROLLBACK_FROM, LABEL_ROLLBACK_ID, NEW_MARK, Plan, PlanKind, RunbookError,
    Runner, Step, eng, health, plan_base, short,
};
use super::kept::is_kept_copy;
use super::set_aside::{
    adopt_networks, being_removed, keep_copy, remove_container, stop_and_wait, wait_exited,
};
use super::undo::{PinUndo, settle_retag, undo_pin};
use crate::compose::ProjectFiles;
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::{
    COPY_SUFFIX, Container, KEPT_MARK, State, kept_name_of, set_aside_base,
};
use crate::runbook::postcondition::{Expect, Promise};

/// What to do with an interrupted rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecoverChoice {
    /// Verify the new container for a full window; keep the old one stopped, out of compose's sight.
    Finish,
    /// Remove the new container and give the old one its name back, started and verified.
    Restore,
}

#[derive(Debug, Clone)]
pub(crate) struct RecoverPlan {
    fixes: Vec<Fix>,
    health: HealthSettings,
    /// The run ids found on the leftovers, for the audit's `interrupted` line.
    pub(crate) interrupted: Vec<String>,
    /// The cut-off run's retag, its step after the fixes': completed when every fix finished,
    /// else the tag is pointed back.
    retag: Option<super::journal::RetagRecord>,
    /// The cut-off run's `.env` pin to write back, its step last (a restore only).
    pin_undo: Option<PinUndo>,
}

/// One replica's leftovers and what the plan does with them.
#[derive(Debug, Clone)]
struct Fix {
    /// The name the replica serves under.
    base: String,
    /// The old container, when it was renamed away (`-berth-old-`), with its id.
    old: Option<(String, String)>,
    /// The old container still under `base` and running: the run stopped before the switch.
    live_old: Option<String>,
    /// berth's new container (id, current name).
    new: Option<(String, String)>,
    /// A copy already kept (hidden) by a keep step that was cut before removing the original.
    hidden: Option<String>,
    /// Only the run journal knows: cut during the first stop, nothing renamed or created yet.
    stopped_in_place: Option<String>,
    /// Only the run journal knows: the run got past its switch (its new container serves under
    /// the name, the old one removed or kept) and was cut before it closed. Only verifying is left.
    settled: Option<String>,
    /// A kept copy still under its temporary name (id, kept name): the keep step was cut after it
    /// removed the original and before the copy took the name.
    unnamed_copy: Option<(String, String)>,
    choice: RecoverChoice,
    rollback_id: Option<String>,
}

pub(super) fn base_name<'a>(name: &'a str, mark: &str) -> Option<&'a str> {
    name.find(mark).map(|i| &name[..i])
}

/// The stopped old container still carries compose's labels: a kept one made by a finished run
/// has them set aside. (An old one that only got renamed is a run that did not finish.)
fn unfinished_old(c: &Container) -> bool {
    set_aside_base(&c.name).is_some()
        && !is_kept_copy(c)
        && c.labels
            .keys()
            .any(|k| k.starts_with(crate::engine::model::COMPOSE_PREFIX))
}

/// Finds what an interrupted rollback left behind for these replicas. `Ok(None)`: nothing half done.
pub(super) fn plan_recover(
    engine: &Engine,
    config: &Config,
    label: &str,
    replicas: &[Container],
    all: &[Container],
    choice: Option<RecoverChoice>,
    files: Option<&Arc<dyn ProjectFiles>>,
) -> Result<Option<Plan>, RunbookError> {
    let Some(first) = replicas
        .first()
        .or_else(|| all.iter().find(|c| unfinished_old(c)))
    else {
        return Ok(None);
    };
    let same_service = |c: &Container| {
        (c.service.is_some() && c.service == first.service && c.project == first.project)
            || replicas.iter().any(|r| c.name.starts_with(&r.name))
    };
    let by_name: BTreeMap<&str, &Container> = all.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut fixes: BTreeMap<String, Fix> = BTreeMap::new();
    let fix_for = |fixes: &mut BTreeMap<String, Fix>, base: &str| {
        fixes.entry(base.to_string()).or_insert_with(|| Fix {
            base: base.to_string(),
            old: None,
            live_old: None,
            new: None,
            hidden: None,
            stopped_in_place: None,
            settled: None,
            unnamed_copy: None,
            choice: RecoverChoice::Restore,
            rollback_id: None,
        });
    };
    for c in all.iter().filter(|c| same_service(c)) {
        if unfinished_old(c) {
            let base = set_aside_base(&c.name).unwrap_or_default();
            fix_for(&mut fixes, base);
            let f = fixes.get_mut(base).unwrap();
            f.old = Some((c.id.clone(), c.name.clone()));
            // The new container is under the base name (fixed port) or a temporary one.
            if let Some(live) = by_name.get(base)
                && live.labels.get(LABEL_ROLLBACK_FROM) == Some(&c.id)
            {
                f.new = Some((live.id.clone(), live.name.clone()));
                f.rollback_id = live.labels.get(LABEL_ROLLBACK_ID).cloned();
            }
            // Its copy, made by a keep step cut before it removed the original: under the
            // temporary name, or (an older berth) already under the kept name.
            let kept = kept_name_of(&c.name);
            f.hidden = [format!("{kept}{COPY_SUFFIX}"), kept]
                .iter()
                .filter_map(|n| by_name.get(n.as_str()))
                .find(|h| h.id != c.id && is_kept_copy(h))
                .map(|h| h.id.clone());
        } else if let Some(base) = base_name(&c.name, NEW_MARK) {
            fix_for(&mut fixes, base);
            let f = fixes.get_mut(base).unwrap();
            f.new = Some((c.id.clone(), c.name.clone()));
            f.rollback_id = c.labels.get(LABEL_ROLLBACK_ID).cloned();
            if let Some(live) = by_name.get(base)
                && live
                    .labels
                    .get(LABEL_ROLLBACK_FROM)
                    .is_none_or(|from| from != &c.id)
            {
                if live.state.is_up() {
                    f.live_old = Some(live.id.clone());
                } else {
                    // Cut inside the switch's stop, before the rename: the old one stopped in place.
                    f.stopped_in_place = Some(live.id.clone());
                }
            }
        }
    }
    // The local journal knows runs cut off before they left anything on the server.
    let journal = super::journal::open_runs(&engine.target.name, all);
    for e in &journal {
        for (name, id) in &e.replicas {
            if let Some(f) = fixes.get_mut(name) {
                f.rollback_id.get_or_insert_with(|| e.rollback_id.clone());
                continue;
            }
            let under_name = by_name.get(name.as_str()).filter(|c| same_service(c));
            let Some(c) = under_name else {
                continue;
            };
            let settled = c.id != *id && c.labels.get(LABEL_ROLLBACK_ID) == Some(&e.rollback_id);
            if c.id != *id && !settled {
                continue;
            }
            fix_for(&mut fixes, name);
            let f = fixes.get_mut(name.as_str()).unwrap();
            if settled {
                f.settled = Some(c.id.clone());
            } else {
                f.stopped_in_place = Some(c.id.clone());
            }
            f.rollback_id = Some(e.rollback_id.clone());
        }
    }
    for c in all
        .iter()
        .filter(|c| is_kept_copy(c) && c.name.ends_with(COPY_SUFFIX))
    {
        let kept = kept_name_of(&c.name);
        if let Some(f) = set_aside_base(&c.name).and_then(|b| fixes.get_mut(b))
            && !by_name.contains_key(kept.as_str())
        {
            f.unnamed_copy = Some((c.id.clone(), kept));
        }
    }
    // A temporary new container whose old one was renamed: the old one's entry found it by label.
    let mut fixes: Vec<Fix> = fixes.into_values().collect();
    for f in &mut fixes {
        if f.old.is_some() && f.new.is_none() {
            // A temporary new one of the same run (non-fixed flow, cut inside the switch).
            let old_id = f.old.as_ref().map(|o| o.0.clone()).unwrap_or_default();
            if let Some(n) = all.iter().find(|n| {
                n.name.contains(NEW_MARK) && n.labels.get(LABEL_ROLLBACK_FROM) == Some(&old_id)
            }) {
                f.new = Some((n.id.clone(), n.name.clone()));
                f.rollback_id = n.labels.get(LABEL_ROLLBACK_ID).cloned();
            }
        }
        f.choice = match (choice, &f.new, &f.old, &f.live_old) {
            // Past the switch, with no old container to give back: only finishing is left.
            _ if f.settled.is_some() => RecoverChoice::Finish,
            // Nothing new to finish with: only a restore brings the service back.
            (_, None, _, _) => RecoverChoice::Restore,
            // The old one never stopped and nothing renamed it: finishing needs an explicit ask.
            (None, Some(_), None, _) => RecoverChoice::Restore,
            (None, Some(_), Some(_), _) => RecoverChoice::Finish,
            (Some(c), ..) => c,
        };
    }
    // Entries of a NEW_MARK container whose old one is listed under the same base merge above.
    fixes.retain(|f| {
        f.old.is_some() || f.new.is_some() || f.stopped_in_place.is_some() || f.settled.is_some()
    });
    if fixes.is_empty() {
        return Ok(None);
    }
    // A replica the run never switched has nothing new to finish with: finishing the others
    // would leave the service on two images (and call that recovered).
    let unfinishable: Vec<&str> = fixes
        .iter()
        .filter(|f| f.choice == RecoverChoice::Restore)
        .map(|f| f.base.as_str())
        .collect();
    if choice == Some(RecoverChoice::Finish)
        && !unfinishable.is_empty()
        && fixes.iter().any(|f| f.choice == RecoverChoice::Finish)
    {
        return Err(RunbookError::Invalid(format!(
            "recover --finish: the run was cut off before it switched {} (no new container there to finish with), so a finish would leave {label} on two images; `berth recover {label} --restore` puts every replica back on the image it ran before, then run the rollback or deploy again",
            unfinishable.join(", ")
        )));
    }
    let runs: Vec<_> = journal
        .iter()
        .filter(|e| {
            e.replicas
                .iter()
                .any(|(name, _)| fixes.iter().any(|f| &f.base == name))
        })
        .collect();
    let pin = runs.iter().find_map(|e| e.pin.clone());
    let retag = runs.iter().find_map(|e| e.retag.clone());
    let health =
        super::super::health_settings(config, first.project.as_deref(), first.service.as_deref());
    let mut plan = plan_base(
        engine,
        format!("recover the interrupted rollback of {label}"),
        "rollback-recover",
        label,
        true,
    );
    let found = fixes
        .iter()
        .map(describe_found)
        .collect::<Vec<_>>()
        .join("; ");
    plan.notes.push(if fixes.iter().all(|f| f.settled.is_some()) {
        format!(
            "a rollback of {label} was cut off after its switch (berth found: {found}). What it rolled back to serves: the recovery verifies it and closes the run; there is no old container to restore (`berth rollback {label}` goes back)"
        )
    } else {
        format!(
            "a rollback of {label} did not finish (berth found what it left: {found}). Finish verifies the new container for a full window and keeps the old one out of compose's sight; restore puts the old one back. From a script: `berth recover {label} --finish` or `--restore`"
        )
    });
    if let Some(age) = super::journal::may_still_run(all.iter(), chrono::Utc::now()) {
        plan.notes.push(format!(
            "the run started {} ago: if a berth on another machine still runs it, let it end first (a recovery now would race it)",
            crate::format::duration(age.num_seconds())
        ));
    }
    for f in &fixes {
        plan.steps.push(step_for(f));
    }
    let restoring = fixes.iter().all(|f| f.choice == RecoverChoice::Restore);
    if let Some(r) = &retag {
        let reference = format!("{}:{}", r.repo, r.tag);
        plan.steps.push(if restoring {
            Step::new(
                format!(
                    "point {reference} back at {}, the image it named before the run, if the run's retag moved it",
                    short(&r.displaced)
                ),
                vec![
                    format!("GET /images/{reference}/json"),
                    format!("POST /images/{}/tag?repo={}&tag={}", short(&r.displaced), r.repo, r.tag),
                    format!("DELETE /images/{}:{}?noprune=1", r.repo, r.keep_tag),
                ],
            )
        } else {
            Step::new(
                format!(
                    "retag: point {reference} at {} (the run's retag, finished; back at {} if a finish fails and restores)",
                    short(&r.image_id),
                    short(&r.displaced)
                ),
                vec![
                    format!("POST /images/{}/tag?repo={}&tag={}", short(&r.displaced), r.repo, r.keep_tag),
                    format!("POST /images/{}/tag?repo={}&tag={}", short(&r.image_id), r.repo, r.tag),
                ],
            )
        });
    }
    if let Some(r) = &pin {
        if restoring {
            plan.steps.push(Step::new(
                format!(
                    "set {} in {} back to its value in {}: the run's pin {}={} is undone, so compose declares what serves again",
                    r.var, r.env_path, r.backup, r.var, r.value
                ),
                vec![
                    format!("read {} and {}", r.env_path, r.backup),
                    format!(
                        "rewrite the {} line of {} (only while it holds the pin and the file is unchanged meanwhile)",
                        r.var, r.env_path
                    ),
                ],
            ));
        } else {
            plan.notes.push(format!(
                "the run pinned {}={} in {}: finishing keeps the pin, which declares the image it finishes with",
                r.var, r.value, r.env_path
            ));
        }
    }
    let interrupted: Vec<String> = fixes
        .iter()
        .filter_map(|f| f.rollback_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    plan.parameters = serde_json::json!({
        "choice": fixes.iter().map(|f| f.choice).collect::<Vec<_>>(),
        "interrupted": interrupted,
        "fixes": plan.steps.iter().map(|s| s.description.clone()).collect::<Vec<_>>(),
        "retag": retag.as_ref().map(|r| serde_json::json!({
            "reference": format!("{}:{}", r.repo, r.tag), "displaced": r.displaced,
            "to": r.image_id, "completed": !restoring,
        })),
        "pin": pin.as_ref().map(|r| serde_json::json!({
            "file": r.env_path, "backup": r.backup, "variable": r.var, "to": r.value,
            "undone": restoring,
        })),
    });
    plan.promises = recover_promises(first, replicas, all, &fixes);
    plan.kind = PlanKind::Recover(RecoverPlan {
        fixes,
        health,
        interrupted,
        retag,
        pin_undo: pin.filter(|_| restoring).map(|record| PinUndo {
            record,
            files: files.cloned(),
        }),
    });
    Ok(Some(plan))
}

/// What a recovery promises: each replica it fixes runs what the choice leaves serving (the new
/// container's image after a finish, the old one's after a restore), healthy, and the service's
/// name resolves on its networks to the service's replicas only.
fn recover_promises(
    first: &Container,
    replicas: &[Container],
    all: &[Container],
    fixes: &[Fix],
) -> Vec<Promise> {
    let image_of = |id: &str| all.iter().find(|c| c.id == id).map(|c| c.image_id.clone());
    let mut out = Vec::new();
    for f in fixes {
        let serving = match f.choice {
            _ if f.settled.is_some() => f.settled.clone(),
            RecoverChoice::Finish => f.new.as_ref().map(|n| n.0.clone()),
            RecoverChoice::Restore => f
                .old
                .as_ref()
                .map(|o| o.0.clone())
                .or(f.live_old.clone())
                .or(f.stopped_in_place.clone()),
        };
        // A finish that fails restores instead: then the old image serves, which the run reports.
        let Some(image) = serving.as_deref().and_then(image_of) else {
            continue;
        };
        out.push(Promise::new(
            format!("{} runs {}, healthy", f.base, short(&image)),
            Expect::ReplicasRun {
                project: None,
                service: None,
                names: vec![f.base.clone()],
                image,
            },
        ));
    }
    let Some(service) = first.service.clone() else {
        return out;
    };
    let mut names: Vec<String> = fixes.iter().map(|f| f.base.clone()).collect();
    for r in replicas.iter().filter(|r| r.state == State::Running) {
        let plain = set_aside_base(&r.name).is_none() && !r.name.contains(NEW_MARK);
        if plain && !names.contains(&r.name) {
            names.push(r.name.clone());
        }
    }
    names.sort();
    let networks: std::collections::BTreeSet<&str> = first
        .networks
        .iter()
        .map(|n| n.network.as_str())
        .filter(|n| *n != "bridge" && *n != "host" && *n != "none")
        .collect();
    for network in networks {
        out.push(Promise::new(
            format!(
                "`{service}` resolves on {network} to {} only",
                names.join(", ")
            ),
            Expect::ResolvesTo {
                network: network.to_string(),
                name: service.clone(),
                containers: names.clone(),
            },
        ));
    }
    out
}

fn describe_found(f: &Fix) -> String {
    let mut parts = Vec::new();
    if let Some((id, name)) = &f.old {
        parts.push(format!("old {name} ({})", short(id)));
    }
    if let Some(id) = &f.live_old {
        parts.push(format!("old {} ({}) still running", f.base, short(id)));
    }
    if let Some((id, name)) = &f.new {
        parts.push(format!("new {name} ({})", short(id)));
    }
    if let Some(id) = &f.hidden {
        parts.push(format!("kept copy {}", short(id)));
    }
    if let Some(id) = &f.settled {
        parts.push(format!(
            "the run's new container {} ({}) under its name, the old one set aside or removed (run journal)",
            f.base,
            short(id)
        ));
    }
    if let Some((id, kept)) = &f.unnamed_copy {
        parts.push(format!(
            "the old one's kept copy ({}) not yet named {kept}",
            short(id)
        ));
    }
    if let Some(id) = &f.stopped_in_place {
        parts.push(format!(
            "{} ({}) that the run was stopping{}",
            f.base,
            short(id),
            // Without a new container only the journal knew of the cut.
            if f.new.is_none() {
                " (run journal)"
            } else {
                ""
            }
        ));
    }
    parts.join(", ")
}

fn step_for(f: &Fix) -> Step {
    let base = &f.base;
    if let Some(id) = &f.settled {
        let mut calls = vec![
            format!("POST /containers/{}/start (if stopped)", short(id)),
            format!("GET /containers/{}/json", short(id)),
        ];
        let mut also = String::new();
        if let Some((copy, kept)) = &f.unnamed_copy {
            also = format!("; the old one's kept copy takes its name {kept}");
            calls.push(format!(
                "POST /containers/{}/rename?name={kept}",
                short(copy)
            ));
        }
        return Step::new(
            format!(
                "verify {base}: the run got past its switch and was cut off before it ended; its new container {} serves under {base} and is verified healthy (nothing to restore: a rollback goes back){also}",
                short(id)
            ),
            calls,
        );
    }
    match f.choice {
        RecoverChoice::Finish => {
            let new = f
                .new
                .as_ref()
                .map(|n| short(&n.0).to_string())
                .unwrap_or_default();
            Step::new(
                format!(
                    "finish {base}: the new container {new} under {base}, started, verified healthy for a full window (else the old one is restored); the old one stopped and kept out of compose's sight"
                ),
                vec![
                    format!("POST /containers/{new}/rename?name={base}"),
                    format!("POST /containers/{new}/start"),
                    format!("GET /containers/{new}/json"),
                    "POST /containers/create (the kept copy)".into(),
                    "DELETE /containers/{old}".into(),
                ],
            )
        }
        RecoverChoice::Restore => {
            let mut calls = Vec::new();
            if let Some((id, _)) = &f.new {
                calls.push(format!("DELETE /containers/{}?force=1", short(id)));
            }
            if let Some((id, _)) = &f.old {
                calls.push(format!("POST /containers/{}/rename?name={base}", short(id)));
                calls.push(format!("POST /containers/{}/start", short(id)));
            }
            if let Some(id) = &f.hidden {
                calls.push(format!("DELETE /containers/{}", short(id)));
            }
            if let Some(id) = &f.stopped_in_place {
                return Step::new(
                    format!(
                        "restore {base}: the run was cut off before its first stop was over; let a stop it sent finish, start {} again and verify it healthy",
                        short(id)
                    ),
                    vec![
                        format!(
                            "GET /containers/{}/json (until a pending stop is over)",
                            short(id)
                        ),
                        format!("POST /containers/{}/start", short(id)),
                    ],
                );
            }
            Step::new(
                match (&f.old, &f.new) {
                    (Some((id, _)), _) => format!(
                        "restore {base}: {}the old container {} back under {base}, started and verified healthy",
                        if f.new.is_some() {
                            "remove the new container, "
                        } else {
                            ""
                        },
                        short(id)
                    ),
                    (None, Some((_, name))) => format!(
                        "restore {base}: remove the unverified new container {name}; the old one still serves"
                    ),
                    (None, None) => format!("restore {base}"),
                },
                calls,
            )
        }
    }
}

pub(crate) async fn run_recover(
    p: &RecoverPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let mut said = Vec::new();
    let mut failed = false;
    let mut all_finished = true;
    for (i, f) in p.fixes.iter().enumerate() {
        let t = run.start(i).await;
        let res = match f.choice {
            _ if f.settled.is_some() => verify_settled(f, engine, run, &p.health, i).await,
            RecoverChoice::Finish => match finish(f, engine, run, &p.health, i).await {
                Ok(m) => Ok(m),
                Err(e) => {
                    run.out(
                        i,
                        format!("finish failed ({e}); restoring the old container"),
                    )
                    .await;
                    restore(f, engine, run, &p.health, i)
                        .await
                        .map(|m| format!("finish failed ({e}); restored instead: {m}"))
                        .map_err(|r| format!("finish failed ({e}) and the restore failed: {r}"))
                }
            },
            RecoverChoice::Restore => restore(f, engine, run, &p.health, i).await,
        };
        let finished = f.choice == RecoverChoice::Finish
            && res.as_ref().is_ok_and(|m| !m.starts_with("finish failed"));
        all_finished &= finished;
        if let Ok(m) = &res {
            said.push(m.clone());
        }
        if !run.finish(i, t, res).await {
            failed = true;
        }
    }
    // After the containers: the tag and the file declare what serves again.
    let mut next = p.fixes.len();
    if let Some(r) = &p.retag {
        let t = run.start(next).await;
        let res = settle_retag(engine, r, all_finished && !failed).await;
        if let Ok(m) = &res {
            said.push(m.clone());
        }
        if !run.finish(next, t, res).await {
            failed = true;
        }
        next += 1;
    }
    if let Some(u) = &p.pin_undo {
        let i = next;
        let t = run.start(i).await;
        let res = undo_pin(u).await.map_err(|e| e.message);
        if let Ok(m) = &res {
            said.push(m.clone());
        }
        if !run.finish(i, t, res).await {
            failed = true;
        }
    }
    let now = now_serving(engine, &p.fixes).await;
    if !failed {
        for id in &p.interrupted {
            super::journal::close(engine, id).await;
        }
    }
    if failed {
        Err(format!("recovery did not finish; now: {now}"))
    } else {
        Ok(format!("recovered: {}; now: {now}", said.join("; ")))
    }
}

async fn now_serving(engine: &Engine, fixes: &[Fix]) -> String {
    let mut parts = Vec::new();
    for f in fixes {
        parts.push(match engine.inspect(&f.base).await {
            Ok(Some(c)) if c.state == State::Running => format!(
                "{} runs {} ({})",
                f.base,
                c.image,
                if c.has_healthcheck {
                    c.health.as_str()
                } else {
                    "no health check"
                }
            ),
            Ok(Some(c)) => format!("{} is {} — nothing serves", f.base, c.state.as_str()),
            Ok(None) => format!("no container named {} — nothing serves", f.base),
            Err(e) => format!("{}: unknown ({e})", f.base),
        });
    }
    parts.join("; ")
}

async fn rename(engine: &Engine, id: &str, name: &str) -> Result<(), String> {
    engine
        .docker
        .rename_container(
            id,
            RenameContainerOptions {
                name: name.to_string(),
            },
        )
        .await
        .map_err(|e| eng(engine, e))
}

async fn start(engine: &Engine, id: &str) -> Result<(), String> {
    match engine
        .docker
        .start_container(id, None::<StartContainerOptions>)
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(eng(engine, e)),
    }
}

/// The run's new container already serves under the name: started if it is not, verified.
async fn verify_settled(
    f: &Fix,
    engine: &Engine,
    run: &Runner,
    health: &HealthSettings,
    i: usize,
) -> Result<String, String> {
    let id = f.settled.as_deref().unwrap_or_default();
    start(engine, id).await?;
    let verified = health::wait_healthy(engine, id, health, run, i).await?;
    publish_like(engine, id, id).await?;
    let mut msg = format!("{} runs the run's new container: {verified}", f.base);
    if let Some((copy, kept)) = &f.unnamed_copy {
        rename(engine, copy, kept).await?;
        msg.push_str(&format!("; the old one is kept as {kept}"));
    }
    Ok(msg)
}

/// Gives the verified container `id` the aliases a replica like `model` answers to (its own and
/// its compose service's name): a run cut off during its verify left it without them.
async fn publish_like(engine: &Engine, id: &str, model: &str) -> Result<(), String> {
    let mut aliases = crate::engine::networks::Aliases::new();
    // An old one cut off its networks mid-switch knows none: the new one's own then.
    for from in [model, id] {
        let i = engine
            .docker
            .inspect_container(
                from,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| eng(engine, e))?;
        let service = Container::from_inspect(&i).service;
        aliases = crate::engine::networks::replica_aliases(&i, service.as_deref());
        if !aliases.is_empty() {
            break;
        }
    }
    crate::engine::networks::publish(engine, id, &aliases)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn finish(
    f: &Fix,
    engine: &Engine,
    run: &Runner,
    health: &HealthSettings,
    i: usize,
) -> Result<String, String> {
    let Some((new_id, new_name)) = &f.new else {
        return Err("no new container to finish with".into());
    };
    // A live old one still holds the name (and maybe the port): stop it and move it aside first.
    let old_id = match (&f.old, f.live_old.as_ref().or(f.stopped_in_place.as_ref())) {
        (Some((id, _)), _) => Some(id.clone()),
        (None, Some(live)) => {
            stop_and_wait(engine, live, &f.base, run, i).await?;
            let kept = format!(
                "{}{KEPT_MARK}{}",
                f.base,
                chrono::Utc::now().format("%Y%m%d%H%M%S")
            );
            rename(engine, live, &kept).await?;
            run.out(i, format!("stopped {} and renamed it to {kept}", f.base))
                .await;
            Some(live.clone())
        }
        (None, None) => None,
    };
    if new_name != &f.base {
        rename(engine, new_id, &f.base).await?;
        run.out(i, format!("renamed {new_name} to {}", f.base))
            .await;
    }
    start(engine, new_id).await?;
    let verified = health::wait_healthy(engine, new_id, health, run, i).await?;
    publish_like(engine, new_id, old_id.as_deref().unwrap_or(new_id)).await?;
    let mut msg = format!("{} runs the new container: {verified}", f.base);
    if let Some(old_id) = old_id {
        // A run with --remove-old cut off as it removed the old one: the engine finishes that.
        if being_removed(engine, &old_id).await {
            msg.push_str("; the old one is removed, as the run asked");
            return Ok(msg);
        }
        // Seen exited before it is copied: a stop the lost run sent may still be under way.
        wait_exited(engine, &old_id, &f.base, run, i).await?;
        adopt_networks(engine, &old_id, new_id, run, i).await;
        let current = engine
            .inspect(&old_id)
            .await
            .map_err(|e| e.to_string())?
            .map(|c| c.name)
            .unwrap_or_default();
        let hidden = kept_name_of(&current);
        let copy = keep_copy(
            engine,
            &old_id,
            &hidden,
            &f.base,
            f.rollback_id.as_deref().unwrap_or("recovered"),
        )
        .await?;
        msg.push_str(&format!(
            "; the old one is kept as {hidden} ({})",
            short(&copy)
        ));
    }
    Ok(msg)
}

async fn restore(
    f: &Fix,
    engine: &Engine,
    run: &Runner,
    health: &HealthSettings,
    i: usize,
) -> Result<String, String> {
    if let Some((new_id, new_name)) = &f.new {
        let old = f
            .old
            .as_ref()
            .map(|(id, _)| id)
            .or(f.live_old.as_ref())
            .or(f.stopped_in_place.as_ref());
        if let Some(old) = old {
            adopt_networks(engine, old, new_id, run, i).await;
        }
        remove_container(engine, new_id, true).await?;
        run.out(i, format!("removed the new container {new_name}"))
            .await;
    }
    if let Some(id) = &f.stopped_in_place {
        settle(engine, id, run, i).await;
        start(engine, id).await?;
        run.out(i, format!("started {} again", f.base)).await;
        let verified = health::wait_healthy(engine, id, health, run, i).await?;
        return Ok(format!("{} restored: {verified}", f.base));
    }
    let (old_id, verb) = match (&f.old, &f.live_old) {
        (Some((id, name)), _) => {
            if let Some(h) = &f.hidden {
                remove_container(engine, h, false).await?;
            }
            rename(engine, id, &f.base).await?;
            run.out(i, format!("renamed {name} back to {}", f.base))
                .await;
            (id.clone(), "restored")
        }
        (None, Some(live)) => (live.clone(), "still serves"),
        (None, None) => return Err(format!("no old container of {} to restore", f.base)),
    };
    start(engine, &old_id).await?;
    let verified = health::wait_healthy(engine, &old_id, health, run, i).await?;
    Ok(format!("{} {verb}: {verified}", f.base))
}

/// A stop the cut-off run sent may still be under way on the engine: wait until the container has
/// exited or its stop timeout (plus a margin) has passed, never asking for a stop itself.
async fn settle(engine: &Engine, id: &str, run: &Runner, i: usize) {
    let grace = engine
        .docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .ok()
        .and_then(|c| c.config.and_then(|c| c.stop_timeout))
        .unwrap_or(10)
        .max(0) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(grace + 10);
    let mut said = false;
    while std::time::Instant::now() < deadline {
        match engine.inspect(id).await {
            Ok(Some(c)) if c.state.is_up() => {}
            _ => return,
        }
        if !said {
            run.out(
                i,
                format!(
                    "waiting up to {} s: a stop the cut-off run sent may still be under way",
                    grace + 10
                ),
            )
            .await;
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
