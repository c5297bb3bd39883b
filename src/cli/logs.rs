//! `berth logs NAME`: the same streaming code as the console, written to stdout for scripts and
//! pipes — in order, none missing, a compose-style prefix when several containers are merged. A
//! closed pipe (`| head`) ends it quietly.

use std::io::{self, Write};
use std::process::ExitCode;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::LogsArgs;
use crate::context::Context;
use crate::logs::sanitize::plain;
use crate::logs::stream::{self, LogEvent, LogOptions, SourceStatus, Tail};
use crate::logs::{LineWriter, containers_named, parse_since, sources_for};

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
    let sources = match containers_named(&all, &args.name) {
        Ok(chosen) => sources_for(&chosen),
        // Not a container here: the tasks of a swarm service or stack, when this is a manager.
        Err(not_found) => swarm_sources(&engine, &args.name, not_found).await?,
    };
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
    // Lines past the 64 KiB a line may hold: printed cut, and said once on stderr at the end.
    let mut cut_lines = 0u64;
    while let Some(ev) = rx.recv().await {
        match ev {
            LogEvent::Lines(lines) => {
                cut_lines += lines.iter().filter(|l| was_cut(&l.text)).count() as u64;
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
                    .map(|s| plain(&s.name))
                    .unwrap_or_else(|| "?".into());
                // Engine errors quote the server: cleaned like the lines.
                let said = plain(&status.to_string());
                match &status {
                    SourceStatus::Streaming | SourceStatus::Done | SourceStatus::Stopped => {}
                    SourceStatus::Failed(_) => {
                        failed = true;
                        eprintln!("berth: {name}: {said}");
                    }
                    _ => eprintln!("berth: {name}: {said}"),
                }
            }
            LogEvent::Ended => break,
        }
    }
    if cut_lines > 0 {
        let kib = crate::logs::sanitize::MAX_LINE_BYTES / 1024;
        if cut_lines == 1 {
            eprintln!(
                "berth: 1 line was longer than {kib} KiB and was cut (it ends `… (N bytes cut)`)"
            );
        } else {
            eprintln!(
                "berth: {cut_lines} lines were longer than {kib} KiB and were cut (each ends `… (N bytes cut)`)"
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether the line ends with the mark `sanitize` puts on a line it cut: ` … (N bytes cut)`.
fn was_cut(text: &str) -> bool {
    text.strip_suffix(" bytes cut)")
        .and_then(|rest| rest.rsplit_once(" … ("))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The task logs of a swarm service or stack; `not_found` when this is no manager or no such name.
async fn swarm_sources(
    engine: &crate::engine::Engine,
    name: &str,
    not_found: String,
) -> color_eyre::Result<Vec<crate::logs::LogSource>> {
    if !crate::swarm::detect(engine).await?.is_manager() {
        return Err(color_eyre::eyre::eyre!(not_found));
    }
    let snapshot = crate::swarm::snapshot(engine).await?;
    let Some(named) = snapshot.find(name) else {
        return Err(color_eyre::eyre::eyre!(
            "no container, service, project or swarm service/stack named '{}'; list them with `berth ps -a` and `berth services`",
            plain(name)
        ));
    };
    let sources = crate::swarm::logs::sources_for(&snapshot, &named);
    if sources.is_empty() {
        return Err(color_eyre::eyre::eyre!(
            "'{}' has no task that started a container yet: nothing has logged",
            plain(name)
        ));
    }
    Ok(sources)
}
