//! The old containers of a rollback set aside: stopped (seen exited by the engine, through a stop
//! whose answer the link lost) and renamed to their kept name, then kept as a copy out of
//! compose's sight. Shared by the run and the recovery of a run that was cut off.

use std::time::{Duration, Instant};

use bollard::query_parameters::{
    InspectContainerOptions, RemoveContainerOptions, RenameContainerOptions, StopContainerOptions,
};

use super::super::{LABEL_ROLLBACK_ID, Runner, eng, short};
use super::Replica;
use super::kept::is_kept_copy;
use crate::engine::clone::{create_body, create_copy, hide_from_compose};
use crate::engine::model::{COPY_SUFFIX, LABEL_KEPT_IMAGE, State};
use crate::engine::{Engine, networks};

/// Stops the old replica (confirmed by the engine) and renames it to its kept name, recording each
/// stage in `prog` so a restore knows exactly what to undo.
pub(super) async fn stop_and_set_aside(
    engine: &Engine,
    r: &Replica,
    prog: &mut Progress,
    run: &Runner,
    step: usize,
) -> Result<(), String> {
    prog.stop_sent = true;
    stop_and_wait(engine, &r.id, &r.name, run, step).await?;
    prog.stopped_old = true;
    engine
        .docker
        .rename_container(
            &r.id,
            RenameContainerOptions {
                name: r.kept_name.clone(),
            },
        )
        .await
        .map_err(|e| eng(engine, e))?;
    prog.renamed_old = true;
    Ok(())
}

/// Stops `id` and returns once the engine shows it exited. A stop whose answer the link lost is
/// still under way on the engine (the container may be inside its grace period), so it is not over
/// until a later look shows the container exited.
pub(super) async fn stop_and_wait(
    engine: &Engine,
    id: &str,
    name: &str,
    run: &Runner,
    step: usize,
) -> Result<(), String> {
    match engine
        .docker
        .stop_container(
            id,
            Some(StopContainerOptions {
                t: None,
                signal: None,
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Err(format!("{name} is gone")),
        Err(e) => {
            run.out(
                step,
                format!(
                    "the stop of {name} got no answer ({}); in progress until the engine shows it exited",
                    eng(engine, e)
                ),
            )
            .await;
        }
    }
    wait_exited(engine, id, name, run, step).await
}

/// Polls until `id` is not running, through reconnects, bounded by its stop timeout plus a margin;
/// after the timeout a stop is asked for again (the first may never have reached the engine).
pub(super) async fn wait_exited(
    engine: &Engine,
    id: &str,
    name: &str,
    run: &Runner,
    step: usize,
) -> Result<(), String> {
    let grace = engine
        .docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|i| i.config.and_then(|c| c.stop_timeout))
        .unwrap_or(10)
        .max(0) as u64;
    let deadline = Instant::now() + Duration::from_secs(grace + 60);
    let mut asked_again = false;
    let started = Instant::now();
    loop {
        match engine.inspect(id).await {
            Ok(None) => return Err(format!("{name} is gone")),
            Ok(Some(c)) if !c.state.is_up() => return Ok(()),
            Ok(Some(_)) => {
                if !asked_again && started.elapsed() > Duration::from_secs(grace + 5) {
                    asked_again = true;
                    let _ = engine
                        .docker
                        .stop_container(id, None::<StopContainerOptions>)
                        .await;
                }
            }
            Err(e) => run.out(step, format!("waiting for the engine: {e}")).await,
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{name} was not seen exited within {} s of the stop: its state is unknown",
                grace + 60
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Replaces the stopped old container (set aside as `kept_name`, compose's labels still on) by a
/// copy whose compose labels are set aside, under the same name. Returns the copy's id. The copy
/// is made first under a temporary name, so a cut here leaves the original or the copy, never
/// neither; it takes the kept name once the original is removed.
pub(super) async fn keep_hidden(
    engine: &Engine,
    r: &Replica,
    rollback_id: &str,
) -> Result<String, String> {
    keep_copy(engine, &r.kept_name, &r.kept_name, &r.name, rollback_id).await
}

/// [`keep_hidden`] by names: `old` (id or name) is copied, removed, and the copy named `kept_name`.
pub(super) async fn keep_copy(
    engine: &Engine,
    old: &str,
    kept_name: &str,
    base: &str,
    rollback_id: &str,
) -> Result<String, String> {
    let d = &engine.docker;
    let inspect = d
        .inspect_container(old, None::<InspectContainerOptions>)
        .await
        .map_err(|e| eng(engine, e))?;
    let old_id = inspect.id.clone().unwrap_or_default();
    if inspect.state.as_ref().and_then(|s| s.running) == Some(true) {
        return Err(format!("{old} is running; it is kept only once stopped"));
    }
    let image_id = inspect.image.clone().unwrap_or_default();
    let reference = inspect
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    // By id: exact even when a retag moves the reference it was started from.
    let mut body = create_body(&inspect, &image_id);
    hide_from_compose(&mut body, base);
    let labels = body.labels.get_or_insert_with(Default::default);
    labels.insert(LABEL_KEPT_IMAGE.into(), reference);
    labels.insert(LABEL_ROLLBACK_ID.into(), rollback_id.into());
    let temporary = format!("{kept_name}{COPY_SUFFIX}");
    // A copy made by a run cut off right after it: under the temporary name, or (an older berth)
    // already under the kept name.
    let mut made = None;
    for name in [temporary.as_str(), kept_name] {
        if let Ok(Some(c)) = engine.inspect(name).await
            && c.id != old_id
            && is_kept_copy(&c)
        {
            made = Some((c.id, c.name));
            break;
        }
    }
    let (id, name) = match made {
        Some(made) => made,
        None => (
            create_copy(engine, &temporary, body)
                .await
                .map_err(|e| e.to_string())?,
            temporary,
        ),
    };
    remove_container(engine, &old_id, false).await?;
    if name != kept_name {
        d.rename_container(
            &id,
            RenameContainerOptions {
                name: kept_name.to_string(),
            },
        )
        .await
        .map_err(|e| eng(engine, e))?;
    }
    Ok(id)
}

/// Removes a container; one already gone counts as removed (an earlier pass whose answer was lost).
pub(super) async fn remove_container(engine: &Engine, id: &str, force: bool) -> Result<(), String> {
    match engine
        .docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force,
                v: false,
                link: false,
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        // A cut-off run's removal is still under way on the engine: it finishes what we ask.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        }) if message.contains("already in progress") => {
            if being_removed(engine, id).await {
                Ok(())
            } else {
                Err(format!("{}: removal in progress for too long", short(id)))
            }
        }
        Err(e) => Err(eng(engine, e)),
    }
}

/// Whether the container is gone or on its way out, waiting (up to 30 s) for a removal under way
/// to end: a run cut off right after it asked for one leaves the engine still carrying it out.
pub(super) async fn being_removed(engine: &Engine, id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match engine.inspect(id).await {
            Ok(None) => return true,
            Ok(Some(c)) if c.state == State::Removing && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => return false,
        }
    }
}

/// What happened to one replica so far, so a failure can be undone exactly.
#[derive(Default)]
pub(super) struct Progress {
    /// A stop was asked for; until the engine shows the container exited its outcome is open.
    pub(super) stop_sent: bool,
    pub(super) stopped_old: bool,
    pub(super) renamed_old: bool,
    pub(super) new_id: Option<String>,
    pub(super) new_renamed: bool,
    /// When a fixed-port replica stopped serving (its port freed for the new one).
    pub(super) gap_start: Option<Instant>,
}

/// Gives `old` the networks of its copy `new` when a cut-off switch left it on none; a failure is
/// said and the restore goes on (the old replica serving on no network is still named after).
pub(super) async fn adopt_networks(
    engine: &Engine,
    old: &str,
    new: &str,
    run: &Runner,
    step: usize,
) {
    match networks::adopt(engine, old, new).await {
        Ok(joined) if !joined.is_empty() => {
            run.out(
                step,
                format!(
                    "{} had left its networks; connected it back to {}",
                    short(old),
                    joined.join(", ")
                ),
            )
            .await;
        }
        Ok(_) => {}
        Err(e) => {
            run.out(
                step,
                format!("could not check the networks of {}: {e}", short(old)),
            )
            .await;
        }
    }
}
