//! berth: parse the command line, then run the console or a plain command.

use std::process::ExitCode;

use berth::cli::{Cli, Command};
use berth::context::Context;
use berth::runbook::{self, ActionKind};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    berth::tui::install_panic_hook();
    // Config and target errors are one line on stderr, before the terminal is touched.
    let ctx = match Context::load(cli.global.clone()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&e.into()),
    };
    let code = match runtime.block_on(run(cli.command, ctx)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    };
    // Streams still open (a followed log, an events stream) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

fn fail(e: &color_eyre::Report) -> ExitCode {
    eprintln!("berth: {e}");
    ExitCode::FAILURE
}

async fn run(command: Option<Command>, ctx: Context) -> color_eyre::Result<ExitCode> {
    match command {
        None => {
            berth::tui::run(ctx).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Ps(args)) => berth::ps::run(&ctx, &args).await,
        Some(Command::Restart(a)) => runbook_action(&ctx, ActionKind::Restart, a).await,
        Some(Command::Stop(a)) => runbook_action(&ctx, ActionKind::Stop, a).await,
        Some(Command::Start(a)) => runbook_action(&ctx, ActionKind::Start, a).await,
        Some(Command::Kill(a)) => runbook_action(&ctx, ActionKind::Kill, a).await,
        Some(Command::Rm(a)) => runbook_action(&ctx, ActionKind::Remove, a).await,
        Some(Command::Migrate(a)) => {
            let engine = runbook_engine(&ctx, !a.status).await?;
            let req = runbook::MigrateRequest {
                name: a.name,
                project: a.project,
                command: a.command,
                preset: a.preset,
                target: a.target,
                status: a.status,
                one_off: a.one_off,
            };
            let plan = runbook::plan_migrate(&engine, &ctx.config, &req).await?;
            Ok(runbook::cli::run_plan(&ctx, engine, plan, &a.guard, false, None).await)
        }
        Some(Command::Rollback(a)) => {
            let engine = runbook_engine(&ctx, !a.dry_run).await?;
            let req = runbook::RollbackRequest {
                name: a.name,
                project: a.project,
                to: a.to,
                remove_old: a.remove_old,
                retag: a.retag,
            };
            let plan = runbook::plan_rollback(&engine, &ctx.config, &req).await?;
            Ok(runbook::cli::run_plan(&ctx, engine, plan, &a.guard, a.dry_run, None).await)
        }
        Some(Command::Prune(a)) => {
            let engine = runbook_engine(&ctx, !a.dry_run).await?;
            let req = runbook::PruneRequest {
                keep: a.keep,
                volumes: a.volumes,
                only: a.only,
            };
            let plan = runbook::plan_prune(&engine, &ctx.config, &req).await?;
            let twice = a.volumes.then_some("Volumes are deleted with their data.");
            Ok(runbook::cli::run_plan(&ctx, engine, plan, &a.guard, a.dry_run, twice).await)
        }
        Some(Command::Audit(a)) => {
            let entries = runbook::AuditLog::from_env().read_last(a.limit)?;
            if a.json {
                for e in &entries {
                    print!("{}", e.to_line());
                }
            } else if entries.is_empty() {
                println!(
                    "The audit log {} is empty.",
                    runbook::AuditLog::from_env().path.display()
                );
            } else {
                print!("{}", runbook::audit::format_table(&entries));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Doctor) => {
            let target = ctx.cli_target()?;
            let ok = berth::doctor::run(&target, &ctx.ssh_options()).await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(Command::Logs(a)) => berth::logs::cli::run(&ctx, &a).await,
        Some(Command::Stats(a)) => berth::stats::cli::run_stats(&ctx, &a).await,
        Some(Command::Df(a)) => berth::stats::cli::run_df(&ctx, &a).await,
    }
}

/// Connects for a runbook command; a mutating one on a read-only target is refused before connecting.
async fn runbook_engine(
    ctx: &Context,
    mutating: bool,
) -> color_eyre::Result<berth::engine::Engine> {
    let target = ctx.cli_target()?;
    runbook::Guard::for_target(&target).allows(mutating)?;
    Ok(ctx.connect(&target).await?)
}

async fn runbook_action(
    ctx: &Context,
    kind: ActionKind,
    a: berth::cli::ActionArgs,
) -> color_eyre::Result<ExitCode> {
    let engine = runbook_engine(ctx, true).await?;
    let plan =
        runbook::plan_action(&engine, &ctx.config, kind, &a.name, a.project.as_deref()).await?;
    Ok(runbook::cli::run_plan(ctx, engine, plan, &a.guard, false, None).await)
}
