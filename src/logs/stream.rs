//! Streams the logs of one or more containers from the engine: always with engine timestamps, so a
//! stream that breaks (SSH drop, engine restart) re-opens from the last timestamp seen and drops what
//! it already delivered — no gap, no duplicate. Several containers are merged in timestamp order
//! through a short reorder window. Lines travel in batches over a bounded channel: a slow reader
//! slows the stream down, no line is dropped.

use std::fmt;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frames::{FrameParser, frame_of};
use super::line::LogLine;
use super::merge::Merger;

/// A source id that names a swarm task rather than a container: its log is read through the
/// manager's task logs API, which fetches it from whichever node runs the task.
pub const TASK_SOURCE: &str = "task:";

/// The source id of a swarm task's log.
pub fn task_source(task_id: &str) -> String {
    format!("{TASK_SOURCE}{task_id}")
}

/// How many lines from the end of each container's log to start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    All,
    Lines(u64),
}

impl std::str::FromStr for Tail {
    type Err = String;
    fn from_str(s: &str) -> Result<Tail, String> {
        match s.trim() {
            "all" => Ok(Tail::All),
            n => n
                .parse::<u64>()
                .map(Tail::Lines)
                .map_err(|_| format!("bad tail '{s}': a number of lines or 'all'")),
        }
    }
}

impl Tail {
    fn query(self) -> String {
        match self {
            Tail::All => "all".into(),
            Tail::Lines(n) => n.to_string(),
        }
    }
}

/// Re-tries of a broken stream: exponential backoff, bounded in count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            first: Duration::from_millis(200),
            max: Duration::from_secs(5),
            attempts: 20,
        }
    }
}

impl Retry {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.first * factor).min(self.max)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub tail: Tail,
    pub since: Option<DateTime<Utc>>,
    /// How long lines of several containers wait to be put in timestamp order.
    pub reorder_window: Duration,
    pub retry: Retry,
    /// How often a stopped container is checked for a restart while following.
    pub exited_poll: Duration,
    /// Following, a container that stops is waited for (the console); otherwise its stream ends
    /// there, as `docker logs -f` does (the CLI).
    pub wait_for_restart: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            follow: true,
            tail: Tail::Lines(1000),
            since: None,
            reorder_window: Duration::from_millis(80),
            retry: Retry::default(),
            exited_poll: Duration::from_secs(2),
            wait_for_restart: true,
        }
    }
}

/// What a source's stream is doing, for the view's status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStatus {
    Streaming,
    Reconnecting {
        attempt: u32,
        error: String,
    },
    /// The container stopped; its stream resumes if it starts again.
    Exited,
    /// The container stopped and nobody waits for it: the stream is over.
    Stopped,
    Removed,
    /// Gave up after the retries, or the engine refused.
    Failed(String),
    /// Everything asked for was delivered (not following).
    Done,
    /// Streaming again after a reconnect; `caught_up` lines written meanwhile were delivered.
    Resumed {
        caught_up: u64,
    },
}

impl SourceStatus {
    /// No more lines will come from this source.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SourceStatus::Removed
                | SourceStatus::Failed(_)
                | SourceStatus::Done
                | SourceStatus::Stopped
        )
    }
}

impl fmt::Display for SourceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceStatus::Streaming => f.write_str("streaming"),
            SourceStatus::Reconnecting { attempt, error } => {
                write!(f, "reconnecting… (try {attempt}: {error})")
            }
            SourceStatus::Exited => f.write_str("container stopped; waiting for it to start"),
            SourceStatus::Stopped => f.write_str("container stopped"),
            SourceStatus::Removed => f.write_str("container removed"),
            SourceStatus::Failed(e) => write!(f, "stream failed: {e}"),
            SourceStatus::Done => f.write_str("end of log"),
            SourceStatus::Resumed { caught_up } => {
                write!(f, "resumed · {caught_up} lines caught up")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    /// Lines in order (timestamp order across sources, within the reorder window).
    Lines(Vec<LogLine>),
    Status {
        source: u16,
        status: SourceStatus,
    },
    /// Every source is done; nothing more will come.
    Ended,
}

/// Lines handed from a source task to the merger.
enum SourceMsg {
    Lines(u16, Vec<LogLine>),
    Status(u16, SourceStatus),
}

/// Starts streaming the containers `ids`; an event's source is the index of its id. Events go to
/// `tx`; cancelling `cancel` stops every task.
pub fn spawn(
    docker: Docker,
    ids: Vec<String>,
    options: LogOptions,
    tx: mpsc::Sender<LogEvent>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(run(docker, ids, options, tx, cancel))
}

async fn run(
    docker: Docker,
    ids: Vec<String>,
    options: LogOptions,
    tx: mpsc::Sender<LogEvent>,
    cancel: CancellationToken,
) {
    let n = ids.len();
    if n == 0 {
        let _ = tx.send(LogEvent::Ended).await;
        return;
    }
    let (stx, mut srx) = mpsc::channel::<SourceMsg>(16);
    let child = cancel.child_token();
    for (i, id) in ids.into_iter().enumerate() {
        tokio::spawn(source_task(
            docker.clone(),
            i as u16,
            id,
            options.clone(),
            stx.clone(),
            child.clone(),
        ));
    }
    drop(stx);
    let _guard = child.drop_guard();
    // Following, a quiet container holds the others back for at most the window; reading a finished
    // log, the merge is exact (watermark only).
    let mut merger = Merger::new(n, options.follow.then_some(options.reorder_window));
    let mut tick = tokio::time::interval(options.reorder_window.max(Duration::from_millis(10)) / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => return,
            m = srx.recv() => m,
            _ = tick.tick(), if n > 1 && merger.has_pending() => {
                if flush_send(&mut merger, false, &tx, &cancel).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            SourceMsg::Lines(i, lines) => {
                if n == 1 {
                    for part in by_bytes(lines) {
                        if send(&tx, &cancel, LogEvent::Lines(part)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                merger.add(i, lines, Instant::now());
            }
            SourceMsg::Status(i, status) => {
                if status.is_final() {
                    merger.done[i as usize] = true;
                }
                // Lines that came before the status go out first.
                if flush_send(&mut merger, false, &tx, &cancel).await.is_err() {
                    return;
                }
                let ev = LogEvent::Status { source: i, status };
                if send(&tx, &cancel, ev).await.is_err() {
                    return;
                }
            }
        }
        if flush_send(&mut merger, false, &tx, &cancel).await.is_err() {
            return;
        }
    }
    if flush_send(&mut merger, true, &tx, &cancel).await.is_err() {
        return;
    }
    let _ = send(&tx, &cancel, LogEvent::Ended).await;
}

/// Sends what the merger has ready (everything with `all`), if anything.
async fn flush_send(
    merger: &mut Merger,
    all: bool,
    tx: &mpsc::Sender<LogEvent>,
    cancel: &CancellationToken,
) -> Result<(), ()> {
    let out = merger.flush(Instant::now(), all);
    for part in by_bytes(out) {
        send(tx, cancel, LogEvent::Lines(part)).await?;
    }
    Ok(())
}

async fn send(
    tx: &mpsc::Sender<LogEvent>,
    cancel: &CancellationToken,
    ev: LogEvent,
) -> Result<(), ()> {
    tokio::select! {
        _ = cancel.cancelled() => Err(()),
        r = tx.send(ev) => r.map_err(|_| ()),
    }
}

/// Hands on the last unterminated lines of a finished stream.
async fn finish_send(parser: &mut FrameParser, index: u16, tx: &mpsc::Sender<SourceMsg>) {
    let mut lines = Vec::new();
    parser.finish(&mut lines);
    if !lines.is_empty() {
        let _ = tx.send(SourceMsg::Lines(index, lines)).await;
    }
}

/// What the container is, when its stream ended.
enum Presence {
    Running,
    Stopped,
    Removed,
    Unknown(String),
}

async fn presence(docker: &Docker, id: &str) -> Presence {
    if let Some(task) = id.strip_prefix(TASK_SOURCE) {
        return task_presence(docker, task).await;
    }
    let inspected = tokio::time::timeout(
        Duration::from_secs(10),
        docker.inspect_container(id, None::<InspectContainerOptions>),
    )
    .await;
    match inspected {
        Err(_) => Presence::Unknown("no answer from the engine".into()),
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })) => Presence::Removed,
        Ok(Err(e)) => Presence::Unknown(first_line(&e.to_string())),
        Ok(Ok(i)) => {
            let running = i.state.as_ref().and_then(|s| s.running).unwrap_or(false);
            if running {
                Presence::Running
            } else {
                Presence::Stopped
            }
        }
    }
}

/// A swarm task is running or it is over: swarm never restarts a task, it starts a new one.
async fn task_presence(docker: &Docker, task: &str) -> Presence {
    match tokio::time::timeout(Duration::from_secs(10), docker.inspect_task(task)).await {
        Err(_) => Presence::Unknown("no answer from the engine".into()),
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })) => Presence::Removed,
        Ok(Err(e)) => Presence::Unknown(first_line(&e.to_string())),
        Ok(Ok(t)) => {
            let running = t
                .status
                .and_then(|s| s.state)
                .is_some_and(|s| s == bollard::models::TaskState::RUNNING);
            if running {
                Presence::Running
            } else {
                Presence::Stopped
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

/// Frames per batch handed on, and how long a batch may wait to fill. The engine sends one frame
/// per line; handing each on by itself costs a wake-up of every task down the line per line, which
/// on a busy host takes the CPU the engine needs to send them. A few milliseconds is invisible.
const BATCH_FRAMES: usize = 1024;
const BATCH_WAIT: Duration = Duration::from_millis(5);
/// Most bytes of lines in one message between the tasks (one line larger than this goes alone):
/// the channels are bounded in messages, so their messages are bounded in bytes.
const BATCH_BYTES: usize = 256 << 10;

/// `lines` in order, cut into batches of at most [`BATCH_BYTES`].
fn by_bytes(lines: Vec<LogLine>) -> Vec<Vec<LogLine>> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for l in lines {
        let b = l.footprint();
        if !batch.is_empty() && bytes + b > BATCH_BYTES {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += b;
        batch.push(l);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

/// After an outage, how long the reopened stream may stay quiet before its backlog counts as
/// delivered (the engine sends a backlog at once; a quiet container has none).
const CATCH_UP_QUIET: Duration = Duration::from_millis(500);
/// How long the engine may take to answer the first request on a new link.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A stream reopened after an outage, until it says `Resumed`: the engine's clock when it
/// answered on the new link marks the backlog (lines stamped up to then were written during the
/// outage), and how many of those came.
struct CatchUp {
    upto: i64,
    caught_up: u64,
    quiet_until: Instant,
}

/// The engine's clock, in nanoseconds: asked first on a new link, it proves the engine answers.
async fn engine_now(docker: &Docker) -> Result<i64, String> {
    let info = tokio::time::timeout(ANSWER_TIMEOUT, docker.info())
        .await
        .map_err(|_| "no answer from the engine".to_string())?
        .map_err(|e| first_line(&e.to_string()))?;
    info.system_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| "the engine did not say its time".to_string())
}

// The last status sent is remembered even before a final one, where it is not read again.
#[allow(unused_assignments)]
async fn source_task(
    docker: Docker,
    index: u16,
    id: String,
    options: LogOptions,
    tx: mpsc::Sender<SourceMsg>,
    cancel: CancellationToken,
) {
    let mut parser = FrameParser::new(index);
    let mut first = true;
    let mut attempt: u32 = 0;
    let mut announced = SourceStatus::Streaming;
    macro_rules! status {
        ($s:expr) => {{
            let s: SourceStatus = $s;
            if s != announced {
                announced = s.clone();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = tx.send(SourceMsg::Status(index, s)) => if r.is_err() { return },
                }
            }
        }};
    }
    // Announces try `attempt` of a reconnect once: a try's first error is its news, not each.
    macro_rules! reconnecting {
        ($attempt:expr, $e:expr) => {{
            let attempt: u32 = $attempt;
            if !matches!(&announced, SourceStatus::Reconnecting { attempt: a, .. } if *a == attempt) {
                status!(SourceStatus::Reconnecting { attempt, error: $e });
            }
        }};
    }
    loop {
        // After an outage nothing says resumed before the engine answered on the new link.
        let mut catching: Option<CatchUp> = None;
        if matches!(announced, SourceStatus::Reconnecting { .. }) {
            let answered = tokio::select! {
                _ = cancel.cancelled() => return,
                a = engine_now(&docker) => a,
            };
            match answered {
                Ok(upto) => {
                    catching = Some(CatchUp {
                        upto,
                        caught_up: 0,
                        quiet_until: Instant::now() + CATCH_UP_QUIET,
                    });
                }
                Err(e) => {
                    attempt += 1;
                    if attempt > options.retry.attempts {
                        status!(SourceStatus::Failed(e));
                        return;
                    }
                    reconnecting!(attempt, e);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(options.retry.delay(attempt)) => {}
                    }
                    continue;
                }
            }
        }
        // Until a line was seen there is nothing to resume from: ask as the first time.
        let (since, tail) = if first || parser.resume.last_ts().is_none() {
            (
                options.since.map(|s| s.timestamp()).unwrap_or(0),
                options.tail.query(),
            )
        } else {
            parser.reopen();
            (parser.resume.since_secs().unwrap_or(0), "all".to_string())
        };
        let query = LogsOptions {
            follow: options.follow,
            stdout: true,
            stderr: true,
            since: since.clamp(0, i32::MAX as i64) as i32,
            timestamps: true,
            tail,
            ..Default::default()
        };
        let engine_stream = match id.strip_prefix(TASK_SOURCE) {
            Some(task) => docker.task_logs(task, Some(query)).boxed(),
            None => docker.logs(&id, Some(query)).boxed(),
        };
        let mut stream = Box::pin(tokio_stream::StreamExt::chunks_timeout(
            engine_stream,
            BATCH_FRAMES,
            BATCH_WAIT,
        ));
        let mut got_lines = false;
        // After a reconnect: the lines stamped up to the engine's answer are the outage's backlog;
        // once a later line comes, or the stream has been quiet a moment, the view hears
        // `Resumed` with their count.
        let ended: Result<(), bollard::errors::Error> = loop {
            let quiet_until = catching.as_ref().map(|c| c.quiet_until);
            let chunk = tokio::select! {
                _ = cancel.cancelled() => return,
                c = stream.next() => c,
                _ = tokio::time::sleep_until(quiet_until.unwrap_or_else(Instant::now)), if quiet_until.is_some() => {
                    let caught_up = catching.take().map(|c| c.caught_up).unwrap_or(0);
                    attempt = 0;
                    status!(SourceStatus::Resumed { caught_up });
                    continue;
                }
            };
            let Some(chunk) = chunk else { break Ok(()) };
            let mut lines = Vec::with_capacity(chunk.len());
            let mut failed = None;
            for item in chunk {
                match item {
                    Ok(out) => {
                        let (kind, bytes) = frame_of(&out);
                        parser.frame(kind, bytes, &mut lines);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let mut resumed = None;
            if !lines.is_empty() {
                got_lines = true;
                match &mut catching {
                    Some(c) => {
                        let backlog = lines.iter().filter(|l| l.ts <= c.upto).count();
                        c.caught_up += backlog as u64;
                        c.quiet_until = Instant::now() + CATCH_UP_QUIET;
                        // A line written after the answer: the backlog is all here.
                        if backlog < lines.len() {
                            resumed = catching.take().map(|c| c.caught_up);
                        }
                    }
                    None if matches!(announced, SourceStatus::Resumed { .. }) => {}
                    None => {
                        attempt = 0;
                        status!(SourceStatus::Streaming);
                    }
                }
                for part in by_bytes(lines) {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = tx.send(SourceMsg::Lines(index, part)) => if r.is_err() { return },
                    }
                }
            }
            if let Some(caught_up) = resumed {
                attempt = 0;
                status!(SourceStatus::Resumed { caught_up });
            }
            if let Some(e) = failed {
                break Err(e);
            }
        };
        first = false;
        drop(stream);
        let error = match ended {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                status!(SourceStatus::Removed);
                return;
            }
            Err(e) => Some(first_line(&e.to_string())),
            Ok(()) => None,
        };
        if !options.follow && error.is_none() {
            finish_send(&mut parser, index, &tx).await;
            status!(SourceStatus::Done);
            return;
        }
        // Why did it end? The container stopped or went, or the link broke. A failed read says
        // "reconnecting" at once; a quiet end says so when the engine does not answer within a
        // second (a lost link), so a stopped container does not flash it.
        let asked = presence(&docker, &id);
        tokio::pin!(asked);
        let found = match &error {
            Some(e) => {
                reconnecting!(attempt + 1, e.clone());
                None
            }
            None => tokio::select! {
                _ = cancel.cancelled() => return,
                p = &mut asked => Some(p),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    reconnecting!(attempt + 1, "no answer from the engine".to_string());
                    None
                }
            },
        };
        let found = match found {
            Some(p) => p,
            None => tokio::select! {
                _ = cancel.cancelled() => return,
                p = &mut asked => p,
            },
        };
        match found {
            Presence::Removed => {
                status!(SourceStatus::Removed);
                return;
            }
            Presence::Stopped
                if error.is_none()
                    && (!options.wait_for_restart || id.starts_with(TASK_SOURCE)) =>
            {
                finish_send(&mut parser, index, &tx).await;
                status!(SourceStatus::Stopped);
                return;
            }
            Presence::Stopped if error.is_none() => {
                status!(SourceStatus::Exited);
                // Wait for a restart, at a calm pace; lines it writes then are picked up by the
                // resume.
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(options.exited_poll) => {}
                    }
                    match presence(&docker, &id).await {
                        Presence::Running => break,
                        Presence::Removed => {
                            status!(SourceStatus::Removed);
                            return;
                        }
                        _ => {}
                    }
                }
                status!(SourceStatus::Streaming);
                continue;
            }
            Presence::Running if got_lines && error.is_none() => {
                // A clean end while it still runs: the link was cut after data flowed; reopen now.
                attempt = 1;
            }
            presence => {
                let e = match presence {
                    Presence::Unknown(e) => e,
                    _ => error.unwrap_or_else(|| "stream ended".into()),
                };
                attempt += 1;
                if attempt > options.retry.attempts {
                    status!(SourceStatus::Failed(e));
                    return;
                }
                reconnecting!(attempt, e);
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(options.retry.delay(attempt)) => {}
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
