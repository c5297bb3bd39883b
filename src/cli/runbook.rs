//! The plain-text front end of the runbook for CLI commands: print the plan, ask (or check the flags),
//! run it, print events as they come (or JSON lines), and turn the result into an exit code.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::out::{errln, outln};
use super::{Command, GuardArgs};
use crate::context::Context;
use crate::engine::Engine;
use crate::logs::sanitize::{json_safe, plain, plain_lines};
use crate::notify;
use crate::runbook::guard::{Decision, Guard};
use crate::runbook::{
    ActionKind, EVENT_CHANNEL, MigrateRequest, Plan, PruneRequest, RecoverChoice, Request,
    RestoreRequest, RollbackRequest, RunEvent, RunResult, StepStatus, SwarmAction, SwarmRequest,
};

/// `--shell SCRIPT` as the command the container runs: `sh -c 'SCRIPT'`, quoted so the script
/// reaches the shell as one word.
fn shell_command(script: &str) -> String {
    let quoted = shlex::try_quote(script)
        .map(|q| q.into_owned())
        // A NUL byte cannot be quoted; the plan refuses the unparsable command then.
        .unwrap_or_else(|_| script.to_string());
    format!("sh -c {quoted}")
}

/// A runbook subcommand as the request it makes and how to run it.
#[derive(Debug, Clone)]
pub struct CliRequest {
    pub request: Request,
    pub guard: GuardArgs,
    /// Print the plan, run nothing.
    pub dry_run: bool,
    /// A second question before running (volumes are deleted with their data).
    pub twice: Option<&'static str>,
}

/// The request a runbook subcommand makes; `None` for any other subcommand.
pub fn request_of(command: &Command) -> Option<CliRequest> {
    let action = |kind: ActionKind, a: &super::ActionArgs| CliRequest {
        request: Request::Action {
            kind,
            name: a.name.clone(),
            project: a.project.clone(),
        },
        guard: a.guard.clone(),
        dry_run: a.dry_run,
        twice: None,
    };
    Some(match command {
        Command::Action(a) => action(a.kind, &a.args),
        Command::Migrate(a) => CliRequest {
            request: Request::Migrate(MigrateRequest {
                name: a.name.clone(),
                project: a.project.clone(),
                command: match &a.shell {
                    Some(script) => Some(shell_command(script)),
                    None => a.command.clone(),
                },
                preset: a.preset.clone(),
                target: a.target.clone(),
                status: a.status,
                one_off: a.one_off,
                backup: a.backup,
                no_backup: a.no_backup,
                reason: a.reason.clone(),
            }),
            guard: a.guard.clone(),
            dry_run: a.dry_run,
            twice: None,
        },
        Command::Rollback(a) => CliRequest {
            request: Request::Rollback(RollbackRequest {
                name: a.name.clone(),
                project: a.project.clone(),
                to: a.to.clone(),
                remove_old: a.remove_old,
                retag: a.retag,
                recover: None,
                pin: a.pin,
                forward: false,
                force: a.force,
            }),
            guard: a.guard.clone(),
            dry_run: a.dry_run,
            twice: None,
        },
        Command::Deploy(a) => CliRequest {
            request: Request::Rollback(RollbackRequest {
                name: a.name.clone(),
                project: a.project.clone(),
                to: a.to.clone(),
                remove_old: a.remove_old,
                pin: a.pin,
                forward: true,
                force: a.force,
                ..Default::default()
            }),
            guard: a.guard.clone(),
            dry_run: a.dry_run,
            twice: None,
        },
        // A recovery is planned like a rollback: the same look at what the service has left.
        Command::Recover(a) => CliRequest {
            request: Request::Rollback(RollbackRequest {
                name: a.name.clone(),
                project: a.project.clone(),
                recover: Some(if a.finish {
                    RecoverChoice::Finish
                } else {
                    RecoverChoice::Restore
                }),
                ..Default::default()
            }),
            guard: a.guard.clone(),
            dry_run: a.dry_run,
            twice: None,
        },
        Command::Prune(a) => CliRequest {
            request: Request::Prune(PruneRequest {
                keep: a.keep,
                volumes: a.volumes,
                only: a.only.clone(),
            }),
            guard: a.guard.clone(),
            dry_run: a.dry_run,
            twice: a.volumes.then_some("Volumes are deleted with their data."),
        },
        Command::Restore(a) => CliRequest {
            request: Request::Restore(RestoreRequest {
                name: a.name.clone(),
                project: a.project.clone(),
                from: a.from.clone(),
                no_safety_backup: a.no_safety_backup,
            }),
            guard: a.guard.clone(),
            dry_run: a.dry_run,
            twice: None,
        },
        Command::Scale(a) => swarm(SwarmAction::Scale(a.spec.1), &a.spec.0, &a.guard),
        Command::Drain(a) => swarm(SwarmAction::Drain, &a.node, &a.guard),
        Command::Activate(a) => swarm(SwarmAction::Activate, &a.node, &a.guard),
        _ => return None,
    })
}

fn swarm(action: SwarmAction, name: &str, guard: &GuardArgs) -> CliRequest {
    CliRequest {
        request: Request::Swarm(SwarmRequest {
            action,
            name: name.to_string(),
        }),
        guard: guard.clone(),
        dry_run: false,
        twice: None,
    }
}

/// Plans and runs a runbook subcommand on one server: a change on a read-only target is refused
/// before connecting.
pub async fn run_request(ctx: &Context, cli: CliRequest) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let mutating = cli.request.mutating() && !cli.dry_run;
    Guard::for_target(&target).allows(mutating)?;
    let engine = ctx.connect(&target).await?;
    let hooks = crate::remote::plan_hooks(&engine);
    let plan = crate::runbook::plan_with(&engine, &ctx.config, &cli.request, hooks).await?;
    Ok(run_plan(ctx, engine, plan, &cli.guard, cli.dry_run, cli.twice).await)
}

/// Plans name containers, images and labels from the server: every line is cleaned on its way out.
pub fn print_plan(plan: &Plan, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "Plan: {}", plain(&plan.title))?;
    writeln!(out, "Server: {}", plain(&plan.target))?;
    for n in &plan.notes {
        writeln!(out, "  note: {}", plain(n))?;
    }
    for (i, s) in plan.steps.iter().enumerate() {
        writeln!(out, "  {:>2}. {}", i + 1, plain(&s.description))?;
        for c in &s.calls {
            writeln!(out, "        {}", plain(&c.to_string()))?;
        }
    }
    for p in &plan.promises {
        writeln!(out, "  after: {}", plain(&p.text))?;
    }
    Ok(())
}

/// One line of a run's report on stdout, cleaned: step messages and command output quote the server.
fn say(text: &str) {
    outln!("{}", plain_lines(text));
}

pub fn ask(prompt: &str) -> String {
    eprint!("{} ", plain(prompt));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line
}

/// Checks read-only, confirmation flags and asks on a terminal. `Ok(false)`: the user said no.
/// `extra_confirm`: a second question (volumes), asked on a terminal or satisfied by --yes.
pub fn confirm(
    ctx: &Context,
    engine: &Engine,
    plan: &Plan,
    g: &GuardArgs,
    extra_confirm: Option<&str>,
) -> Result<bool, String> {
    let guard = Guard::for_target(&engine.target);
    // Any name that means this subject counts as the name production asks for.
    let given = g.confirm.as_deref().map(|c| {
        if plan.confirm_accepts(c) {
            plan.confirm_as.as_str()
        } else {
            c
        }
    });
    match guard
        .decide_cli(
            plan.mutating,
            &plan.confirm_as,
            ctx.interactive,
            g.yes,
            given,
        )
        .map_err(|e| e.to_string())?
    {
        Decision::Proceed => {}
        Decision::Ask(c) => {
            if !c.accepts(&ask(&c.prompt())) {
                return Ok(false);
            }
        }
    }
    if let Some(q) = extra_confirm {
        if ctx.interactive && !g.yes {
            let c = crate::runbook::Confirmation::TypeName("delete volumes".into());
            if !c.accepts(&ask(&format!("{q} Type 'delete volumes' to proceed:"))) {
                return Ok(false);
            }
        } else if !g.yes {
            return Err(format!("{q} add --yes to confirm"));
        }
    }
    Ok(true)
}

/// Plans are shown, confirmed and run; returns the exit code.
pub async fn run_plan(
    ctx: &Context,
    engine: Engine,
    plan: Plan,
    g: &GuardArgs,
    dry_run: bool,
    extra_confirm: Option<&str>,
) -> ExitCode {
    let stdout = std::io::stdout();
    if g.json {
        let json = serde_json::json!({ "event": "plan", "plan": plan }).to_string();
        outln!("{}", json_safe(&json));
    } else {
        let _ = print_plan(&plan, &mut stdout.lock());
    }
    if dry_run {
        if !g.json {
            outln!("Dry run: nothing was changed.");
        }
        return ExitCode::SUCCESS;
    }
    if plan.steps.is_empty() {
        if !g.json {
            outln!("Nothing to do.");
        }
        return ExitCode::SUCCESS;
    }
    match confirm(ctx, &engine, &plan, g, extra_confirm) {
        Ok(true) => {}
        Ok(false) => {
            errln!("berth: not confirmed; nothing was changed");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            errln!("berth: {}", plain(&e));
            return ExitCode::FAILURE;
        }
    }
    let result = drive_notifying(plan, engine, g.json, &ctx.config.notify).await;
    exit_code(&result)
}

/// Success, the failed command's own exit code (a migration's), or 1.
pub fn exit_code(result: &RunResult) -> ExitCode {
    if result.ok {
        return ExitCode::SUCCESS;
    }
    match result.metrics.get("exit_code").and_then(|c| c.as_i64()) {
        Some(code @ 1..=255) => ExitCode::from(code as u8),
        _ => ExitCode::FAILURE,
    }
}

/// Runs the plan in a task and prints its events; Ctrl-C cancels (a rollback then restores).
pub async fn drive(plan: Plan, engine: Engine, json: bool) -> RunResult {
    drive_notifying(plan, engine, json, &[]).await
}

/// [`drive`], posting the run's start and end to `webhooks`; a failed delivery is a `berth:` line
/// on stderr. At the end it waits for deliveries in flight, at most [`notify::EXIT_WAIT`].
pub async fn drive_notifying(
    plan: Plan,
    engine: Engine,
    json: bool,
    webhooks: &[crate::config::notify::NotifyEntry],
) -> RunResult {
    let (report_tx, mut reports) = mpsc::channel(notify::REPORTS);
    let notifier = notify::Notifier::from_config(webhooks, Some(report_tx));
    let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL);
    let cancel = CancellationToken::new();
    let steps = plan.steps.clone();
    let signals = tokio::spawn(super::out::watch_signals(cancel.clone()));
    // The same options as the console: over SSH the audit line also goes to `remote_audit`.
    let mut options = crate::remote::SshAppend::run_options(&engine);
    options.notify = notifier
        .clone()
        .map(|n| n as std::sync::Arc<dyn crate::runbook::RunNotify>);
    let ended = std::sync::Arc::new(std::sync::OnceLock::new());
    options.ended = Some(ended.clone());
    let task = tokio::spawn(crate::runbook::execute_with(
        plan, engine, tx, cancel, options,
    ));
    let mut last = None;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            Some(report) = reports.recv() => {
                errln!("berth: {}", plain(&report));
                continue;
            }
        };
        if json {
            outln!(
                "{}",
                json_safe(&serde_json::to_string(&ev).unwrap_or_default())
            );
        } else {
            match &ev {
                RunEvent::StepStarted { step } => say(&format!(
                    "→ {}. {}",
                    step + 1,
                    steps
                        .get(*step)
                        .map(|s| s.description.as_str())
                        .unwrap_or("")
                )),
                // Warnings about the run itself (an audit copy that failed) go where errors go.
                RunEvent::Output { line, .. } if line.starts_with("warning: ") => {
                    errln!("berth: {}", plain(line));
                }
                // A pull's progress is for the person watching, not for the report on stdout.
                RunEvent::Output { line, .. }
                    if line.starts_with(crate::runbook::rollback::registry::PROGRESS_PREFIX) =>
                {
                    errln!("    {}", plain(line));
                }
                RunEvent::Output { line, .. } => say(&format!("    │ {line}")),
                RunEvent::StepFinished { step, outcome } => {
                    if outcome.status != StepStatus::Skipped || !outcome.message.is_empty() {
                        say(&format!(
                            "  {} {}. {} ({} ms)",
                            outcome.status.symbol(),
                            step + 1,
                            outcome.message,
                            outcome.duration.as_millis()
                        ))
                    }
                }
                RunEvent::Done { result } => {
                    let metrics = if result.metrics.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " [{}]",
                            result
                                .metrics
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    };
                    say(&format!(
                        "{} {} ({} ms){metrics}",
                        if result.ok { "OK:" } else { "FAILED:" },
                        result.message,
                        result.duration.as_millis()
                    ));
                }
            }
        }
        if let RunEvent::Done { result } = ev {
            last = Some(result);
        }
    }
    if let Some(n) = notifier {
        // Within the exit budget from the run's end, whatever the link did meanwhile (the
        // audit's server copy and the lock's release are bounded too); a moment kept for exiting.
        let spent = ended
            .get()
            .map(|t: &std::time::Instant| t.elapsed())
            .unwrap_or_default();
        let left = crate::runbook::EXIT_BUDGET
            .saturating_sub(spent)
            .saturating_sub(std::time::Duration::from_millis(500));
        n.finish(left.min(notify::EXIT_WAIT)).await;
    }
    while let Ok(report) = reports.try_recv() {
        errln!("berth: {}", plain(&report));
    }
    signals.abort();
    match task.await {
        Ok(r) => r,
        Err(e) => last.unwrap_or(RunResult {
            ok: false,
            message: format!("the runbook task failed: {e}"),
            duration: Default::default(),
            images_before: vec![],
            images_after: vec![],
            metrics: Default::default(),
        }),
    }
}
