//! Running a rollback plan: the pull, the `.env` pin, then per replica stop/rename or create
//! beside, create, start, verify (the automatic restore on failure is `restore.rs`, setting the
//! old containers aside `set_aside.rs`); then retag, keep the old containers out of compose's
//! sight (or remove them) and show the first log lines. Every message says what serves now.

use std::time::{Duration, Instant};

use bollard::models::ImageInspect;
use bollard::query_parameters::{
    InspectContainerOptions, LogsOptions, RenameContainerOptions, StartContainerOptions,
    TagImageOptions,
};
use futures::StreamExt;

use super::super::client_probe::{ClientProbe, ProbeTarget, own_figure};
use super::super::{
    LABEL_ROLLBACK_FROM, LABEL_ROLLBACK_ID, Runner, StepStatus, eng, health, short,
};
use super::restore::restore;
use super::set_aside::{Progress, keep_hidden, remove_container, stop_and_set_aside};
use super::undo::{PinUndo, undo_pin};
use super::{Replica, RollbackPlan};
use crate::engine::clone::{create_body_from, create_copy, drop_compose_config_labels};
use crate::engine::model::State;
use crate::engine::{Engine, networks};

const FIRST_LOG_LINES: usize = 10;

pub(crate) async fn run(
    p: &RollbackPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    // The pull comes before any change: a failed or cancelled pull leaves the service as it was.
    let pulled;
    let p = match &p.pull {
        Some(pull) => {
            let t = run.start(pull.step).await;
            match super::registry::pull(pull, engine, run).await {
                Ok((id, message)) => {
                    run.finish(pull.step, t, Ok(message)).await;
                    if p.replicas.iter().all(|r| r.image_id == id) {
                        return Err(format!(
                            "{} is the image the service runs ({}): nothing was changed",
                            pull.reference,
                            short(&id)
                        ));
                    }
                    pulled = RollbackPlan {
                        image_id: id,
                        ..p.clone()
                    };
                    &pulled
                }
                Err(e) => {
                    run.finish(pull.step, t, Err(e.clone())).await;
                    return Err(format!("{e}; nothing was changed"));
                }
            }
        }
        None => p,
    };
    // Before the first change: a run killed from here on is found by the next one.
    let mut entry = super::journal::Entry {
        rollback_id: p.rollback_id.clone(),
        server: engine.target.name.clone(),
        replicas: p
            .replicas
            .iter()
            .map(|r| (r.name.clone(), r.id.clone()))
            .collect(),
        pin: p.pin.as_ref().map(|pin| pin.record()),
        retag: p.retag.as_ref().map(|rt| super::journal::RetagRecord {
            repo: rt.repo.clone(),
            tag: rt.tag.clone(),
            keep_tag: rt.keep_tag.clone(),
            displaced: rt.displaced.clone(),
            image_id: p.image_id.clone(),
        }),
        on_server: false,
    };
    let image = p
        .replicas
        .first()
        .map(|r| r.image_id.as_str())
        .unwrap_or_default();
    if let Err(e) = super::journal::open(engine, &mut entry, image).await {
        // Refused before the first change: the next run finds nothing of this one.
        if engine.target.is_production() || !p.without_journal {
            super::journal::close(engine, &p.rollback_id).await;
            return Err(format!(
                "the run journal cannot be written ({e}): {}; nothing was changed",
                if engine.target.is_production() {
                    "berth runs nothing on production without it"
                } else {
                    "a run cut off without it cannot be found or recovered; --force runs without it"
                }
            ));
        }
        run.out(0, format!("warning: run journal: {e}")).await;
    }
    if let Some(pin) = &p.pin {
        let mut why = String::new();
        let ok = run
            .step(pin.step, async {
                let written = pin
                    .files
                    .replace(
                        &pin.plan.env_path,
                        Some(&pin.backup),
                        pin.original.as_bytes(),
                        pin.pinned.as_bytes(),
                    )
                    .await;
                match written {
                    Ok(()) => Ok(format!(
                        "{}={} in {} (copy of the old file: {})",
                        pin.plan.var, pin.plan.new_value, pin.plan.env_path, pin.backup
                    )),
                    Err(crate::compose::ReplaceError::Changed) => {
                        why = changed_since_plan(pin).await;
                        Err(why.clone())
                    }
                    Err(crate::compose::ReplaceError::Failed(e)) => {
                        why = e.clone();
                        Err(e)
                    }
                }
            })
            .await;
        if !ok {
            let (found, settled) = after_failed_pin(pin).await;
            if settled {
                super::journal::close(engine, &p.rollback_id).await;
            }
            let (now, _) = serving_now(engine, &p.replicas).await;
            return Err(format!(
                "the pin of {} failed and no container was changed: {why}; {found}; now: {now}",
                pin.plan.env_path
            ));
        }
    }
    let res = run_replicas(p, engine, run).await;
    // The automatic restore put the old containers back: the files go back to what they said.
    if let Some(pin) = &p.pin
        && res.is_err()
        && p.replicas.iter().any(|r| {
            matches!(
                run.statuses.get(r.steps.restore).copied().flatten(),
                Some(StepStatus::Ok | StepStatus::Failed)
            )
        })
    {
        let undo = PinUndo {
            record: pin.record(),
            files: Some(pin.files.clone()),
        };
        match undo_pin(&undo).await {
            Ok(said) => run.mark(pin.step, StepStatus::Undone, said).await,
            Err(e) => run.out(pin.step, e.message).await,
        }
    }
    // A failed retag leaves the run for `berth recover`, which needs the journal's retag record.
    if res.as_ref().err().map(String::as_str) != Some(RETAG_FAILED) {
        super::journal::close(engine, &p.rollback_id).await;
    }
    res
}

/// The run stops short of keeping the old containers: `berth recover --finish` completes the retag
/// and keeps them; `--restore` points the tag back and restores them.
const RETAG_FAILED: &str = "rolled back and verified, but the retag failed: `berth recover` on the service finishes the run (--finish) or restores the old container (--restore)";

/// The refusal of a pin whose `.env` changed between the plan and the write: what changed (secret
/// values masked), and that nothing was written.
async fn changed_since_plan(pin: &super::PinStep) -> String {
    let now = pin
        .files
        .read(&pin.plan.env_path, crate::compose::MAX_FILE_BYTES)
        .await;
    let difference = match now {
        Ok(Some(now)) => {
            crate::compose::dotenv::difference(&pin.original, &String::from_utf8_lossy(&now))
        }
        Ok(None) => "the file is gone".into(),
        Err(e) => format!("it cannot be read now: {e}"),
    };
    format!(
        "{} changed since the plan ({difference}): nothing was written; plan the rollback again to pin over the file as it is now",
        pin.plan.env_path
    )
}

/// A pin whose answer was lost (a dropped link) may have been written all the same: it is undone
/// as a recovery would, tried again while the link comes back (up to 30 s). The flag says it is
/// settled; if not, the run's journal stays so the next run offers the restore.
async fn after_failed_pin(pin: &super::PinStep) -> (String, bool) {
    let undo = PinUndo {
        record: pin.record(),
        files: Some(pin.files.clone()),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match undo_pin(&undo).await {
            Ok(m) => return (m, true),
            Err(e) if e.settled => return (e.message, true),
            Err(e) if Instant::now() >= deadline => {
                return (
                    format!(
                        "{}; `berth recover` writes it back if it holds the pin",
                        e.message
                    ),
                    false,
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

async fn run_replicas(
    p: &RollbackPlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let d = &engine.docker;
    let old_image = d
        .inspect_image(
            &p.replicas
                .first()
                .map(|r| r.image_id.clone())
                .unwrap_or_default(),
        )
        .await
        .ok();
    // Imitate a client from the start of the first change to the end of the last switch.
    let mut probe = match p.replicas.first() {
        Some(r) => d
            .inspect_container(&r.id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| ProbeTarget::for_container(p.health.url.as_deref(), &i))
            .map(|t| {
                let link = engine.ssh.as_ref().map(|s| s.status());
                ClientProbe::start(health::dialer_for(engine), t, link)
            }),
        None => None,
    };
    let mut progs: Vec<Progress> = p.replicas.iter().map(|_| Progress::default()).collect();
    let mut health_wait = Duration::ZERO;
    let mut max_gap: Option<Duration> = None;
    for r in &p.replicas {
        run.images_before.insert(r.image_id.clone());
    }
    // Replicas without a fixed host port are all started beside the old ones and verified at
    // once: the old ones serve meanwhile, and a deploy takes one verify window, not one per
    // replica. A fixed port frees its port first, so those go one by one.
    let together = p.replicas.iter().all(|r| !r.fixed_port);
    let res = if together {
        all_at_once(
            p,
            engine,
            run,
            &mut progs,
            old_image.as_ref(),
            &mut health_wait,
        )
        .await
    } else {
        one_by_one(
            p,
            engine,
            run,
            &mut progs,
            old_image.as_ref(),
            &mut health_wait,
            &mut max_gap,
        )
        .await
    };
    if let Err((k, e)) = res {
        let r = &p.replicas[k];
        let gap = progs[k].gap_start.map(|g| g.elapsed());
        // The failed replica first, then every other one that changed, so the service runs one
        // version again.
        let mut restored =
            vec![restore(r, &progs[k], engine, run, &p.health, r.steps.restore, &e).await];
        // Its verify step is the one that failed (or never ran): not undone, failed.
        let changed = [
            Some(r.steps.first),
            Some(r.steps.create),
            Some(r.steps.start),
            r.steps.switch,
        ];
        mark_undone(run, changed, "undone by the restore").await;
        for j in (0..p.replicas.len()).rev().filter(|j| *j != k) {
            let (rj, pj) = (&p.replicas[j], &progs[j]);
            if pj.new_id.is_none() && !pj.stop_sent {
                continue;
            }
            let changed = [
                Some(rj.steps.first),
                Some(rj.steps.create),
                Some(rj.steps.start),
                Some(rj.steps.verify),
                rj.steps.switch,
            ];
            mark_undone(run, changed, "undone: another replica failed").await;
            restored.push(
                restore(
                    rj,
                    pj,
                    engine,
                    run,
                    &p.health,
                    rj.steps.restore,
                    "another replica failed",
                )
                .await,
            );
        }
        let all_ok = restored.iter().all(|x| x.is_ok());
        let what = if p.forward { "deploy" } else { "rollback" };
        run.skip_rest(&format!("{what} failed")).await;
        // Say what serves now, as the engine shows it, not what the steps meant to do.
        run.work_done = Some(Instant::now());
        let (now, images) = serving_now(engine, &p.replicas).await;
        run.images_after.extend(images);
        let downtime = downtime(probe.take(), gap, run).await;
        return Err(if all_ok {
            format!("{what} failed ({e}); the old container was restored: {now}; {downtime}")
        } else {
            format!(
                "{what} failed ({e}) and the restore did not finish: {}; now: {now}; {downtime}. Run `berth recover` on the service",
                restored
                    .into_iter()
                    .filter_map(|x| x.err())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
    }
    for r in &p.replicas {
        run.mark(r.steps.restore, StepStatus::Skipped, "not needed")
            .await;
    }
    run.images_after.insert(p.image_id.clone());
    run.metrics.insert(
        "health_wait_ms".into(),
        (health_wait.as_millis() as u64).into(),
    );
    if let Some(g) = max_gap {
        run.metrics
            .insert("gap_ms".into(), (g.as_millis() as u64).into());
    }
    let downtime = downtime(probe.take(), max_gap, run).await;
    if let Some(rt) = &p.retag {
        let ok = run
            .step(rt.step, async {
                d.tag_image(
                    &rt.displaced,
                    Some(TagImageOptions {
                        repo: Some(rt.repo.clone()),
                        tag: Some(rt.keep_tag.clone()),
                    }),
                )
                .await
                .map_err(|e| eng(engine, e))?;
                d.tag_image(
                    &p.image_id,
                    Some(TagImageOptions {
                        repo: Some(rt.repo.clone()),
                        tag: Some(rt.tag.clone()),
                    }),
                )
                .await
                .map_err(|e| eng(engine, e))?;
                Ok(format!(
                    "{}:{} → {}; the previous image is {}:{}",
                    rt.repo,
                    rt.tag,
                    short(&p.image_id),
                    rt.repo,
                    rt.keep_tag
                ))
            })
            .await;
        if !ok {
            return Err(RETAG_FAILED.into());
        }
    }
    if let Some(i) = p.remove_old_step {
        run.step(i, async {
            for r in &p.replicas {
                remove_container(engine, &r.id, false).await?;
            }
            Ok(format!(
                "removed {}",
                p.replicas
                    .iter()
                    .map(|r| r.kept_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
        .await;
    }
    if let Some(i) = p.keep_step {
        let t = run.start(i).await;
        let mut kept = Vec::new();
        let mut failed = Vec::new();
        let results = futures::future::join_all(
            p.replicas
                .iter()
                .map(|r| keep_hidden(engine, r, &p.rollback_id)),
        )
        .await;
        for (r, res) in p.replicas.iter().zip(results) {
            match res {
                Ok(id) => kept.push(format!("{} ({})", r.kept_name, short(&id))),
                Err(e) => failed.push(format!("{}: {e}", r.kept_name)),
            }
        }
        let res = if failed.is_empty() {
            Ok(format!("kept {}", kept.join(", ")))
        } else {
            Err(format!(
                "could not hide {} from compose (it stays stopped under that name; `berth recover` finishes it)",
                failed.join("; ")
            ))
        };
        run.finish(i, t, res).await;
    }
    if let Some((i, trimmed)) = &p.trim {
        let t = run.start(*i).await;
        let mut failed = Vec::new();
        for (id, name) in trimmed {
            match remove_container(engine, id, false).await {
                Ok(()) => run.out(*i, format!("removed {name}")).await,
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        let res = if failed.is_empty() {
            Ok(format!("{} older kept container(s) removed", trimmed.len()))
        } else {
            Err(format!("could not remove {}", failed.join("; ")))
        };
        run.finish(*i, t, res).await;
    }
    let t = run.start(p.logs_step).await;
    let mut n = 0;
    if let Some(r) = p.replicas.first() {
        let mut logs = d.logs(
            &r.name,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: "all".into(),
                ..Default::default()
            }),
        );
        let deadline = tokio::time::sleep(Duration::from_secs(3));
        tokio::pin!(deadline);
        while n < FIRST_LOG_LINES {
            let next = tokio::select! { x = logs.next() => x, _ = &mut deadline => None };
            match next {
                Some(Ok(chunk)) => {
                    for l in String::from_utf8_lossy(&chunk.into_bytes())
                        .lines()
                        .take(FIRST_LOG_LINES - n)
                    {
                        run.out(p.logs_step, l.to_string()).await;
                        n += 1;
                    }
                }
                _ => break,
            }
        }
    }
    run.finish(p.logs_step, t, Ok(format!("{n} line(s)"))).await;
    run.work_done = Some(Instant::now());
    let (now, _) = serving_now(engine, &p.replicas).await;
    Ok(format!(
        "{} {} container(s) to {} ({}); health verified; now: {now}; {downtime}",
        if p.forward { "deployed" } else { "rolled back" },
        p.replicas.len(),
        p.image,
        short(&p.image_id)
    ))
}

/// Each replica in turn: prepared, verified, switched (a fixed host port is freed first).
/// A failure names the replica it happened on.
#[allow(clippy::too_many_arguments)]
async fn one_by_one(
    p: &RollbackPlan,
    engine: &Engine,
    run: &mut Runner,
    progs: &mut [Progress],
    old_image: Option<&ImageInspect>,
    health_wait: &mut Duration,
    max_gap: &mut Option<Duration>,
) -> Result<(), (usize, String)> {
    for (k, r) in p.replicas.iter().enumerate() {
        let prog = &mut progs[k];
        let new_id = prepare(p, r, engine, run, prog, old_image)
            .await
            .map_err(|e| (k, e))?;
        let t = run.start(r.steps.start).await;
        let res = start_new(r, engine, &new_id).await;
        if !run.finish(r.steps.start, t, res.clone()).await {
            return Err((k, res.unwrap_err()));
        }
        let t = run.start(r.steps.verify).await;
        let res = verify(p, r, engine, run, &new_id).await;
        *health_wait += t.elapsed();
        if !run.finish(r.steps.verify, t, res.clone()).await {
            return Err((k, res.unwrap_err()));
        }
        if let Some(i) = r.steps.switch {
            let t = run.start(i).await;
            let res = switch(p, r, engine, run, prog, &new_id).await;
            if !run.finish(i, t, res.clone()).await {
                return Err((k, res.unwrap_err()));
            }
        }
        if let Some(g) = prog.gap_start {
            let gap = g.elapsed();
            *max_gap = Some(max_gap.map_or(gap, |m| m.max(gap)));
        }
    }
    Ok(())
}

/// Every new replica created and started beside its old one, all verified at once (each given
/// the service's name as it passes), then the old ones switched out at once: each step of every
/// replica runs together, so a deploy takes one start, one verify window and one switch.
async fn all_at_once(
    p: &RollbackPlan,
    engine: &Engine,
    run: &mut Runner,
    progs: &mut [Progress],
    old_image: Option<&ImageInspect>,
    health_wait: &mut Duration,
) -> Result<(), (usize, String)> {
    let mut new_ids = Vec::new();
    for (k, r) in p.replicas.iter().enumerate() {
        let id = prepare(p, r, engine, run, &mut progs[k], old_image)
            .await
            .map_err(|e| (k, e))?;
        new_ids.push(id);
    }
    let steps: Vec<usize> = p.replicas.iter().map(|r| r.steps.start).collect();
    let started = start_all(run, &steps).await;
    let results = futures::future::join_all(
        p.replicas
            .iter()
            .zip(&new_ids)
            .map(|(r, id)| start_new(r, engine, id)),
    )
    .await;
    finish_all(run, &steps, &started, results).await?;
    let t = Instant::now();
    let steps: Vec<usize> = p.replicas.iter().map(|r| r.steps.verify).collect();
    let started = start_all(run, &steps).await;
    let results = {
        let run: &Runner = run;
        futures::future::join_all(
            p.replicas
                .iter()
                .zip(&new_ids)
                .map(|(r, id)| verify(p, r, engine, run, id)),
        )
        .await
    };
    *health_wait += t.elapsed();
    finish_all(run, &steps, &started, results).await?;
    let steps: Vec<usize> = p.replicas.iter().filter_map(|r| r.steps.switch).collect();
    let started = start_all(run, &steps).await;
    let results = {
        let run: &Runner = run;
        futures::future::join_all(
            p.replicas
                .iter()
                .zip(progs.iter_mut())
                .zip(&new_ids)
                .map(|((r, prog), id)| switch(p, r, engine, run, prog, id)),
        )
        .await
    };
    finish_all(run, &steps, &started, results).await
}

/// Starts `steps` (one per replica, in order): the times they started.
async fn start_all(run: &mut Runner, steps: &[usize]) -> Vec<Instant> {
    let mut started = Vec::new();
    for i in steps {
        started.push(run.start(*i).await);
    }
    started
}

/// Finishes each of `steps` with its result; the first failure names its replica.
async fn finish_all(
    run: &mut Runner,
    steps: &[usize],
    started: &[Instant],
    results: Vec<Result<String, String>>,
) -> Result<(), (usize, String)> {
    let mut failed = None;
    for (k, (i, res)) in steps.iter().zip(results).enumerate() {
        if !run.finish(*i, started[k], res.clone()).await && failed.is_none() {
            failed = Some((k, res.unwrap_err()));
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The new replica created (a fixed host port: after the old one is stopped and set aside),
/// without the service's aliases. Returns its id.
async fn prepare(
    p: &RollbackPlan,
    r: &Replica,
    engine: &Engine,
    run: &mut Runner,
    prog: &mut Progress,
    old_image: Option<&ImageInspect>,
) -> Result<String, String> {
    let d = &engine.docker;
    let inspect = d
        .inspect_container(&r.id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| eng(engine, e))?;
    let mut body = create_body_from(&inspect, &p.image, old_image);
    let mut labels = body.labels.take().unwrap_or_default();
    // compose's hash describes the old configuration: a copy on another image must not claim it.
    drop_compose_config_labels(&mut labels);
    labels.insert(LABEL_ROLLBACK_FROM.into(), r.id.clone());
    labels.insert(LABEL_ROLLBACK_ID.into(), p.rollback_id.clone());
    body.labels = Some(labels);
    // No client is handed its address before it is verified: the aliases come after.
    networks::withhold_aliases(&mut body);
    if r.fixed_port {
        let t = run.start(r.steps.first).await;
        prog.gap_start = Some(Instant::now());
        let res = async {
            stop_and_set_aside(engine, r, prog, run, r.steps.first).await?;
            Ok(format!(
                "{} stopped and set aside as {}",
                r.name, r.kept_name
            ))
        }
        .await;
        if !run.finish(r.steps.first, t, res.clone()).await {
            return Err(res.unwrap_err());
        }
    }
    if cancelled(run) {
        return Err("cancelled".into());
    }
    let t = run.start(r.steps.create).await;
    let res = async {
        let id = create_copy(engine, &r.new_name, body)
            .await
            .map_err(|e| e.to_string())?;
        prog.new_id = Some(id.clone());
        Ok(format!("created {} ({})", r.new_name, short(&id)))
    }
    .await;
    if !run.finish(r.steps.create, t, res.clone()).await {
        return Err(res.unwrap_err());
    }
    Ok(prog.new_id.clone().unwrap_or_default())
}

/// Starts the new replica; its step's result.
async fn start_new(r: &Replica, engine: &Engine, new_id: &str) -> Result<String, String> {
    engine
        .docker
        .start_container(new_id, None::<StartContainerOptions>)
        .await
        .map(|_| format!("{} started", r.new_name))
        .map_err(|e| eng(engine, e))
}

/// Health verified for the steady window, then the service's aliases given: only now does a
/// client looking the service up get its address, beside the old replica that still answers.
async fn verify(
    p: &RollbackPlan,
    r: &Replica,
    engine: &Engine,
    run: &Runner,
    new_id: &str,
) -> Result<String, String> {
    let m = health::wait_healthy(engine, new_id, &p.health, run, r.steps.verify).await?;
    let joined = networks::publish(engine, new_id, &r.aliases)
        .await
        .map_err(|e| format!("{} is healthy, but {e}", r.new_name))?;
    Ok(if joined.is_empty() {
        m
    } else {
        format!(
            "{m}; answers to its service's name on {}",
            joined.join(", ")
        )
    })
}

/// The old replica out of its networks' DNS, stopped, connected back (stopped) and set aside;
/// the new one renamed to the replica's name. The work of its switch step.
async fn switch(
    p: &RollbackPlan,
    r: &Replica,
    engine: &Engine,
    run: &Runner,
    prog: &mut Progress,
    new_id: &str,
) -> Result<String, String> {
    let Some(i) = r.steps.switch else {
        return Ok(String::new());
    };
    // Out of the networks' DNS before the stop: the engine keeps naming a stopped replica
    // until it releases its network, and clients looking the service up get its address.
    let left = networks::leave(engine, &r.id)
        .await
        .map_err(|e| format!("{}: {e}; nothing was stopped", r.name))?;
    if !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|(n, _)| n.as_str()).collect();
        run.out(
            i,
            format!(
                "{} left {} (their DNS answers only the new replica now)",
                r.name,
                names.join(", ")
            ),
        )
        .await;
    }
    let stopped = stop_and_set_aside(engine, r, prog, run, i).await;
    // Back on its networks, stopped: kept and restored with the configuration it had.
    let rejoined = networks::rejoin(engine, &r.id, left).await;
    stopped?;
    rejoined.map_err(|e| format!("{} stopped, but {e}", r.name))?;
    engine
        .docker
        .rename_container(
            new_id,
            RenameContainerOptions {
                name: r.name.clone(),
            },
        )
        .await
        .map_err(|e| eng(engine, e))?;
    prog.new_renamed = true;
    Ok(format!(
        "{} now runs {}; the old one is set aside as {} until the run ends",
        r.name,
        short(&p.image_id),
        r.kept_name
    ))
}

/// Stops the client probe and names the downtime figure; berth's own gap when nothing was probed.
async fn downtime(
    probe: Option<ClientProbe>,
    own_gap: Option<Duration>,
    run: &mut Runner,
) -> String {
    let Some(probe) = probe else {
        return own_figure(own_gap);
    };
    let (line, seen) = probe.stop().await;
    run.metrics.insert(
        "client_gap_ms".into(),
        (seen.longest_gap.as_millis() as u64).into(),
    );
    run.metrics
        .insert("client_probes_failed".into(), seen.failed.into());
    run.metrics
        .insert("client_probes".into(), seen.probes.into());
    if let Some(d) = seen.link_down {
        run.metrics
            .insert("link_down_ms".into(), (d.as_millis() as u64).into());
    }
    line
}

fn cancelled(run: &Runner) -> bool {
    run.cancelled()
}

/// How long reading what serves may take: the run's work is over, its result must not wait on a
/// dead link (the reads went on through every reconnect attempt, 40 s and more).
const NOW_WAIT: Duration = Duration::from_secs(10);

/// What serves now for each replica, as the engine shows it: `web-1 runs app:v1 (healthy)`.
/// Also returns the image ids that run. Bounded by [`NOW_WAIT`]: past it, what serves is unknown.
pub(super) async fn serving_now(engine: &Engine, replicas: &[Replica]) -> (String, Vec<String>) {
    match tokio::time::timeout(NOW_WAIT, read_serving(engine, replicas)).await {
        Ok(now) => now,
        Err(_) => (
            replicas
                .iter()
                .map(|r| {
                    format!(
                        "{}: unknown (the engine did not answer within {} s)",
                        r.name,
                        NOW_WAIT.as_secs()
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            Vec::new(),
        ),
    }
}

async fn read_serving(engine: &Engine, replicas: &[Replica]) -> (String, Vec<String>) {
    let mut parts = Vec::new();
    let mut images = Vec::new();
    for r in replicas {
        match engine.inspect(&r.name).await {
            Ok(Some(c)) if c.state == State::Running => {
                images.push(c.image_id.clone());
                parts.push(format!(
                    "{} runs {} ({})",
                    r.name,
                    c.image,
                    if c.has_healthcheck {
                        c.health.as_str()
                    } else {
                        "no health check"
                    }
                ));
            }
            Ok(Some(c)) => parts.push(format!(
                "{} is {} — nothing serves",
                r.name,
                c.state.as_str()
            )),
            Ok(None) => parts.push(format!("no container named {} — nothing serves", r.name)),
            Err(e) => parts.push(format!("{}: unknown ({e})", r.name)),
        }
    }
    (parts.join("; "), images)
}

/// The steps of `changed` (those that exist) that had completed, marked undone with `why`: what a
/// restore took back, shown as such rather than as done.
async fn mark_undone(
    run: &mut Runner,
    changed: impl IntoIterator<Item = Option<usize>>,
    why: &str,
) {
    for s in changed.into_iter().flatten() {
        if run.statuses.get(s).copied().flatten() == Some(StepStatus::Ok) {
            run.mark(s, StepStatus::Undone, why).await;
        }
    }
}
