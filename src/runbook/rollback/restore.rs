//! The automatic restore of one replica after a failed switch: the new container removed, the
//! old one given its name back, started and verified healthy, each pass driven by what the engine
//! shows so a pass cut off by a dropped link runs again, for a bounded time. Not cancellable: it
//! is the one path that leaves nothing serving when it gives up.

use std::time::{Duration, Instant};

use bollard::query_parameters::{
    RemoveContainerOptions, RenameContainerOptions, StartContainerOptions,
};
use tokio_util::sync::CancellationToken;

use super::super::{HealthSettings, LABEL_ROLLBACK_FROM, Runner, eng, health, short};
use super::Replica;
use super::set_aside::{Progress, adopt_networks, wait_exited};
use crate::engine::Engine;
use crate::engine::model::State;

/// How long a restore keeps trying through a dropped link before it says it did not finish: the
/// restore is the one path that leaves nothing serving when it gives up.
const RESTORE_PATIENCE: Duration = Duration::from_secs(60);
const RESTORE_RETRY_EVERY: Duration = Duration::from_secs(2);

/// Why one pass of the restore stopped.
enum RestoreFailure {
    /// The engine's answer was lost (link dropped, request timed out): try again when it is back.
    Link(String),
    /// The engine answered no, or the container is not healthy: final.
    Final(String),
}

/// An engine error that is an answer (the request arrived and was refused) is final; anything else
/// means the link lost the request or its answer.
fn failure(engine: &Engine, e: bollard::errors::Error) -> RestoreFailure {
    let answered = matches!(e, bollard::errors::Error::DockerResponseServerError { .. });
    let msg = eng(engine, e);
    if answered {
        RestoreFailure::Final(msg)
    } else {
        RestoreFailure::Link(msg)
    }
}

/// Puts the old container back exactly: the new one removed, the old one renamed back, started and healthy.
pub(super) async fn restore(
    r: &Replica,
    prog: &Progress,
    engine: &Engine,
    run: &mut Runner,
    health: &HealthSettings,
    step: usize,
    why: &str,
) -> Result<(), String> {
    // A cancel must not stop a restore halfway: that is the one path that leaves no serving replica.
    let user_cancel = std::mem::replace(&mut run.cancel, CancellationToken::new());
    let t = run.start(step).await;
    run.out(step, format!("restoring {} because: {why}", r.name))
        .await;
    let deadline = Instant::now() + RESTORE_PATIENCE;
    let res = loop {
        match restore_once(r, prog, engine, run, health, step).await {
            Ok(m) => break Ok(m),
            Err(RestoreFailure::Final(e)) => break Err(e),
            Err(RestoreFailure::Link(e)) if Instant::now() + RESTORE_RETRY_EVERY < deadline => {
                run.out(
                    step,
                    format!("no answer from the engine ({e}); the restore goes on when it answers"),
                )
                .await;
                tokio::time::sleep(RESTORE_RETRY_EVERY).await;
            }
            Err(RestoreFailure::Link(e)) => break Err(e),
        }
    };
    let ok = run.finish(step, t, res.clone()).await;
    run.cancel = user_cancel;
    if ok { Ok(()) } else { Err(res.unwrap_err()) }
}

/// One pass of the restore, driven by what the engine shows, so a pass cut off by the link can be
/// run again: remove the new container if it exists, give the old one its name back if it has
/// another, wait out a stop still under way, start it if it is not running, verify its health.
async fn restore_once(
    r: &Replica,
    prog: &Progress,
    engine: &Engine,
    run: &Runner,
    health: &HealthSettings,
    step: usize,
) -> Result<String, RestoreFailure> {
    let d = &engine.docker;
    let link = |e: crate::engine::EngineError| RestoreFailure::Link(e.to_string());
    // A create whose answer was lost (the link dropped mid-request) still made the container:
    // find it by the name and the label berth gave it.
    let orphan = match &prog.new_id {
        Some(_) => None,
        None => match engine.inspect(&r.new_name).await.map_err(link)? {
            Some(c) if c.id != r.id && c.labels.get(LABEL_ROLLBACK_FROM) == Some(&r.id) => {
                Some(c.id)
            }
            _ => None,
        },
    };
    if let Some(new_id) = prog.new_id.as_ref().or(orphan.as_ref()) {
        // Cut between leaving its networks and rejoining them: the old one takes them back from
        // its copy before the copy goes.
        adopt_networks(engine, &r.id, new_id, run, step).await;
        match d
            .remove_container(
                new_id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => {
                run.out(step, format!("removed the new container {}", short(new_id)))
                    .await;
            }
            // Removed by an earlier pass whose answer was lost.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(failure(engine, e)),
        }
    }
    let Some(old) = engine.inspect(&r.id).await.map_err(link)? else {
        return Err(RestoreFailure::Final(format!(
            "the old container {} is gone",
            short(&r.id)
        )));
    };
    if old.name != r.name {
        d.rename_container(
            &r.id,
            RenameContainerOptions {
                name: r.name.clone(),
            },
        )
        .await
        .map_err(|e| failure(engine, e))?;
        run.out(step, format!("renamed {} back to {}", old.name, r.name))
            .await;
    }
    // A stop whose answer was lost may still be running its grace period on the engine: the
    // container must be seen exited before it is started again, or the stop kills it after.
    if prog.stop_sent && !prog.stopped_old {
        run.out(
            step,
            format!("waiting for the engine to finish stopping {}", r.name),
        )
        .await;
        wait_exited(engine, &r.id, &r.name, run, step)
            .await
            .map_err(RestoreFailure::Final)?;
    }
    let running_now = matches!(
        engine.inspect(&r.id).await.map_err(link)?,
        Some(c) if c.state == State::Running
    );
    if !running_now {
        match d
            .start_container(&r.id, None::<StartContainerOptions>)
            .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => return Err(failure(engine, e)),
        }
        run.out(step, format!("started {} again", r.name)).await;
    }
    health::wait_healthy(engine, &r.id, health, run, step)
        .await
        .map(|m| format!("restored: {m}"))
        .map_err(RestoreFailure::Final)
}
