//! Live logs against the real engine (and a real sshd for the reconnect): what reaches the screen
//! is inert, `berth logs` prints every line in order, replicas merge with compose prefixes, a removed
//! container ends its stream cleanly, and a stream cut by an SSH drop resumes without gap or
//! duplicate.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth::engine;
use berth::logs::LogLine;
use berth::logs::stream::{self, LogEvent, LogOptions, SourceStatus, Tail};
use berth::ssh::SshOptions;
use berth::target::Target;
use common::sshd::trusted_pair;
use common::{Scope, berth, docker, wait_until};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Follows every line of one container from the start.
fn follow_all(
    eng: &engine::Engine,
    id: &str,
) -> (
    mpsc::Receiver<LogEvent>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let task = stream::spawn(
        eng.docker.clone(),
        vec![id.to_string()],
        LogOptions {
            tail: Tail::All,
            ..LogOptions::default()
        },
        tx,
        cancel.clone(),
    );
    (rx, cancel, task)
}

/// `seq=N` of the logger's stdout lines (`msg=tick`), in the order printed.
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.contains("msg=tick"))
        .filter_map(|l| {
            let rest = &l[l.find("seq=")? + 4..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn assert_contiguous(seqs: &[u64], from: u64) {
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(
            *s,
            from + i as u64,
            "line {i}: expected seq {} (gap or duplicate); around: {:?}",
            from + i as u64,
            &seqs[i.saturating_sub(3)..(i + 3).min(seqs.len())]
        );
    }
}

/// Waits until the container has written at least `n` tick lines (by the docker CLI's count).
fn wait_for_ticks(name: &str, n: usize) {
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            let (_, out) = common::docker_try(&["logs", name]);
            ticks(&out).len() >= n
        }),
        "{name} did not log {n} lines"
    );
}

#[test]
fn escape_sequences_and_binary_never_reach_the_output() {
    let scope = Scope::new("logesc");
    let name = scope.name("evil");
    let script = r#"printf '\033]0;pwned\007title\n'; printf '\033]52;c;ZXZpbA==\033\\clip\n'; printf '\033[2J\033[Hclear\033[31mred\033[0m\n'; printf '\033Pqdcs\033\\dcs \302\233 c1 \377\376 bin\n'; printf 'bell\007end\n'; printf 'done\n'"#;
    scope.run("evil", &["berth-test/logger", "sh", "-c", script]);
    assert!(wait_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || common::inspect(&name, "{{.State.Running}}") == "false"
    ));
    let out = berth()
        .args(["logs", &name])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = out.stdout;
    assert!(
        !bytes.iter().any(|&b| b == 0x1b || b == 0x07 || b == 0x9b),
        "raw controls leaked: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    let text = String::from_utf8(bytes).expect("output is valid UTF-8");
    assert!(!text.contains('\u{9b}'), "C1 CSI leaked");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        ["title", "clip", "clearred"],
        "sequences removed, text kept: {text}"
    );
    assert!(
        lines[3].starts_with("dcs ") && lines[3].contains('\u{fffd}'),
        "{text}"
    );
    assert_eq!(lines[4], "bell\u{2407}end");
    assert_eq!(lines[5], "done");
}

#[test]
fn cli_prints_every_line_in_order() {
    let scope = Scope::new("logcli");
    let name = scope.name("lg");
    scope.run("lg", &["-e", "LOG_INTERVAL=0.005", "berth-test/logger"]);
    wait_for_ticks(&name, 300);
    docker(&["kill", &name]);
    let (_, reference) = common::docker_try(&["logs", &name]);
    let want = ticks(&reference);

    let out = berth()
        .args(["logs", &name, "--tail", "all"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = ticks(&String::from_utf8_lossy(&out.stdout));
    assert!(got.len() >= 300, "{} lines", got.len());
    assert_contiguous(&got, 1);
    assert_eq!(got, want, "the same lines as docker logs");

    let out = berth()
        .args(["logs", &name, "--tail", "5", "--timestamps"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .all(|l| l.len() > 31 && l.as_bytes()[29] == b'Z'),
        "RFC 3339 nano timestamps first: {text}"
    );

    let bad = berth()
        .args(["logs", &name, "--since", "15x"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad since '15x'"), "{err}");
}

#[test]
fn cli_follow_prints_new_lines_and_a_closed_pipe_exits_quietly() {
    let scope = Scope::new("logfol");
    let name = scope.name("lg");
    scope.run("lg", &["-e", "LOG_INTERVAL=0.01", "berth-test/logger"]);
    wait_for_ticks(&name, 20);
    let mut child = berth()
        .args(["logs", &name, "--follow", "--tail", "all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seqs = Vec::new();
    let start = Instant::now();
    // Reads until well past what existed when it started: those lines came by following.
    for line in BufReader::new(stdout).lines().take(5_000) {
        let Ok(line) = line else { break };
        seqs.extend(ticks(&line));
        if seqs.len() >= 300 || start.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    // Dropping the reader closes the pipe: berth must exit on its own, quietly, with success.
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("berth logs --follow did not exit after its pipe closed")
    });
    assert!(status.success(), "exit status {status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.is_empty(), "quiet on a closed pipe: {err}");
    assert!(seqs.len() >= 300, "followed {} lines", seqs.len());
    assert_contiguous(&seqs, 1);
}

#[test]
fn a_service_merges_its_replicas_with_prefixes_in_time_order() {
    let scope = Scope::new("logsvc");
    let args = ["-e", "LOG_INTERVAL=0.01", "berth-test/logger"];
    scope.run_service("app", 1, &args);
    scope.run_service("app", 2, &args);
    let (n1, n2) = (scope.name("app-1"), scope.name("app-2"));
    wait_for_ticks(&n1, 100);
    wait_for_ticks(&n2, 100);
    docker(&["kill", &n1, &n2]);
    let service = format!("{}/app", scope.project());
    let out = berth()
        .args(["logs", &service, "--timestamps"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut per = [Vec::new(), Vec::new()];
    let mut last_ts = String::new();
    for line in text.lines() {
        let (prefix, rest) = line.split_once(" | ").expect("every line has a prefix");
        let i = match prefix.trim_end() {
            "app-1" => 0,
            "app-2" => 1,
            other => panic!("unexpected prefix {other:?}"),
        };
        let ts = rest.split_whitespace().next().unwrap().to_string();
        assert!(ts >= last_ts, "merged in time order: {ts} after {last_ts}");
        last_ts = ts;
        per[i].extend(ticks(rest));
    }
    for (i, seqs) in per.iter().enumerate() {
        assert!(seqs.len() >= 100, "replica {} gave {}", i + 1, seqs.len());
        assert_contiguous(seqs, 1);
    }
}

async fn collect_until(
    rx: &mut mpsc::Receiver<LogEvent>,
    lines: &mut Vec<LogLine>,
    statuses: &mut Vec<SourceStatus>,
    within: Duration,
    mut done: impl FnMut(&[LogLine], &[SourceStatus]) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    for _ in 0..1_000_000 {
        if done(lines, statuses) {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(LogEvent::Lines(l))) => lines.extend(l),
            Ok(Some(LogEvent::Status { status, .. })) => statuses.push(status),
            Ok(Some(LogEvent::Ended)) | Ok(None) => return done(lines, statuses),
            Err(_) => return false,
        }
    }
    false
}

fn line_ticks(lines: &[LogLine]) -> Vec<u64> {
    let text: Vec<&str> = lines.iter().map(|l| &*l.text).collect();
    ticks(&text.join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_container_ends_its_stream_with_a_status() {
    let scope = Scope::new("logrm");
    let id = scope.run("lg", &["-e", "LOG_INTERVAL=0.05", "berth-test/logger"]);
    let eng = engine::connect(&Target::local(), &SshOptions::default())
        .await
        .unwrap();
    let (mut rx, _cancel, task) = follow_all(&eng, &id);
    let (mut lines, mut statuses) = (Vec::new(), Vec::new());
    assert!(
        collect_until(
            &mut rx,
            &mut lines,
            &mut statuses,
            Duration::from_secs(20),
            |l, _| { line_ticks(l).len() >= 10 }
        )
        .await
    );
    assert!(
        lines
            .iter()
            .any(|l| l.stream == berth::logs::StreamKind::Stderr)
    );
    docker(&["rm", "-f", &id]);
    let ended = collect_until(
        &mut rx,
        &mut lines,
        &mut statuses,
        Duration::from_secs(30),
        |_, s| s.contains(&SourceStatus::Removed),
    )
    .await;
    assert!(ended, "statuses: {statuses:?}");
    let retries = statuses
        .iter()
        .filter(|s| matches!(s, SourceStatus::Reconnecting { .. }))
        .count();
    assert!(retries <= 1, "no retry storm: {statuses:?}");
    assert!(
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_ok(),
        "the stream task ends by itself"
    );
    assert_contiguous(&line_ticks(&lines), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_drop_resumes_without_gap_or_duplicate() {
    let (mut sshd, home) = trusted_pair();
    let t = home.box_target(&sshd, "  ServerAliveInterval 1\n");
    let eng = engine::connect(&t, &home.options()).await.unwrap();

    let scope = Scope::new("logssh");
    let id = scope.run("lg", &["-e", "LOG_INTERVAL=0.02", "berth-test/logger"]);
    let (mut rx, cancel, _task) = follow_all(&eng, &id);
    let (mut lines, mut statuses) = (Vec::new(), Vec::new());
    assert!(
        collect_until(
            &mut rx,
            &mut lines,
            &mut statuses,
            Duration::from_secs(30),
            |l, _| { line_ticks(l).len() >= 50 }
        )
        .await,
        "lines flow over ssh"
    );
    sshd.stop();
    // The logger keeps writing while the link is down.
    let cut_at = std::time::Instant::now();
    let noticed = collect_until(
        &mut rx,
        &mut lines,
        &mut statuses,
        Duration::from_secs(30),
        |_, s| {
            s.iter()
                .any(|s| matches!(s, SourceStatus::Reconnecting { .. }))
        },
    )
    .await;
    assert!(noticed, "the cut is shown as reconnecting: {statuses:?}");
    std::thread::sleep(Duration::from_secs(2).saturating_sub(cut_at.elapsed()));
    sshd.restart();
    let before = line_ticks(&lines).last().copied().unwrap_or(0);
    // Well past the outage: lines written during it must all be there, once.
    assert!(
        collect_until(
            &mut rx,
            &mut lines,
            &mut statuses,
            Duration::from_secs(90),
            |l, _| { line_ticks(l).last().is_some_and(|s| *s >= before + 200) }
        )
        .await,
        "lines resume after the restart; statuses {statuses:?}, last seq {:?}",
        line_ticks(&lines).last()
    );
    let seqs = line_ticks(&lines);
    assert_contiguous(&seqs, 1);
    // stderr too: every 7th line, each once.
    let stderr: Vec<u64> = lines
        .iter()
        .filter(|l| l.stream == berth::logs::StreamKind::Stderr)
        .filter_map(|l| {
            l.text
                .strip_prefix("seq=")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let last = *seqs.last().unwrap();
    let want: Vec<u64> = (1..=last).filter(|s| s % 7 == 0).collect();
    assert_eq!(
        &stderr[..want.len().min(stderr.len())],
        &want[..want.len().min(stderr.len())]
    );
    assert!(
        stderr.len() + 1 >= want.len(),
        "stderr lines: {} of {}",
        stderr.len(),
        want.len()
    );
    cancel.cancel();
}

#[test]
fn cli_follow_ends_when_the_container_stops() {
    let scope = Scope::new("logstop");
    let name = scope.name("short");
    scope.run(
        "short",
        &[
            "berth-test/logger",
            "sh",
            "-c",
            r#"sleep 1; for i in $(seq 1 50); do echo "seq=$i msg=tick"; done; sleep 1"#,
        ],
    );
    let mut child = berth()
        .args(["logs", &name, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(status) = status else {
        let _ = child.kill();
        panic!("berth logs --follow kept running after the container stopped");
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seqs = ticks(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(seqs.len(), 50);
    assert_contiguous(&seqs, 1);
}

/// `berth -s box logs NAME --follow --tail all`, its stdout read as the logger's sequence numbers
/// and its stderr as lines, both on threads of their own so every wait is bounded by the clock.
struct FollowedLogs {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<(bool, String)>,
    seqs: Vec<u64>,
    errs: Vec<String>,
}

impl FollowedLogs {
    fn start(home: &std::path::Path, name: &str) -> FollowedLogs {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        common::isolate(&mut cmd, home);
        let mut child = cmd
            .args(["-s", "box", "logs", name, "--follow", "--tail", "all"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        for (is_err, pipe) in [
            (
                false,
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            (true, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().take(100_000) {
                    let Ok(line) = line else { break };
                    if tx.send((is_err, line)).is_err() {
                        break;
                    }
                }
            });
        }
        FollowedLogs {
            child,
            rx,
            seqs: Vec::new(),
            errs: Vec::new(),
        }
    }

    /// Reads until `done` holds or `within` passes; whether `done` holds.
    fn read_until(&mut self, within: Duration, done: &dyn Fn(&[u64], &[String]) -> bool) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until && !done(&self.seqs, &self.errs) {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok((true, l)) => self.errs.push(l),
                Ok((false, l)) => self.seqs.extend(ticks(&l)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        done(&self.seqs, &self.errs)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `berth logs --follow` over SSH when the link freezes (sshd's session stopped: TCP open, peer
/// silent): stderr says it is reconnecting within the keepalive bound instead of printing nothing,
/// a new link is dialled, stderr says it resumed, and stdout goes on with no line lost or doubled.
#[test]
fn cli_follow_over_a_frozen_link_says_so_and_resumes_without_a_gap() {
    let (sshd, home) = trusted_pair();
    home.write_box_config(&sshd, "  ServerAliveInterval 1\n  ServerAliveCountMax 3\n");
    let scope = Scope::new("logfrz");
    let name = scope.name("lg");
    scope.run("lg", &["-e", "LOG_INTERVAL=0.05", "berth-test/logger"]);
    wait_for_ticks(&name, 5);

    let mut f = FollowedLogs::start(home.path(), &name);
    assert!(
        f.read_until(Duration::from_secs(30), &|s, _| s.len() >= 20),
        "followed {} lines before the freeze; stderr: {:?}",
        f.seqs.len(),
        f.errs
    );

    sshd.freeze_sessions();
    let frozen_at = f.seqs.len();
    assert!(
        f.read_until(Duration::from_secs(30), &|_, e| e
            .iter()
            .any(|l| l.contains("reconnecting"))),
        "the frozen link is reported on stderr: {:?}",
        f.errs
    );
    assert!(
        f.read_until(Duration::from_secs(60), &|s, e| e
            .iter()
            .any(|l| l.contains("resumed"))
            && s.len() >= frozen_at + 40),
        "resumed over a new link and went on (lines {frozen_at} → {}); stderr: {:?}",
        f.seqs.len(),
        f.errs
    );
    f.stop();
    assert!(
        f.errs.iter().all(|l| l.starts_with("berth: ")),
        "every note is one prefixed line: {:?}",
        f.errs
    );
    assert_contiguous(&f.seqs, f.seqs[0]);
}

/// A log view's bounds drop the oldest lines and say so; `:save-all`'s reading of the same range
/// writes every line the engine has, in order, to a new file.
#[tokio::test(flavor = "multi_thread")]
async fn a_bounded_view_says_what_it_dropped_and_save_range_writes_every_line() {
    let scope = Scope::new("logsave");
    let name = scope.name("lg");
    scope.run("lg", &["-e", "LOG_INTERVAL=0.002", "berth-test/logger"]);
    wait_for_ticks(&name, 400);
    docker(&["kill", &name]);
    let (_, reference) = common::docker_try(&["logs", &name]);
    let want = ticks(&reference);
    assert!(want.len() >= 400, "{} lines", want.len());

    let eng = engine::connect(&Target::local(), &SshOptions::default())
        .await
        .unwrap();
    let options = LogOptions {
        follow: false,
        tail: Tail::All,
        ..LogOptions::default()
    };
    // The view's ring with a bound of 100 lines, fed the whole range.
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    stream::spawn(
        eng.docker.clone(),
        vec![name.clone()],
        options.clone(),
        tx,
        cancel.clone(),
    );
    let mut ring = berth::logs::LogBuffer::with_limits(100, 64 * 1024 * 1024);
    let mut total = 0u64;
    for _ in 0..100_000 {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(LogEvent::Lines(lines))) => {
                total += lines.len() as u64;
                ring.extend(lines.iter().cloned());
            }
            Ok(Some(LogEvent::Status { .. })) => {}
            Ok(Some(LogEvent::Ended)) | Ok(None) => break,
            Err(_) => panic!("the stream stalled after {total} lines"),
        }
    }
    assert_eq!(
        ring.dropped(),
        Some((total - 100, berth::logs::Cap::Lines(100))),
        "{total} lines read"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.log");
    let sources = vec![berth::logs::LogSource {
        id: name.clone(),
        name: name.clone(),
        prefix: name.clone(),
    }];
    let (path, count) = berth::logs::save::save_range(
        &eng.docker,
        file.clone(),
        vec![name.clone()],
        sources,
        options,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(path, std::fs::canonicalize(&file).unwrap());
    assert_eq!(count, total);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(ticks(&saved), want, "every line the engine has, in order");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// `berth logs` prints a line past 64 KiB cut and says so on stderr, once, at the end.
#[test]
fn cli_says_when_it_cut_a_line() {
    let scope = Scope::new("logcut");
    let name = scope.name("long");
    scope.run(
        "long",
        &[
            "--entrypoint",
            "sh",
            "berth-test/web:v1",
            "-c",
            "head -c 70000 /dev/zero | tr '\\0' x; echo; echo short; sleep 600",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            common::docker_try(&["logs", &name]).1.contains("short")
        }),
        "the container never logged"
    );
    let out = berth()
        .args(["logs", &name, "--tail", "all"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("bytes cut)") && stdout.contains("short"),
        "{stdout:.200}"
    );
    assert_eq!(
        stderr.trim(),
        "berth: 1 line was longer than 64 KiB and was cut (it ends `… (N bytes cut)`)",
        "{stderr}"
    );
}

/// `berth logs --follow` while the server is cut off (sshd stopped whole, listener included: new
/// connections hang as behind a cut network): it says reconnecting, each try once, and never
/// "resumed" while cut off; once the server is back, "resumed · N lines caught up" with N the
/// lines written meanwhile (some, and no more than it printed since), with no line lost or doubled.
#[test]
fn cli_follow_says_resumed_only_when_the_engine_answers_again() {
    let (sshd, home) = trusted_pair();
    home.write_box_config(
        &sshd,
        "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n  ConnectTimeout 2\n",
    );
    let scope = Scope::new("logcut");
    let name = scope.name("lg");
    scope.run("lg", &["-e", "LOG_INTERVAL=0.05", "berth-test/logger"]);
    wait_for_ticks(&name, 5);

    let mut f = FollowedLogs::start(home.path(), &name);
    assert!(
        f.read_until(Duration::from_secs(30), &|s, _| s.len() >= 20),
        "followed {} lines first; stderr: {:?}",
        f.seqs.len(),
        f.errs
    );

    sshd.freeze_all();
    let frozen_at = f.seqs.len();
    assert!(
        f.read_until(Duration::from_secs(30), &|_, e| e
            .iter()
            .any(|l| l.contains("reconnecting"))),
        "the cut is reported on stderr: {:?}",
        f.errs
    );
    // Cut off a while longer: tries go on, none of them may say it resumed.
    f.read_until(Duration::from_secs(5), &|_, _| false);
    let while_cut = f.errs.clone();
    sshd.thaw_all();
    assert!(
        !while_cut.iter().any(|l| l.contains("resumed")),
        "resumed while the server was unreachable: {while_cut:?}"
    );
    assert!(
        f.read_until(Duration::from_secs(60), &|s, e| e
            .iter()
            .any(|l| l.contains("resumed"))
            && s.len() >= frozen_at + 40),
        "resumed once the server answered (lines {frozen_at} → {}); stderr: {:?}",
        f.seqs.len(),
        f.errs
    );
    let resumed = f
        .errs
        .iter()
        .find(|l| l.contains("resumed"))
        .unwrap()
        .clone();
    let caught_up: usize = resumed
        .split("resumed · ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {resumed:?}"));
    // The logger wrote 20 lines a second for the 5 s and more it was cut off: far more than 20
    // were caught up, and every one of them is printed (stdout may lag stderr: read it up).
    assert!(caught_up >= 20, "{resumed}");
    assert!(
        f.read_until(Duration::from_secs(30), &|s, _| s.len()
            >= frozen_at + caught_up),
        "caught up {caught_up} lines but printed {} since the cut: {:?}",
        f.seqs.len() - frozen_at,
        f.errs
    );
    f.stop();
    // Each try is announced once.
    let mut tries: Vec<&str> = f
        .errs
        .iter()
        .filter_map(|l| l.split("(try ").nth(1))
        .filter_map(|r| r.split(':').next())
        .collect();
    let announced = tries.len();
    tries.dedup();
    assert_eq!(tries.len(), announced, "a try said twice: {:?}", f.errs);
    assert_contiguous(&f.seqs, f.seqs[0]);
}

/// A container that writes nothing until told: `burst(name, n, count)` makes it print `count`
/// more logger-style lines (`msg=tick seq=N`, numbered on from the last), all at once.
fn start_burst_writer(scope: &Scope, suffix: &str) -> String {
    let script = "i=0; n=1; while true; do if [ -f /tmp/burst$n ]; then c=$(cat /tmp/burst$n); j=0; \
                  while [ $j -lt $c ]; do i=$((i+1)); echo \"msg=tick seq=$i\"; j=$((j+1)); done; \
                  n=$((n+1)); fi; sleep 0.1; done";
    scope.run(
        suffix,
        &[
            "--stop-timeout",
            "1",
            "--entrypoint",
            "sh",
            "berth-test/web:v1",
            "-c",
            script,
        ],
    );
    scope.name(suffix)
}

/// Tells the writer to print its `n`-th burst of `count` lines (written whole, then renamed, so it
/// never reads half a number).
fn burst(name: &str, n: u32, count: u32) {
    docker(&[
        "exec",
        name,
        "sh",
        "-c",
        &format!("echo {count} > /tmp/next && mv /tmp/next /tmp/burst{n}"),
    ]);
}

/// `berth logs --follow` while the server is cut off (sshd stopped whole), and the container
/// writes a known number of lines (37) during the cut and none after: stderr never says resumed
/// while cut off (berth used to say `resumed · 0 lines caught up` then), and once the server is
/// back it says `resumed · 37 lines caught up`, exactly the lines written meanwhile, and prints
/// each of them once.
#[test]
fn cli_follow_counts_exactly_the_lines_written_while_cut_off() {
    let (sshd, home) = trusted_pair();
    home.write_box_config(
        &sshd,
        "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n  ConnectTimeout 2\n",
    );
    let scope = Scope::new("logcount");
    let name = start_burst_writer(&scope, "w");
    burst(&name, 1, 20);
    wait_for_ticks(&name, 20);

    let mut f = FollowedLogs::start(home.path(), &name);
    assert!(
        f.read_until(Duration::from_secs(30), &|s, _| s.len() >= 20),
        "followed {:?} first; stderr: {:?}",
        f.seqs,
        f.errs
    );
    sshd.freeze_all();
    assert!(
        f.read_until(Duration::from_secs(30), &|_, e| e
            .iter()
            .any(|l| l.contains("reconnecting"))),
        "the cut is reported on stderr: {:?}",
        f.errs
    );
    // Written while cut off, read by the docker CLI on the server's own socket.
    burst(&name, 2, 37);
    wait_for_ticks(&name, 57);
    f.read_until(Duration::from_secs(5), &|_, _| false);
    let while_cut = f.errs.clone();
    let printed_while_cut = f.seqs.len();
    sshd.thaw_all();
    assert!(
        !while_cut.iter().any(|l| l.contains("resumed")),
        "resumed while the server was unreachable: {while_cut:?}"
    );
    assert_eq!(printed_while_cut, 20, "nothing new came while cut off");
    assert!(
        f.read_until(Duration::from_secs(60), &|s, e| e
            .iter()
            .any(|l| l.contains("resumed"))
            && s.len() >= 57),
        "resumed once the server answered: {} lines; stderr: {:?}",
        f.seqs.len(),
        f.errs
    );
    // A moment more: nothing else may come (the writer is quiet, nothing is printed twice).
    f.read_until(Duration::from_secs(2), &|_, _| false);
    f.stop();
    let resumed: Vec<&String> = f.errs.iter().filter(|l| l.contains("resumed")).collect();
    assert_eq!(resumed.len(), 1, "{:?}", f.errs);
    assert!(
        resumed[0].contains("resumed · 37 lines caught up"),
        "{:?}",
        f.errs
    );
    assert_eq!(f.seqs.len(), 57, "{:?}", f.seqs);
    assert_contiguous(&f.seqs, 1);
}

/// The console's log view over SSH while the server is cut off whole (sshd stopped) and the
/// container writes 37 lines meanwhile: from the moment the header says the link is stale, the
/// title never says `● following` nor `resumed` (it said `● following` for seconds after the
/// header went stale); it says `◌ reconnecting (try N)`; once the server is back it says
/// `resumed · 37 lines caught up` and shows the last of them.
#[test]
fn console_log_view_says_reconnecting_while_cut_off_and_resumed_with_the_count_after() {
    let (sshd, home) = trusted_pair();
    home.write_box_config(
        &sshd,
        "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n  ConnectTimeout 2\n",
    );
    let scope = Scope::new("logview");
    let name = start_burst_writer(&scope, "w");
    burst(&name, 1, 20);
    wait_for_ticks(&name, 20);
    let home_dir = home.path().display().to_string();
    let mut s = common::pty::Session::start(&["-s", "box"], &[("HOME", home_dir.as_str())]);
    s.expect("● live", Duration::from_secs(60));
    s.type_keys(&format!(":logs {name}\r"));
    s.expect("seq=20", Duration::from_secs(30));
    s.expect("● following", Duration::from_secs(10));

    sshd.freeze_all();
    // Sampled every 50 ms while cut off: once stale, never following, never resumed.
    let mut stale_seen = false;
    let mut reconnecting_seen = false;
    let mut bad = None;
    let cut_until = Instant::now() + Duration::from_secs(30);
    let mut burst_sent = false;
    let mut after_burst = None;
    while Instant::now() < cut_until {
        let screen = s.text();
        if screen.contains("◌ stale") {
            stale_seen = true;
            if screen.contains("● following") || screen.contains("resumed") {
                bad = Some(screen.clone());
                break;
            }
        }
        reconnecting_seen |= screen.contains("◌ reconnecting (try");
        if reconnecting_seen && !burst_sent {
            burst(&name, 2, 37);
            wait_for_ticks(&name, 57);
            burst_sent = true;
            after_burst = Some(Instant::now());
        }
        // Cut off 5 s more once the writer wrote its lines.
        if after_burst.is_some_and(|t| t.elapsed() >= Duration::from_secs(5)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let while_cut = s.text();
    sshd.thaw_all();
    assert!(
        bad.is_none(),
        "following or resumed while stale:\n{}",
        bad.unwrap()
    );
    assert!(stale_seen, "the header said stale:\n{while_cut}");
    assert!(
        reconnecting_seen,
        "the title said reconnecting:\n{while_cut}"
    );
    assert!(burst_sent, "the cut lasted until the burst:\n{while_cut}");
    assert!(!while_cut.contains("seq=21"), "{while_cut}");
    s.expect("resumed · 37 lines caught up", Duration::from_secs(60));
    s.expect("seq=57", Duration::from_secs(10));
    s.expect("● following", Duration::from_secs(10));
    s.type_keys("\x1b");
    // Apart from the Esc: together they read as Alt-q.
    assert!(
        s.wait_for("● live", Duration::from_secs(10))
            && wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
                !s.text().contains("Logs ·")
            }),
        "{}",
        s.text()
    );
    s.quit_ok();
}
