//! `berth forward NAME [PORT]`: a container's port on this machine until Ctrl-C.

use std::process::ExitCode;

use super::ForwardArgs;
use crate::context::Context;
use crate::format::printable;
use crate::forward::{self, Dialer};

pub async fn run(ctx: &Context, args: &ForwardArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let dialer = Dialer::for_engine(&engine).map_err(|e| color_eyre::eyre::eyre!(e))?;
    let route = forward::route(&engine, &args.name, args.port)
        .await
        .map_err(|e| color_eyre::eyre::eyre!(printable(&e)))?;
    let (failed_tx, mut failed) = tokio::sync::mpsc::channel(64);
    let fwd = forward::start(dialer, route, args.bind, args.local, failed_tx)
        .await
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let (host, port, what) = &fwd.route.addresses[0];
    let over = match &engine.ssh {
        Some(s) => format!(" over ssh {}", printable(&s.resolved().alias)),
        None => String::new(),
    };
    println!(
        "Forwarding {} → {}:{} ({host}:{port} on {}{over}). Ctrl-C stops it.",
        fwd.url(),
        printable(&fwd.route.container),
        fwd.route.port,
        printable(what),
    );
    if !args.bind.is_loopback() {
        eprintln!(
            "berth: forward: listening on {}: other machines can reach {} through it",
            args.bind,
            printable(&fwd.route.container)
        );
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(f) = failed.recv() => eprintln!(
                "berth: forward: a connection from {} failed: {}; the forward stays up",
                f.peer,
                printable(&f.reason)
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
