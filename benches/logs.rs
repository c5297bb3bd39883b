//! Log figures (not a test: nothing here asserts on time). Run with `scripts/bench-logs.sh`.
//!
//! - ingest: lines/s through berth's pipeline (engine stream → timestamps → sanitize → ring buffer)
//!   reading a container's finished log of LINES lines, none dropped, next to `docker logs` and
//!   `docker logs -t` to /dev/null in the same run (the ceiling), on 7-byte lines (`seq`) and on
//!   realistic ~150-byte lines with a timestamp-like prefix;
//! - live: realistic lines while the container is still writing, next to `docker logs -f -t`;
//!   fails unless every line arrived, the last one last;
//! - frame time p50/p99 of the log view (TestBackend 160x50, filter active) while it follows;
//! - RSS of a process holding 100 000 lines in a log view, and bytes per retained line;
//! - search and filter over 100 000 lines;
//! - rss8k: 100 000 lines of 8 KB into a following log view (the byte cap at work), RSS before,
//!   at its peak, and after the view is closed and freed memory handed back.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::action::Action;
use berth::app::App;
use berth::config::Config;
use berth::engine;
use berth::keymap::Keymap;
use berth::logs::stream::{self, LogEvent, LogOptions, Tail};
use berth::logs::{LogBuffer, Pattern};
use berth::ssh::SshOptions;
use berth::target::Target;
use berth::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "berth-bench-l-";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits (up to a minute) for the container to stop.
fn wait_exited(name: &str) {
    for _ in 0..600 {
        if docker(&["inspect", "-f", "{{.State.Running}}", name]) == "false" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cleanup() {
    let ids = docker(&["ps", "-aq", "--filter", &format!("name={PREFIX}")]);
    for id in ids.split_whitespace() {
        docker(&["rm", "-f", id]);
    }
}

fn lines_wanted() -> u64 {
    std::env::var("LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Seconds `docker logs ARGS NAME > /dev/null` takes.
fn docker_logs_secs(args: &[&str], name: &str) -> f64 {
    let start = Instant::now();
    let status = Command::new("docker")
        .arg("logs")
        .args(args)
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("docker logs");
    assert!(status.success());
    start.elapsed().as_secs_f64()
}

/// Streams a container's log through berth's pipeline into a ring buffer; returns (lines, secs,
/// last line's text).
async fn berth_ingest(
    eng: &engine::Engine,
    id: &str,
    follow: bool,
    until: u64,
) -> (u64, f64, String) {
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let options = LogOptions {
        follow,
        tail: Tail::All,
        ..LogOptions::default()
    };
    let mut buffer = LogBuffer::new(100_000);
    let start = Instant::now();
    stream::spawn(
        eng.docker.clone(),
        vec![id.to_string()],
        options,
        tx,
        cancel.clone(),
    );
    let mut n = 0u64;
    while let Some(ev) = rx.recv().await {
        match ev {
            LogEvent::Lines(lines) => {
                n += lines.len() as u64;
                buffer.extend(lines);
                if n >= until {
                    break;
                }
            }
            LogEvent::Ended => break,
            LogEvent::Status { .. } => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    cancel.cancel();
    let last = buffer
        .get(buffer.len().saturating_sub(1))
        .map(|l| l.text.to_string())
        .unwrap_or_default();
    (n, secs, last)
}

/// CPU seconds this process has used (user + system).
fn cpu_secs() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// berth's side alone, no engine: engine-shaped frames (timestamp, text, newline) through the frame
/// parser (timestamps, resume check, sanitize, level) into the ring buffer.
fn pipeline_alone(n: u64) {
    let frames: Vec<Vec<u8>> = (1..=n)
        .map(|i| {
            format!(
                "2026-11-24T03:{:02}:{:02}.{:09}Z level=INFO msg=\"request handled\" path=/api/orders/{i} status=200\n",
                (i / 60_000_000) % 60,
                (i / 1_000_000) % 60,
                i % 1_000_000 * 1000
            )
            .into_bytes()
        })
        .collect();
    let mut parser = berth::logs::frames::FrameParser::new(0);
    let mut buffer = LogBuffer::new(100_000);
    let start = Instant::now();
    let mut batch = Vec::with_capacity(1024);
    for chunk in frames.chunks(1024) {
        for f in chunk {
            parser.frame(berth::logs::StreamKind::Stdout, f, &mut batch);
        }
        buffer.extend(batch.drain(..));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(buffer.next_seq(), n, "every frame became a line");
    println!(
        "berth pipeline alone (no engine): {:>10.0} lines/s ({:.0} ns per line, 90-byte lines)",
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
}

/// The two kinds of log line the ingest is measured on.
#[derive(Clone, Copy)]
enum LineCase {
    /// `seq`: 1–7 bytes a line; the engine's per-line cost dominates.
    Short,
    /// ~150 bytes with a timestamp-like prefix and key=value fields, as a web service logs.
    Realistic,
}

impl LineCase {
    fn describe(self) -> &'static str {
        match self {
            LineCase::Short => "7-byte lines (seq)",
            LineCase::Realistic => "realistic ~150-byte lines",
        }
    }

    /// A busybox shell command that writes `n` lines of this kind and exits.
    fn script(self, n: u64) -> String {
        match self {
            LineCase::Short => format!("seq 1 {n}"),
            LineCase::Realistic => format!(
                "awk 'BEGIN {{ for (i = 1; i <= {n}; i++) printf \"2026-11-24T03:%02d:%02d.%06dZ INFO  http request handled method=GET path=/api/orders/%d status=200 duration_ms=%d user=u%05d trace=%08x%08x\\n\", int(i / 60000000) % 60, int(i / 1000000) % 60, i % 1000000, i, i % 97, i % 50000, (i * 2654435761) % 4294967296, i }}'"
            ),
        }
    }

    /// Whether `last` is line `n` of this kind.
    fn is_last(self, last: &str, n: u64) -> bool {
        match self {
            LineCase::Short => last == n.to_string(),
            LineCase::Realistic => last.contains(&format!(" path=/api/orders/{n} ")),
        }
    }
}

/// Ingest of a finished log of `n` lines of one kind: `docker logs`, `docker logs -t` (berth always
/// asks for timestamps) and berth's pipeline on the same log, best of 3, interleaved.
async fn ingest(eng: &engine::Engine, case: LineCase, n: u64) {
    let name = format!("{PREFIX}done");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "berth-test/logger",
        "sh",
        "-c",
        &case.script(n),
    ]);
    wait_exited(&name);
    let id = docker(&["inspect", "-f", "{{.Id}}", &name]);
    let bytes: u64 = docker(&["inspect", "-f", "{{.LogPath}}", &name])
        .parse::<std::path::PathBuf>()
        .ok()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "\n== ingest of a finished log: {n} {} (json-file log {:.0} MB), best of 3",
        case.describe(),
        bytes as f64 / 1e6
    );
    let mut plain = f64::MAX;
    let mut stamped = f64::MAX;
    let mut ours = f64::MAX;
    let mut cpu = f64::MAX;
    for _ in 0..3 {
        plain = plain.min(docker_logs_secs(&[], &name));
        stamped = stamped.min(docker_logs_secs(&["-t"], &name));
        let cpu_before = cpu_secs();
        let (got, secs, last) = berth_ingest(eng, &id, false, u64::MAX).await;
        cpu = cpu.min(cpu_secs() - cpu_before);
        assert_eq!(got, n, "berth delivered every line");
        assert!(
            case.is_last(&last, n),
            "the last line is the last one written: {last}"
        );
        ours = ours.min(secs);
    }
    let rate = |s: f64| n as f64 / s;
    println!(
        "docker logs    > /dev/null : {:>10.0} lines/s ({plain:.2} s)",
        rate(plain)
    );
    println!(
        "docker logs -t > /dev/null : {:>10.0} lines/s ({stamped:.2} s)",
        rate(stamped)
    );
    println!(
        "berth pipeline             : {:>10.0} lines/s ({ours:.2} s) = {:.0}% of docker logs, {:.0}% of docker logs -t",
        rate(ours),
        100.0 * plain / ours,
        100.0 * stamped / ours
    );
    println!(
        "berth CPU for it           : {cpu:.2} s ({:.2} µs per line: berth alone could take {:.0} lines/s)",
        cpu * 1e6 / n as f64,
        n as f64 / cpu
    );
    docker(&["rm", "-f", &name]);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Sections to run: `ONLY=ingest,live,frames,search,rss,rss8k` (default all).
fn wanted(section: &str) -> bool {
    std::env::var("ONLY")
        .map(|o| o.split(',').any(|s| s == section))
        .unwrap_or(true)
}

fn main() {
    if std::env::args().any(|a| a == "--rss-child") {
        rss_child();
        return;
    }
    if std::env::args().any(|a| a == "--rss-8k-child") {
        rss_8k_child();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    cleanup();
    rt.block_on(run());
    cleanup();
}

async fn run() {
    let n = lines_wanted();
    let eng = engine::connect(&Target::local(), &SshOptions::default())
        .await
        .expect("local engine");
    println!(
        "engine: Docker {} (API {}), {} lines per run, {} CPUs",
        eng.version.engine,
        eng.version.api,
        n,
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );

    if wanted("ingest") {
        // Both cases in the same run: the 7-byte lines of `seq` measure the engine's per-line
        // cost; the realistic lines (timestamp-like prefix, ~150 bytes) what a real service logs.
        for case in [LineCase::Short, LineCase::Realistic] {
            ingest(&eng, case, n).await;
        }
        pipeline_alone(n);
    }
    if wanted("live") {
        // Following a writer that is still writing: berth and `docker logs -f -t` side by side.
        let case = LineCase::Realistic;
        println!("\n== following a live writer ({n} {})", case.describe());
        let live = format!("{PREFIX}live");
        docker(&[
            "run",
            "-d",
            "--name",
            &live,
            "berth-test/logger",
            "sh",
            "-c",
            &format!("sleep 1; {}", case.script(n)),
        ]);
        let live_id = docker(&["inspect", "-f", "{{.Id}}", &live]);
        let cli = {
            let live = live.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut child = Command::new("docker")
                    .args(["logs", "-f", "-t", &live])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut out = child.stdout.take().unwrap();
                let mut count = 0u64;
                let mut buf = vec![0u8; 1 << 16];
                while count < n {
                    match std::io::Read::read(&mut out, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => count += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64,
                    }
                }
                let secs = start.elapsed().as_secs_f64();
                let _ = child.kill();
                let _ = child.wait();
                (count, secs)
            })
        };
        let (got, secs, last) = berth_ingest(&eng, &live_id, true, n).await;
        let (cli_got, cli_secs) = cli.join().unwrap();
        println!(
            "docker logs -f -t : {cli_got} lines in {cli_secs:.2} s (includes the 1 s start delay)"
        );
        println!("berth (follow)    : {got} lines in {secs:.2} s (includes the 1 s start delay)");
        assert_eq!(got, n, "berth dropped lines while following");
        assert!(
            case.is_last(&last, n),
            "the last line followed is the last one written: {last}"
        );
        println!("berth (follow)    : none dropped ({got} of {n}, the last one last)");
        docker(&["rm", "-f", &live]);
    }
    if wanted("frames") {
        frames(&eng).await;
    }
    if wanted("search") {
        search();
    }
    if wanted("rss") {
        rss();
    }
    if wanted("rss8k") {
        rss_8k();
    }
}

/// Frame times of the log view while it follows a fast stream with a filter on.
async fn frames(eng: &engine::Engine) {
    let n = lines_wanted().min(500_000);
    let name = format!("{PREFIX}frames");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "berth-test/logger",
        "sh",
        "-c",
        &format!("seq 1 {n}"),
    ]);
    wait_exited(&name);
    let id = docker(&["inspect", "-f", "{{.Id}}", &name]);
    let mut app = console_160x50();
    let cmds = app.open_logs("bench".into(), vec![id.clone()]);
    let Some(berth::app::Command::OpenLogs { view, .. }) = cmds.first() else {
        panic!("no stream asked for")
    };
    let view = *view;
    app.run_palette("grep 7$");
    app.update(Action::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('t'),
    )));
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    stream::spawn(
        eng.docker.clone(),
        vec![id.clone()],
        LogOptions {
            follow: true,
            tail: Tail::All,
            ..LogOptions::default()
        },
        tx,
        cancel.clone(),
    );
    let mut draw_ms = Vec::new();
    let mut update_ms = Vec::new();
    let mut got = 0u64;
    while got < n {
        let Some(ev) = rx.recv().await else { break };
        if let LogEvent::Lines(l) = &ev {
            got += l.len() as u64;
        }
        let t = Instant::now();
        app.update(Action::Logs { view, event: ev });
        update_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        terminal.draw(|f| berth::ui::draw(f, &app)).expect("draws");
        draw_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    cancel.cancel();
    draw_ms.sort_by(f64::total_cmp);
    update_ms.sort_by(f64::total_cmp);
    let shown = app.logs.as_ref().map(|v| v.buffer.len()).unwrap_or(0);
    println!(
        "\n== log view frames, 160x50, filter /7$/ + timestamps, following {got} lines ({} frames, {shown} lines shown)",
        draw_ms.len()
    );
    println!(
        "draw   p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        percentile(&draw_ms, 0.5),
        percentile(&draw_ms, 0.99),
        draw_ms.last().copied().unwrap_or(0.0)
    );
    println!(
        "update p50 {:.3} ms  p99 {:.3} ms  (a batch of up to 1024 lines, filter index included)",
        percentile(&update_ms, 0.5),
        percentile(&update_ms, 0.99)
    );
    docker(&["rm", "-f", &name]);
}

/// Search and filter over 100 000 lines like a web service writes.
fn search() {
    let mut buffer = LogBuffer::new(100_000);
    buffer.extend(berth::fixtures::log_lines(100_000, 1));
    let p = Pattern::new("orders/4242\\b", true).unwrap();
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..10 {
        let t = Instant::now();
        found = buffer.count_matches(&p);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "\n== search over 100 000 lines (count every match of /orders/4242\\b/i, {found} found)"
    );
    println!(
        "median {:.1} ms  max {:.1} ms",
        percentile(&times, 0.5),
        times[times.len() - 1]
    );
    let t = Instant::now();
    let next = buffer.find(&p, 99_999, false);
    println!(
        "N from the newest line: {:.1} ms (found at {next:?})",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    buffer.set_filter(Some(berth::logs::LineFilter {
        pattern: Pattern::new("level=error", true).unwrap(),
        invert: false,
    }));
    println!(
        "setting a filter over 100 000 lines: {:.1} ms ({} kept)",
        t.elapsed().as_secs_f64() * 1000.0,
        buffer.len()
    );
}

/// RSS of a fresh process holding a full 100 000-line log view.
fn rss() {
    in_fresh_process("--rss-child");
}

/// Runs this bench again with `flag` and prints what it printed: a memory figure of a process that
/// did nothing else.
fn in_fresh_process(flag: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg(flag)
        .output()
        .expect("runs itself");
    print!("\n{}", String::from_utf8_lossy(&out.stdout));
}

/// The console as the figures see it: default config, 160 x 50, connected (a console still
/// connecting covers its body, and keys such as Esc in the log view do nothing there).
fn console_160x50() -> App {
    let mut app = App::new(
        Config::default(),
        Theme::default(),
        Keymap::default(),
        chrono::Utc::now(),
    );
    app.update(Action::Resize(160, 50));
    let _ = app.connect(Target::local());
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: berth::action::EngineEvent::Connected {
            transport: "unix socket".into(),
            version: berth::engine::EngineVersion::default(),
        },
    });
    app
}

fn rss_child() {
    let before = rss_kib();
    let mut app = console_160x50();
    let _ = app.open_logs("rss".into(), vec!["0123456789ab".into()]);
    let view = app.logs.as_ref().unwrap().id;
    let empty = rss_kib();
    // 150 000 lines through a 100 000-line ring, made and handed over in stream-sized batches so
    // nothing but the view holds them.
    let mut text = 0usize;
    for batch in 0..300u64 {
        let lines: Vec<berth::logs::LogLine> = (0..500u64)
            .map(|k| {
                let i = batch * 500 + k;
                let t = format!(
                    "2026-11-24T03:00:00Z level=INFO msg=\"request handled\" path=/api/orders/{i} status=200 ms={}",
                    i % 97
                );
                berth::logs::LogLine::new(
                    i as i64,
                    0,
                    berth::logs::StreamKind::Stdout,
                    t.as_bytes(),
                    0,
                )
            })
            .collect();
        if batch >= 100 {
            text += lines.iter().map(|l| l.text.len()).sum::<usize>();
        }
        app.update(Action::Logs {
            view,
            event: LogEvent::Lines(lines),
        });
    }
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
    terminal.draw(|f| berth::ui::draw(f, &app)).unwrap();
    let full = rss_kib();
    let v = app.logs.as_ref().unwrap();
    let retained = v.buffer.retained();
    println!(
        "== memory: {retained} retained lines (avg text {} bytes)",
        text / retained.max(1)
    );
    println!(
        "process RSS {:.1} MiB (at start {:.1} MiB); the log view adds {:.1} MiB = {} bytes per line; LogLine struct {} bytes",
        full as f64 / 1024.0,
        before as f64 / 1024.0,
        (full.saturating_sub(empty)) as f64 / 1024.0,
        (full.saturating_sub(empty)) * 1024 / retained.max(1) as u64,
        std::mem::size_of::<berth::logs::LogLine>()
    );
}

/// RSS of a fresh process while 100 000 lines of 8 KB stream into a log view, and after it closes.
fn rss_8k() {
    in_fresh_process("--rss-8k-child");
}

fn rss_8k_child() {
    const LINES: u64 = 100_000;
    const LINE_BYTES: usize = 8 * 1024;
    const BATCH: u64 = 100;
    let mut app = console_160x50();
    let before = rss_kib();
    let _ = app.open_logs("rss8k".into(), vec!["0123456789ab".into()]);
    let view = app.logs.as_ref().unwrap().id;
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let mut peak = before;
    for batch in 0..LINES / BATCH {
        let lines: Vec<berth::logs::LogLine> = (0..BATCH)
            .map(|k| {
                let i = batch * BATCH + k;
                let mut t = format!("2026-11-24T03:00:00Z level=INFO line={i} payload=");
                t.extend(std::iter::repeat_n('x', LINE_BYTES - t.len()));
                berth::logs::LogLine::new(
                    i as i64,
                    0,
                    berth::logs::StreamKind::Stdout,
                    t.as_bytes(),
                    0,
                )
            })
            .collect();
        app.update(Action::Logs {
            view,
            event: LogEvent::Lines(lines),
        });
        // A frame now and then, as the console draws while following.
        if batch % 50 == 0 {
            terminal.draw(|f| berth::ui::draw(f, &app)).unwrap();
            peak = peak.max(rss_kib());
        }
    }
    terminal.draw(|f| berth::ui::draw(f, &app)).unwrap();
    let following = rss_kib();
    peak = peak.max(following);
    let v = app.logs.as_ref().unwrap();
    let (retained, held) = (v.buffer.retained(), v.buffer.bytes());
    // Esc closes the view as in the console; the runner then runs CloseLogs, which hands freed
    // memory back to the system.
    let cmds = app.update(Action::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Esc,
        crossterm::event::KeyModifiers::NONE,
    )));
    assert!(app.logs.is_none(), "Esc closed the log view ({cmds:?})");
    berth::tui::release_freed_memory();
    let after = rss_kib();
    let mib = |k: u64| k as f64 / 1024.0;
    println!("== memory, {LINES} lines of {LINE_BYTES} bytes into a following log view");
    println!(
        "view holds {retained} lines, {:.1} MiB of text (the [logs] max_bytes cap)",
        held as f64 / 1048576.0
    );
    println!(
        "process RSS: before {:.1} MiB, while following {:.1} MiB, peak {:.1} MiB, after Esc {:.1} MiB",
        mib(before),
        mib(following),
        mib(peak),
        mib(after)
    );
}
