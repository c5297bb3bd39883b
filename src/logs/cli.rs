//! `berth logs NAME`: the same streaming code as the console, written to stdout for scripts and
//! pipes — in order, none missing, a compose-style prefix when several containers are merged. A
//! closed pipe (`| head`) ends it quietly.

use std::io::{self, Write};
use std::process::ExitCode;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::line::format_ts;
use super::stream::{self, LogEvent, LogOptions, SourceStatus, Tail};
use super::{LogLine, LogSource, containers_named, parse_since, sources_for};
use crate::cli::LogsArgs;
use crate::context::Context;

/// Events waiting between the stream and stdout; the stream waits when stdout is slow.
const QUEUE: usize = 64;

pub async fn run(ctx: &Context, args: &LogsArgs) -> color_eyre::Result<ExitCode> {
    let since = match &args.since {
        Some(s) => {
            Some(parse_since(s, chrono::Utc::now()).map_err(|e| color_eyre::eyre::eyre!(e))?)
        }
        None => None,
    };
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let all = engine.containers().await?;
    let all: Vec<&crate::engine::model::Container> = all.iter().collect();
    let chosen = containers_named(&all, &args.name).map_err(|e| color_eyre::eyre::eyre!(e))?;
    let sources = sources_for(&chosen);
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail.unwrap_or(Tail::All),
        since,
        wait_for_restart: false,
        ..LogOptions::default()
    };
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let ids = sources.iter().map(|s| s.id.clone()).collect();
    stream::spawn(engine.docker.clone(), ids, options, tx, cancel);

    let mut out = LineWriter::new(&sources, args.timestamps);
    let stdout = io::stdout();
    let mut failed = false;
    while let Some(ev) = rx.recv().await {
        match ev {
            LogEvent::Lines(lines) => {
                let mut lock = stdout.lock();
                let written = lines
                    .iter()
                    .try_for_each(|l| out.write(&mut lock, l))
                    .and_then(|_| lock.flush());
                match written {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            LogEvent::Status { source, status } => {
                let name = sources
                    .get(source as usize)
                    .map(|s| s.name.as_str())
                    .unwrap_or("?");
                match &status {
                    SourceStatus::Streaming | SourceStatus::Done | SourceStatus::Stopped => {}
                    SourceStatus::Failed(_) => {
                        failed = true;
                        eprintln!("berth: {name}: {status}");
                    }
                    _ => eprintln!("berth: {name}: {status}"),
                }
            }
            LogEvent::Ended => break,
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Formats lines as `docker compose logs` does: `web-1  | text`, timestamps on request.
pub struct LineWriter {
    prefixes: Vec<String>,
    timestamps: bool,
}

impl LineWriter {
    pub fn new(sources: &[LogSource], timestamps: bool) -> LineWriter {
        let width = sources
            .iter()
            .map(|s| s.prefix.chars().count())
            .max()
            .unwrap_or(0);
        let prefixes = if sources.len() > 1 {
            sources
                .iter()
                .map(|s| format!("{:<width$} | ", s.prefix))
                .collect()
        } else {
            vec![String::new(); sources.len()]
        };
        LineWriter {
            prefixes,
            timestamps,
        }
    }

    pub fn write(&mut self, w: &mut impl Write, line: &LogLine) -> io::Result<()> {
        if let Some(p) = self.prefixes.get(line.source as usize) {
            w.write_all(p.as_bytes())?;
        }
        if self.timestamps {
            w.write_all(format_ts(line.ts).as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(line.text.as_bytes())?;
        w.write_all(b"\n")
    }
}

/// The lines as a saved log: prefixes when several sources, timestamps if asked.
pub fn format_lines(sources: &[LogSource], timestamps: bool, lines: &[LogLine]) -> Vec<u8> {
    let mut writer = LineWriter::new(sources, timestamps);
    let mut text = Vec::with_capacity(lines.len() * 80);
    for l in lines {
        // Writing to a Vec cannot fail.
        let _ = writer.write(&mut text, l);
    }
    text
}
