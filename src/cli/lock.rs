//! `berth lock status` and `berth lock release`: the runs' locks on a server's services (see
//! `runbook::lock`), who holds each and since when by the server's clock, and freeing one that a
//! berth which is gone left behind (asked first, typed on production, audited).

use std::process::ExitCode;

use color_eyre::eyre::eyre;

use super::runbook::ask;
use super::{LockReleaseArgs, LockStatusArgs};
use crate::context::Context;
use crate::logs::sanitize::{json_safe, plain};
use crate::runbook::guard::{Decision, Guard};
use crate::runbook::lock::{self, Held};
use crate::runbook::rollback::MAY_STILL_RUN_MINUTES;
use crate::runbook::{AuditEntry, AuditLog, RunResult};

pub async fn run_status(ctx: &Context, a: &LockStatusArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let all = engine.containers().await?;
    let now = lock::server_now(&engine).await;
    let held: Vec<Held> = lock::all_held(&all)
        .into_iter()
        .filter(|h| {
            a.name
                .as_deref()
                .is_none_or(|n| names(h, n, a.project.as_deref()))
        })
        .collect();
    if a.json {
        for h in &held {
            let line = serde_json::json!({
                "lock": h.name,
                "subject": h.holder.subject,
                "action": h.holder.action,
                "user": h.holder.user,
                "ssh_user": h.holder.ssh_user,
                "pid": h.holder.pid,
                "run_id": h.holder.run_id,
                "since": h.since,
                "age_s": age(h, now),
                "journal": h.has_journal(&all),
            });
            println!("{}", json_safe(&line.to_string()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if held.is_empty() {
        println!("No run holds a lock on {}.", plain(&engine.target.name));
        return Ok(ExitCode::SUCCESS);
    }
    for h in &held {
        println!("{}  {}", plain(&h.holder.subject), plain(&h.describe(now)));
        if let Some(hint) = stale_hint(h, now, h.has_journal(&all)) {
            println!("    {}", plain(&hint));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether lock `h` is the one `name` (`web`, `shop/web`, with `-p shop`) means.
fn names(h: &Held, name: &str, project: Option<&str>) -> bool {
    let subject = h.holder.subject.as_str();
    match project {
        Some(p) => subject == format!("{p}/{name}"),
        None => {
            subject == name
                || subject.rsplit_once('/').is_some_and(|(_, s)| s == name)
                || h.name == lock::lock_name(None, None, name)
        }
    }
}

fn age(h: &Held, now: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    Some((now? - h.since?).num_seconds().max(0))
}

/// What to do with a lock that looks left behind; `None` while its run may still go on.
fn stale_hint(
    h: &Held,
    now: Option<chrono::DateTime<chrono::Utc>>,
    journal: bool,
) -> Option<String> {
    if journal {
        return Some(format!(
            "its rollback left a journal: if that berth is gone, `berth recover {}` --finish or --restore ends the run and takes the lock over",
            cli_name(&h.holder.subject)
        ));
    }
    let old = age(h, now).is_some_and(|s| s >= MAY_STILL_RUN_MINUTES * 60);
    old.then(|| {
        format!(
            "held for a long time: if that berth is gone, `berth lock release {}` frees it",
            cli_name(&h.holder.subject)
        )
    })
}

fn cli_name(subject: &str) -> String {
    match subject.split_once('/') {
        Some((p, s)) => format!("{s} -p {p}"),
        None => subject.to_string(),
    }
}

pub async fn run_release(ctx: &Context, a: &LockReleaseArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    Guard::for_target(&target).allows(true)?;
    let engine = ctx.connect(&target).await?;
    let all = engine.containers().await?;
    let now = lock::server_now(&engine).await;
    let found: Vec<Held> = lock::all_held(&all)
        .into_iter()
        .filter(|h| names(h, &a.name, a.project.as_deref()))
        .collect();
    let held = match found.as_slice() {
        [] => {
            println!(
                "No run holds a lock on {} on {}.",
                plain(&a.name),
                plain(&engine.target.name)
            );
            return Ok(ExitCode::SUCCESS);
        }
        [h] => h.clone(),
        many => {
            let list: Vec<String> = many.iter().map(|h| h.holder.subject.clone()).collect();
            return Err(eyre!(
                "'{}' names several locked services ({}): add -p PROJECT",
                a.name,
                list.join(", ")
            ));
        }
    };
    let journal = held.has_journal(&all);
    let what = held.describe(now);
    if !a.force {
        if journal {
            return Err(eyre!(
                "{} is locked by a rollback that left its journal ({what}): `berth recover {}` --finish or --restore ends that run and takes the lock over; --force frees the lock only, leaving the run's containers as they are",
                held.holder.subject,
                cli_name(&held.holder.subject)
            ));
        }
        if age(&held, now).is_none_or(|s| s < MAY_STILL_RUN_MINUTES * 60) {
            return Err(eyre!(
                "{} is locked ({what}): taken less than {MAY_STILL_RUN_MINUTES} minutes ago by the server's clock, its run may still go on; if you know that berth is gone, add --force",
                held.holder.subject
            ));
        }
    }
    println!(
        "Release the lock on {}: {}.",
        plain(&held.holder.subject),
        plain(&what)
    );
    let subject = held
        .holder
        .subject
        .rsplit_once('/')
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| held.holder.subject.clone());
    let given = a.guard.confirm.as_deref().map(|c| {
        if c == held.holder.subject {
            subject.as_str()
        } else {
            c
        }
    });
    match Guard::for_target(&engine.target)
        .decide_cli(true, &subject, ctx.interactive, a.guard.yes, given)
        .map_err(|e| eyre!("{e}"))?
    {
        Decision::Proceed => {}
        Decision::Ask(c) => {
            if !c.accepts(&ask(&c.prompt())) {
                eprintln!("berth: not confirmed; the lock is still held");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    let result = lock::release_held(&engine, &held).await;
    let message = match &result {
        Ok(()) => format!(
            "released the lock of {}: {what}{}",
            held.holder.subject,
            if a.force { " (forced)" } else { "" }
        ),
        Err(e) => format!("the lock of {} was not released: {e}", held.holder.subject),
    };
    audit(
        &engine, &held, a.force, &result, &message, started, started_at,
    )
    .await;
    match result {
        Ok(()) => {
            println!("OK: {}", plain(&message));
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => Err(eyre!("{message}")),
    }
}

/// The release's line in the audit log, here and on the server's `remote_audit`.
async fn audit(
    engine: &crate::engine::Engine,
    held: &Held,
    forced: bool,
    result: &Result<(), String>,
    message: &str,
    started: std::time::Instant,
    started_at: chrono::DateTime<chrono::Utc>,
) {
    let mut plan = crate::runbook::lock::audit_plan(engine, held, forced);
    plan.subject = held.holder.subject.clone();
    let outcome = RunResult {
        ok: result.is_ok(),
        message: message.to_string(),
        duration: started.elapsed(),
        images_before: vec![],
        images_after: vec![],
        metrics: Default::default(),
    };
    let mut entry = AuditEntry::new(&plan, &engine.target, &outcome, started_at);
    entry.ssh_user = engine.ssh.as_ref().map(|s| s.resolved().user.clone());
    if let Err(e) = AuditLog::from_env().append(&entry) {
        eprintln!("berth: warning: {}", plain(&e.to_string()));
    }
    let options = crate::remote::SshAppend::run_options(engine);
    if let (Some(path), Some(remote)) = (engine.target.remote_audit.as_deref(), options.remote)
        && let Err(e) = remote.append(path, &entry.to_line()).await
    {
        eprintln!(
            "berth: warning: remote audit {}: {}",
            plain(path),
            plain(&e)
        );
    }
}
