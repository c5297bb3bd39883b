//! `berth backup`: a service's database dumped into a file on the server, with progress; `--list`
//! shows what is kept there.

use std::io::Write;
use std::process::ExitCode;

use super::BackupArgs;
use crate::backup::{self, Progress, shell};
use crate::context::Context;
use crate::remote::SshServerShell;

pub async fn run(ctx: &Context, args: &BackupArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let server = shell::server_of(&engine, SshServerShell::for_engine)
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    if args.list {
        let mut metas = backup::list_all(&server, &ctx.config)
            .await
            .map_err(|e| color_eyre::eyre::eyre!(e))?;
        if let Some(name) = &args.name {
            let (project, service) = match name.split_once('/') {
                Some((p, s)) => (Some(p.to_string()), s.to_string()),
                None => (args.project.clone(), name.clone()),
            };
            metas.retain(|m| {
                m.service == service && project.as_ref().is_none_or(|p| *p == m.project)
            });
        }
        if args.json {
            for m in &metas {
                let line = serde_json::to_string(m)?;
                println!("{}", crate::logs::sanitize::json_safe(&line));
            }
        } else if metas.is_empty() {
            println!("No backups on the server yet.");
        } else {
            print!("{}", backup::format_table(&metas));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(name) = args.name.clone() else {
        return Err(color_eyre::eyre::eyre!(
            "backup: name the database's service, or --list"
        ));
    };
    let request = backup::Request {
        name,
        project: args.project.clone(),
        ..Default::default()
    };
    let shown = std::sync::atomic::AtomicBool::new(false);
    let progress = |p: Progress| {
        shown.store(true, std::sync::atomic::Ordering::Relaxed);
        let rate = p.bytes as f64 / p.elapsed.as_secs_f64().max(0.001);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r  {} written, {}   ",
            crate::format::bytes(p.bytes),
            crate::format::rate(rate)
        );
        let _ = err.flush();
    };
    let result =
        crate::runbook::backup::backup(&engine, &server, &ctx.config, &request, &progress).await;
    if shown.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!();
    }
    let meta = result.map_err(|e| color_eyre::eyre::eyre!(e))?;
    if args.json {
        println!(
            "{}",
            crate::logs::sanitize::json_safe(&serde_json::to_string(&meta)?)
        );
    } else {
        println!(
            "backup {}/{} {}: {} in {:.1}s → {} on the server (sha256 {})",
            crate::format::printable(&meta.project),
            crate::format::printable(&meta.service),
            meta.id,
            crate::format::bytes(meta.size),
            meta.duration_ms as f64 / 1000.0,
            crate::format::printable(&meta.file),
            meta.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}
