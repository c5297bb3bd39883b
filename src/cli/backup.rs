//! `berth backup`: a service's database dumped into a file on the server, with progress; `--list`
//! shows what is kept there; `--download` also copies the dump here.

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
    let line = ProgressLine::new("written");
    let result =
        crate::runbook::backup::backup(&engine, &server, &ctx.config, &request, &|p| line.show(p))
            .await;
    line.end();
    let meta = result.map_err(|e| color_eyre::eyre::eyre!(e))?;
    let downloaded = match &args.download {
        Some(path) => {
            let dest = download_path(path, &meta);
            let line = ProgressLine::new("copied here");
            let copied = backup::download(&server, &meta, &dest, &|p| line.show(p)).await;
            line.end();
            copied.map_err(|e| {
                color_eyre::eyre::eyre!(
                    "backup {} is on the server ({}), but its download failed: {e}",
                    meta.id,
                    meta.file
                )
            })?;
            Some(dest)
        }
        None => None,
    };
    if args.json {
        let mut record = serde_json::to_value(&meta)?;
        if let (Some(dest), Some(obj)) = (&downloaded, record.as_object_mut()) {
            obj.insert("download".into(), dest.display().to_string().into());
        }
        println!(
            "{}",
            crate::logs::sanitize::json_safe(&serde_json::to_string(&record)?)
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
        if let Some(dest) = &downloaded {
            println!(
                "copied to {} (sha256 checked)",
                crate::format::printable(&dest.display().to_string())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `--download PATH` writes: PATH, or `<project>-<service>-<id>.<ext>` inside it when it is
/// a directory.
fn download_path(path: &std::path::Path, meta: &backup::Meta) -> std::path::PathBuf {
    if !path.is_dir() {
        return path.to_path_buf();
    }
    let ext = std::path::Path::new(&meta.file)
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_else(|| "dump".into());
    // Names from the server become a file name here: nothing that leaves the directory.
    let safe = |s: &str| s.replace(['/', '\\'], "_").replace("..", "_");
    path.join(format!(
        "{}-{}-{}.{ext}",
        safe(&meta.project),
        safe(&meta.service),
        safe(&meta.id)
    ))
}

/// A dump's progress on one stderr line (bytes and rate, redrawn in place), ended by a newline
/// only when something was shown.
struct ProgressLine {
    verb: &'static str,
    shown: std::sync::atomic::AtomicBool,
}

impl ProgressLine {
    fn new(verb: &'static str) -> ProgressLine {
        ProgressLine {
            verb,
            shown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn show(&self, p: Progress) {
        self.shown.store(true, std::sync::atomic::Ordering::Relaxed);
        let rate = p.bytes as f64 / p.elapsed.as_secs_f64().max(0.001);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r  {} {}, {}   ",
            crate::format::bytes(p.bytes),
            self.verb,
            crate::format::rate(rate)
        );
        let _ = err.flush();
    }

    fn end(&self) {
        if self.shown.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!();
        }
    }
}
