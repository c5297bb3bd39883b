//! `berth -s GROUP restart|rollback SERVICE`: the plain-text front end of `fleet::group` (the same
//! runbook action on every server of a group that runs the service, one server at a time, the
//! first failure stopping the run): the plan printed, confirmed once, each server's run printed.

use std::process::ExitCode;

use color_eyre::eyre::eyre;

use super::runbook::{CliRequest, ask, drive, print_plan};
use crate::context::Context;
use crate::fleet::group::{self, Outcome};
use crate::logs::sanitize::{json_safe, plain};
use crate::runbook::guard::{Decision, GuardError};

pub async fn run(
    ctx: &Context,
    group: &str,
    members: Vec<String>,
    cli: CliRequest,
) -> color_eyre::Result<ExitCode> {
    group::service_of(group, &cli.request).map_err(|e| eyre!(e))?;
    let mutating = cli.request.mutating() && !cli.dry_run;
    let (targets, same_host) = group::member_targets(
        &ctx.config,
        &ctx.env,
        ctx.global.read_only,
        group,
        &members,
        mutating,
    )
    .map_err(|e| eyre!(e))?;
    let timeout = ctx.config.fleet.connect_timeout().map_err(|e| eyre!(e))?;

    // Everything is planned before anything changes: a server that cannot be reached or planned
    // stops the run while the fleet is still as it was.
    let planned = group::plan(
        group,
        targets,
        same_host,
        &cli.request,
        &ctx.config,
        &ctx.ssh_options(),
        timeout,
    )
    .await
    .map_err(|e| eyre!(e))?;

    let names = planned.names();
    if cli.guard.json {
        let json = serde_json::json!({
            "event": "group-plan",
            "group": group,
            "servers": names,
            "skipped": planned.skipped,
            "same_host": planned.same_host.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "plans": planned.members.iter().map(|m| &m.plan).collect::<Vec<_>>(),
        });
        println!("{}", json_safe(&json.to_string()));
    } else {
        println!(
            "Group {group}: {} on {} server(s), one at a time: each is verified before the next, and the first failure stops the run.",
            plain(&planned.members[0].plan.title),
            planned.members.len()
        );
        for note in planned.notes() {
            println!("  note: {}", plain(&note));
        }
        let mut out = std::io::stdout().lock();
        for (i, m) in planned.members.iter().enumerate() {
            println!(
                "[{}/{}] {}",
                i + 1,
                planned.members.len(),
                plain(&m.target.name)
            );
            let _ = print_plan(&m.plan, &mut out);
        }
    }
    if cli.dry_run {
        if !cli.guard.json {
            println!("Dry run: nothing was changed.");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let production = planned.production_members();
    let decision = planned
        .guard()
        .decide_cli(
            mutating,
            group,
            ctx.interactive,
            cli.guard.yes,
            cli.guard.confirm.as_deref(),
        )
        .map_err(|e| match e {
            // The group is not production itself: the refusal names the member that is.
            GuardError::NeedsConfirmName { .. } => eyre!(
                "group {group}: {} production ({}): --yes alone is not enough; add --confirm {group} to name the group you change",
                if production.len() == 1 { "its member is" } else { "its members are" },
                plain(&production.join(", "))
            ),
            e => eyre!("group {group}: {e}"),
        })?;
    if matches!(decision, Decision::Ask(_)) && !production.is_empty() {
        println!(
            "{} production: {}",
            if production.len() == 1 {
                "This member is"
            } else {
                "These members are"
            },
            plain(&production.join(", "))
        );
    }
    if let Decision::Ask(c) = decision
        && !c.accepts(&ask(&c.prompt()))
    {
        eprintln!("berth: not confirmed; nothing was changed");
        return Ok(ExitCode::FAILURE);
    }

    let total = planned.members.len();
    let json = cli.guard.json;
    let outcome = group::run(planned.members, |i, m| {
        if !json {
            println!("── {} ({}/{total})", plain(&m.target.name), i + 1);
        }
        drive(m.plan, m.engine, json)
    })
    .await;
    report(group, &outcome, json);
    Ok(if outcome.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The run's last word: which servers are done, where it stopped and what was not touched.
fn report(group: &str, outcome: &Outcome, json: bool) {
    if json {
        let line = serde_json::json!({
            "event": "group-done",
            "group": group,
            "ok": outcome.ok(),
            "done": outcome.done,
            "failed": outcome.failed.as_ref().map(|(s, _)| s),
            "error": outcome.failed.as_ref().map(|(_, e)| e),
            "not_started": outcome.not_started,
        });
        println!("{}", json_safe(&line.to_string()));
    } else if outcome.ok() {
        println!("OK: {}", plain(&outcome.line(group)));
    } else {
        eprintln!("berth: {}", plain(&outcome.line(group)));
    }
}
