//! berth: parse the command line, then run the console or a plain command.

use std::process::ExitCode;

use berth::cli::{Cli, Command};
use berth::context::Context;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Config and target errors are one line on stderr, before the terminal is touched.
    let ctx = match Context::load(cli.global.clone()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&e.into()),
    };
    match runtime.block_on(run(cli.command, ctx)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &color_eyre::Report) -> ExitCode {
    eprintln!("berth: {e}");
    ExitCode::FAILURE
}

async fn run(command: Option<Command>, ctx: Context) -> color_eyre::Result<ExitCode> {
    match command {
        None => Err(color_eyre::eyre::eyre!("the console is not wired yet")),
        Some(Command::Doctor) => {
            let target = ctx.cli_target()?;
            let ok = berth::doctor::run(&target, &ctx.ssh_options()).await;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Some(other) => Err(color_eyre::eyre::eyre!("`{other:?}` is not implemented yet ({})", ctx.global.server.as_deref().unwrap_or("local"))),
    }
}
