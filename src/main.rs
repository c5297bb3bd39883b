//! berth: parse the command line, then run the console or a plain command.

use std::io::Write;
use std::process::ExitCode;

use berth::cli::{Cli, Command};
use berth::context::Context;
use berth::runbook;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    berth::tui::install_panic_hook();
    // Completions and the manual come from the clap definitions alone: no config, no engine.
    match &cli.command {
        Some(Command::Completions(a)) => {
            berth::cli::write_completions(a.shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            return match berth::cli::man::write_man(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.into()),
            };
        }
        _ => {}
    }
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
    // Engine and SSH errors quote what the server said: cleaned like everything else from it.
    // Not eprintln!: a terminal that hung up must not turn the last word into a panic.
    let _ = writeln!(
        std::io::stderr(),
        "berth: {}",
        berth::logs::sanitize::plain(&e.to_string())
    );
    ExitCode::FAILURE
}

async fn run(command: Option<Command>, ctx: Context) -> color_eyre::Result<ExitCode> {
    match command {
        None => {
            berth::tui::run(ctx).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Ps(args)) => berth::cli::ps::run(&ctx, &args).await,
        Some(Command::Rollback(a)) if a.list => berth::cli::images::run(&ctx, &a).await,
        Some(Command::Recover(a)) if !a.finish && !a.restore && !a.dry_run => {
            Err(color_eyre::eyre::eyre!(
                "recover: say what to do: --finish (verify the new container, keep the old one) or --restore (the old one back); --dry-run shows what berth found"
            ))
        }
        Some(
            command @ (Command::Action(_)
            | Command::Migrate(_)
            | Command::Rollback(_)
            | Command::Deploy(_)
            | Command::Recover(_)
            | Command::Prune(_)
            | Command::Restore(_)
            | Command::Scale(_)
            | Command::Drain(_)
            | Command::Activate(_)),
        ) => match berth::cli::runbook::request_of(&command) {
            Some(request) => berth::cli::run_runbook(&ctx, request).await,
            None => Err(color_eyre::eyre::eyre!("not a runbook command")),
        },
        Some(Command::Audit(a)) => {
            // The whole log is parsed anyway: reading it all tells how many entries -n left out.
            let mut entries = runbook::AuditLog::from_env().read_last(usize::MAX)?;
            let total = entries.len();
            entries.drain(..total.saturating_sub(a.limit));
            if total > entries.len() {
                eprintln!(
                    "berth: the last {} of {total} entries; -n {total} prints them all",
                    entries.len()
                );
            }
            if a.json {
                for e in &entries {
                    print!("{}", berth::logs::sanitize::json_safe(&e.to_line()));
                }
            } else if entries.is_empty() {
                println!(
                    "The audit log {} is empty.",
                    runbook::AuditLog::from_env().path.display()
                );
            } else {
                print!(
                    "{}",
                    berth::logs::sanitize::plain_lines(&runbook::audit::format_table(&entries))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Backup(a)) => berth::cli::backup::run(&ctx, &a).await,
        Some(Command::Timeline(a)) => berth::cli::timeline::run(&ctx, &a).await,
        Some(Command::Doctor) => {
            let target = ctx.cli_target()?;
            let ok = berth::doctor::run(&target, &ctx.ssh_options()).await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(Command::Logs(a)) => berth::cli::logs::run(&ctx, &a).await,
        Some(Command::Stats(a)) => berth::cli::stats::run_stats(&ctx, &a).await,
        Some(Command::Df(a)) => berth::cli::stats::run_df(&ctx, &a).await,
        Some(Command::Forward(a)) => berth::cli::forward::run(&ctx, &a).await,
        Some(Command::Fleet(a)) => berth::cli::fleet::run(&ctx, &a).await,
        Some(Command::Services(a)) => berth::cli::swarm::run_services(&ctx, &a).await,
        Some(Command::Nodes(a)) => berth::cli::swarm::run_nodes(&ctx, &a).await,
        Some(Command::Notify(berth::cli::NotifyCommand::Test)) => {
            berth::cli::notify::run_test(&ctx).await
        }
        Some(Command::Lock(berth::cli::LockCommand::Status(a))) => {
            berth::cli::lock::run_status(&ctx, &a).await
        }
        Some(Command::Lock(berth::cli::LockCommand::Release(a))) => {
            berth::cli::lock::run_release(&ctx, &a).await
        }
        Some(Command::Completions(_) | Command::Man) => Ok(ExitCode::SUCCESS),
    }
}
