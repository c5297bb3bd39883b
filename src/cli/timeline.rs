//! `berth timeline`: what happened on the server, in time order, as text, Markdown or JSON lines.

use std::io::Write;
use std::process::ExitCode;

use super::TimelineArgs;
use crate::context::Context;
use crate::runbook::AuditLog;
use crate::timeline::{collect, history::History, render};

pub async fn run(ctx: &Context, args: &TimelineArgs) -> color_eyre::Result<ExitCode> {
    let since = match args.since.trim() {
        "all" => None,
        s => Some(
            crate::logs::since::parse_since(s, chrono::Utc::now())
                .map_err(|e| color_eyre::eyre::eyre!("{e} (or `all`)"))?,
        ),
    };
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let request = collect::Request {
        since,
        names: args.names.clone(),
    };
    let timeline = collect::timeline(
        &engine,
        &AuditLog::from_env(),
        &History::for_server(&target.name),
        &request,
    )
    .await
    .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let out = if args.json {
        render::json_lines(&timeline)
    } else if args.md {
        render::markdown(&timeline)
    } else {
        let mut text = String::new();
        for line in render::lines(&timeline) {
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}
