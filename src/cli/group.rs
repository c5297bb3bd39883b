//! `berth -s GROUP restart|rollback SERVICE`: the same runbook action on every server of a group
//! that runs the service, one server at a time, each verified by its own plan (health after the
//! change) before the next; the first failure stops the run, which says which servers were done.
//! One plan and one confirmation for the whole run (the group's name typed when a member is
//! production); each server's run is audited on its own, as a single-server run is.

use std::process::ExitCode;

use color_eyre::eyre::eyre;

use super::runbook::{CliRequest, ask, drive, print_plan};
use crate::context::Context;
use crate::engine::Engine;
use crate::logs::sanitize::{json_safe, plain};
use crate::runbook::guard::{Decision, Guard};
use crate::runbook::{Plan, Request};
use crate::target::Target;

/// A member left out as (its name, the earlier member at the same host and port).
type SameHost = (String, String);

/// One member ready to run: connected and planned.
struct Planned {
    target: Target,
    engine: Engine,
    plan: Plan,
}

pub async fn run(
    ctx: &Context,
    group: &str,
    members: Vec<String>,
    cli: CliRequest,
) -> color_eyre::Result<ExitCode> {
    let service = match &cli.request {
        Request::Action { name, project, .. } => service_name(name, project.as_deref()),
        Request::Rollback(r) if r.recover.is_none() => service_name(&r.name, r.project.as_deref()),
        _ => {
            return Err(eyre!(
                "group {group}: only container actions (restart, start, stop …) and rollback run across a group; name one server with -s SERVER for this command"
            ));
        }
    };
    let mutating = cli.request.mutating() && !cli.dry_run;
    let (targets, same_host) = member_targets(ctx, group, &members, mutating)?;
    let timeout = ctx.config.fleet.connect_timeout().map_err(|e| eyre!(e))?;

    // Everything is planned before anything changes: a server that cannot be reached or planned
    // stops the run while the fleet is still as it was.
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    for target in targets {
        let name = target.name.clone();
        let engine = match tokio::time::timeout(timeout, ctx.connect(&target)).await {
            Ok(Ok(engine)) => engine,
            Ok(Err(e)) => {
                return Err(eyre!(
                    "group {group}: cannot reach {name} ({}): nothing was changed",
                    e
                ));
            }
            Err(_) => {
                return Err(eyre!(
                    "group {group}: {name} did not answer within {} s: nothing was changed",
                    timeout.as_secs_f64()
                ));
            }
        };
        let files = crate::remote::SshFiles::for_engine(&engine);
        match crate::runbook::plan_with(&engine, &ctx.config, &cli.request, files).await {
            Ok(plan) => planned.push(Planned {
                target,
                engine,
                plan,
            }),
            Err(_) if !runs_service(&engine, &cli.request).await => skipped.push(name),
            Err(e) => {
                return Err(eyre!(
                    "group {group}: cannot plan on {name}: {e}; nothing was changed"
                ));
            }
        }
    }
    if planned.is_empty() {
        return Err(eyre!(
            "group {group}: no server runs {service} (looked on {}); check the name with `berth -s SERVER ps`",
            members.join(", ")
        ));
    }

    let names: Vec<String> = planned.iter().map(|p| p.target.name.clone()).collect();
    if cli.guard.json {
        let json = serde_json::json!({
            "event": "group-plan",
            "group": group,
            "servers": names,
            "skipped": skipped,
            "same_host": same_host.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "plans": planned.iter().map(|p| &p.plan).collect::<Vec<_>>(),
        });
        println!("{}", json_safe(&json.to_string()));
    } else {
        println!(
            "Group {group}: {} on {} server(s), one at a time: each is verified before the next, and the first failure stops the run.",
            plain(&planned[0].plan.title),
            planned.len()
        );
        for (name, first) in &same_host {
            println!(
                "  note: {} is the same host as {}: skipped, so nothing runs twice on one engine",
                plain(name),
                plain(first)
            );
        }
        for name in &skipped {
            println!(
                "  note: {} does not run {}: skipped",
                plain(name),
                plain(&service)
            );
        }
        let mut out = std::io::stdout().lock();
        for (i, p) in planned.iter().enumerate() {
            println!("[{}/{}] {}", i + 1, planned.len(), plain(&p.target.name));
            let _ = print_plan(&p.plan, &mut out);
        }
    }
    if cli.dry_run {
        if !cli.guard.json {
            println!("Dry run: nothing was changed.");
        }
        return Ok(ExitCode::SUCCESS);
    }

    // One confirmation for the run: production anywhere in it asks for the group's name.
    let guard = Guard {
        server: group.to_string(),
        read_only: false,
        production: planned.iter().any(|p| p.target.is_production()),
    };
    let decision = guard
        .decide_cli(
            mutating,
            group,
            ctx.interactive,
            cli.guard.yes,
            cli.guard.confirm.as_deref(),
        )
        .map_err(|e| eyre!("group {group}: {e}"))?;
    if let Decision::Ask(c) = decision
        && !c.accepts(&ask(&c.prompt()))
    {
        eprintln!("berth: not confirmed; nothing was changed");
        return Ok(ExitCode::FAILURE);
    }

    let total = planned.len();
    let mut done: Vec<String> = Vec::new();
    let mut queue = planned.into_iter();
    while let Some(p) = queue.next() {
        let name = p.target.name.clone();
        if !cli.guard.json {
            println!("── {} ({}/{total})", plain(&name), done.len() + 1);
        }
        let result = drive(p.plan, p.engine, cli.guard.json).await;
        if !result.ok {
            let not_started: Vec<String> = queue.map(|p| p.target.name).collect();
            report(
                group,
                &done,
                Some((&name, &result.message)),
                &not_started,
                cli.guard.json,
            );
            return Ok(ExitCode::FAILURE);
        }
        done.push(name);
    }
    report(group, &done, None, &[], cli.guard.json);
    Ok(ExitCode::SUCCESS)
}

fn service_name(name: &str, project: Option<&str>) -> String {
    match project {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
    }
}

/// The group's servers as targets, each refused up front when read-only; a member at the same
/// host and port as an earlier one is left out, paired with that one's name.
fn member_targets(
    ctx: &Context,
    group: &str,
    members: &[String],
    mutating: bool,
) -> color_eyre::Result<(Vec<Target>, Vec<SameHost>)> {
    let mut resolved = crate::target::resolve_servers(&ctx.config, &ctx.env);
    let mut targets: Vec<Target> = Vec::new();
    let mut places: Vec<(Option<(String, u16)>, String)> = Vec::new();
    let mut same_host = Vec::new();
    for name in members {
        let Some(i) = resolved.iter().position(|(n, _)| n == name) else {
            return Err(eyre!("group {group}: server {name} is not configured"));
        };
        let mut target = resolved
            .swap_remove(i)
            .1
            .map_err(|e| eyre!("group {group}: server {name}: {e}"))?;
        target.read_only |= ctx.global.read_only || ctx.config.read_only;
        Guard::for_target(&target)
            .allows(mutating)
            .map_err(|e| eyre!("group {group}: {e}; nothing was changed"))?;
        let place = crate::target::place(&target.endpoint, &ctx.env);
        if let Some((_, first)) = places.iter().find(|(p, _)| p.is_some() && *p == place) {
            same_host.push((name.clone(), first.clone()));
            continue;
        }
        places.push((place, name.clone()));
        targets.push(target);
    }
    Ok((targets, same_host))
}

/// Whether the server runs anything the request names: a server without it is skipped, while a
/// server that has it and cannot be planned stops the run.
async fn runs_service(engine: &Engine, request: &Request) -> bool {
    let (name, project) = match request {
        Request::Action { name, project, .. } => (name, project),
        Request::Rollback(r) => (&r.name, &r.project),
        _ => return true,
    };
    let Ok(containers) = engine.containers().await else {
        return true;
    };
    let all: Vec<&crate::engine::model::Container> = containers.iter().collect();
    let full = service_name(name, project.as_deref());
    crate::logs::containers_named(&all, &full).is_ok_and(|found| !found.is_empty())
}

/// The run's last word: which servers are done, where it stopped and what was not touched.
fn report(
    group: &str,
    done: &[String],
    failed: Option<(&str, &str)>,
    not_started: &[String],
    json: bool,
) {
    if json {
        let line = serde_json::json!({
            "event": "group-done",
            "group": group,
            "ok": failed.is_none(),
            "done": done,
            "failed": failed.map(|(s, _)| s),
            "error": failed.map(|(_, e)| e),
            "not_started": not_started,
        });
        println!("{}", json_safe(&line.to_string()));
        return;
    }
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            plain(&names.join(", "))
        }
    };
    match failed {
        None => println!("OK: group {group}: done on {}", list(done)),
        Some((server, error)) => eprintln!(
            "berth: group {group} stopped at {}: {}; done: {}; not started: {}",
            plain(server),
            plain(error),
            list(done),
            list(not_started)
        ),
    }
}
