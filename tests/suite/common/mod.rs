//! Shared helpers for integration tests: the real Docker engine via the docker CLI, unique container
//! names, cleanup that runs even when a test fails, and bounded waiting.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod compose;
pub mod dockerd;
pub mod pty;
pub mod registry;
pub mod relay;
pub mod sshd;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A process's stdout then its stderr, as one text for checks and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The longest any single docker CLI call in a test may take (an image build included).
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a one-shot berth CLI command in a test may take (a rollback waits for health).
pub const BERTH_TIMEOUT: Duration = Duration::from_secs(180);

/// `Command::output` with a deadline: stdout and stderr are read on their own threads (a full pipe
/// never blocks the child), and a child still running at the deadline is killed and reported.
pub trait OutputWithin {
    fn output_within(&mut self, within: Duration) -> std::io::Result<Output>;
}

impl OutputWithin for Command {
    fn output_within(&mut self, within: Duration) -> std::io::Result<Output> {
        use std::io::Read;
        let mut child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let reader_out = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let reader_err = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let mut status = None;
        wait_until(within, Duration::from_millis(20), || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{self:?} still ran after {within:?}; killed"),
            ));
        };
        Ok(Output {
            status,
            stdout: reader_out.join().unwrap_or_default(),
            stderr: reader_err.join().unwrap_or_default(),
        })
    }
}

/// A docker CLI command that talks to the engine the tests use, whatever the caller's environment
/// chose (the tests start their own second engine where they need one, with `-H`).
pub fn docker_cmd() -> Command {
    let mut c = Command::new("docker");
    c.env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null());
    c
}

/// Runs the docker CLI and returns trimmed stdout; panics with stderr when it fails or hangs.
pub fn docker(args: &[&str]) -> String {
    let out = docker_cmd()
        .args(args)
        .output_within(DOCKER_TIMEOUT)
        .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs the docker CLI, returning success and combined output, never panicking.
pub fn docker_try(args: &[&str]) -> (bool, String) {
    match docker_cmd().args(args).output_within(DOCKER_TIMEOUT) {
        Ok(o) => (o.status.success(), text(&o)),
        Err(e) => (false, e.to_string()),
    }
}

/// A name prefix unique to this test: every container and network it creates starts with it, and
/// dropping the scope removes them all, also when the test panics.
pub struct Scope {
    pub prefix: String,
}

impl Scope {
    pub fn new(area: &str) -> Scope {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("berth-t-{area}-{}-{n}-", std::process::id());
        Scope { prefix }
    }

    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// A compose-like project name for this scope.
    pub fn project(&self) -> String {
        self.prefix.trim_end_matches('-').to_string()
    }

    /// `docker run -d --name PREFIX+suffix ARGS…`, returning the container id.
    pub fn run(&self, suffix: &str, args: &[&str]) -> String {
        let name = self.name(suffix);
        let mut all = vec!["run", "-d", "--name", name.as_str()];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// Runs a container labelled as compose service `service`, replica `number`, of this scope's project.
    pub fn run_service(&self, service: &str, number: u32, args: &[&str]) -> String {
        let project = self.project();
        let suffix = format!("{service}-{number}");
        let l1 = format!("com.docker.compose.project={project}");
        let l2 = format!("com.docker.compose.service={service}");
        let l3 = format!("com.docker.compose.container-number={number}");
        let mut all = vec![
            "--label",
            l1.as_str(),
            "--label",
            l2.as_str(),
            "--label",
            l3.as_str(),
        ];
        all.extend_from_slice(args);
        self.run(&suffix, &all)
    }

    pub fn cleanup(&self) {
        let filter = format!("name={}", self.prefix);
        let (_, ids) = docker_try(&["ps", "-aq", "--filter", &filter]);
        let mut ids: Vec<String> = ids.split_whitespace().map(str::to_string).collect();
        ids.extend(berth_records_of(&self.prefix));
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = docker_try(&args);
        }
        let (_, nets) = docker_try(&["network", "ls", "-q", "--filter", &filter]);
        for n in nets.split_whitespace() {
            let _ = docker_try(&["network", "rm", n]);
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// berth's own containers for the services of a project or scope named `prefix…`: the run lock
/// (named after the service) and a rollback journal a test left behind (its label names the
/// replicas), so a failed test leaves no "rollback cut off" for the next one to see.
pub fn berth_records_of(prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let lock = format!("name=berth-lock-{prefix}");
    let (_, locks) = docker_try(&["ps", "-aq", "--filter", &lock]);
    ids.extend(locks.split_whitespace().map(str::to_string));
    let (_, journals) = docker_try(&[
        "ps",
        "-a",
        "--filter",
        "label=berth.run.journal",
        "--format",
        "{{.ID}} {{.Label \"berth.run.journal\"}}",
    ]);
    ids.extend(
        journals
            .lines()
            .filter(|l| l.contains(&format!("\"{prefix}")))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string),
    );
    ids
}

/// Polls `check` every `every` until it returns true or `within` passes. Bounded in time and count.
pub fn wait_until(within: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let max_polls = (within.as_millis() / every.as_millis().max(1)) as usize + 1;
    for _ in 0..max_polls {
        if check() {
            return true;
        }
        if start.elapsed() >= within {
            break;
        }
        std::thread::sleep(every);
    }
    check()
}

/// A TCP port on 127.0.0.1 that is free and stays this test process's until it exits.
///
/// A port the kernel hands out for `bind(0)` is free only at that moment: tests run in processes
/// of their own, side by side, and a rollback leaves its published port unbound between the old
/// container's stop and the new one's start, so another test could be given it and then find it
/// "already allocated". Ports here come from 20000–29999 (below the kernel's ephemeral range, so
/// no outgoing connection takes one), each reserved by an exclusive lock on a file named after it,
/// held until this process ends (the kernel drops the lock with the process, also on a crash).
pub fn free_port() -> u16 {
    use std::os::fd::AsRawFd;
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    const FIRST: u64 = 20_000;
    const COUNT: u64 = 10_000;
    let dir = std::env::temp_dir().join("berth-test-ports");
    std::fs::create_dir_all(&dir).expect("the port reservations' directory");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        ^ (std::process::id() as u64).wrapping_mul(7919);
    for i in 0..COUNT {
        let port = (FIRST + (seed + i * 7) % COUNT) as u16;
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        // SAFETY: flock(2) on an open file this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
        return port;
    }
    panic!("no free port in {FIRST}..{} on 127.0.0.1", FIRST + COUNT);
}

/// The body of `GET path` on a loopback port, `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split("\r\n\r\n").nth(1).map(|b| b.trim().to_string())
}

/// The status code of `GET path` on a loopback port, `None` when nothing answers HTTP.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1)?.parse().ok()
}

pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name])
}

/// A compose-labelled web service (`web`, replica 1, of the scope's project) on a fixed host port, with env and a label of its own.
pub fn web_service(scope: &Scope, image: &str, port: u16) -> String {
    let publish = format!("127.0.0.1:{port}:8080");
    scope.run_service(
        "web",
        1,
        &[
            "--stop-timeout",
            "1",
            "-p",
            &publish,
            "-e",
            "FOO=bar",
            "--label",
            "team=payments",
            "--restart",
            "unless-stopped",
            image,
        ],
    );
    let name = scope.name("web-1");
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(200),
            || inspect(&name, "{{.State.Health.Status}}") == "healthy"
        ),
        "fixture did not become healthy"
    );
    name
}

/// The web service of the scope's project (`web`, replica 1) at v2 on a fixed host port, healthy.
/// Its PID 1 ignores SIGTERM, so a stop takes the whole 4 s timeout: a berth killed during the stop
/// leaves a stop the engine is still carrying out.
pub fn slow_stop_web(scope: &Scope, port: u16) -> String {
    slow_stop_web_from(scope, port, "berth-test/web:v2")
}

/// `slow_stop_web` started from `image`.
pub fn slow_stop_web_from(scope: &Scope, port: u16, image: &str) -> String {
    let publish = format!("127.0.0.1:{port}:8080");
    scope.run_service("web", 1, &["--stop-timeout", "4", "-p", &publish, image]);
    let name = scope.name("web-1");
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            inspect(&name, "{{.State.Health.Status}}") == "healthy"
        }),
        "the service never became healthy"
    );
    name
}

/// Every tag of one test's image repository, removed with it (a retag adds tags of its own).
pub struct RepoTags(pub String);

impl Drop for RepoTags {
    fn drop(&mut self) {
        let (_, tags) = docker_try(&["images", &self.0, "--format", "{{.Repository}}:{{.Tag}}"]);
        for t in tags.lines() {
            let _ = docker_try(&["rmi", t]);
        }
    }
}

/// Whether a run journal on the server names the replica: a rollback on it was cut off, or runs.
pub fn has_run_journal(replica: &str) -> bool {
    docker(&[
        "ps",
        "-a",
        "--filter",
        "label=berth.run.journal",
        "--format",
        "{{.Label \"berth.run.journal\"}}",
    ])
    .contains(&format!("\"{replica}\""))
}

/// The image id a reference names.
pub fn image_id(reference: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", reference])
        .trim()
        .to_string()
}

/// A fresh, empty HOME for one berth process: no config, data, known_hosts or docker context of
/// the user running the tests (or of another test) can leak in. Kept on disk so a test can look at
/// what berth wrote; it lives under the system temp dir.
pub fn fresh_home() -> PathBuf {
    tempfile::Builder::new()
        .prefix("berth-test-home-")
        .tempdir()
        .expect("a temp dir")
        .keep()
}

/// Starts a runbook command (`berth rollback …`) and kills it (-9) `after` the line that starts its
/// step `step` (`→ N.`); the lines it printed up to there.
pub fn kill_at_step(cmd: &mut Command, step: u32, after: Duration) -> Vec<String> {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("berth starts");
    let marker = format!("→ {step}.");
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .take(200)
    {
        let here = line.starts_with(&marker);
        seen.push(line);
        if here {
            break;
        }
    }
    if !seen.iter().any(|l| l.starts_with(&marker)) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the run never reached step {step}: {seen:#?}");
    }
    std::thread::sleep(after);
    child.kill().unwrap();
    let _ = child.wait();
    seen
}

/// The berth binary isolated in `home`, with `--config config`, run to its end (bounded).
pub fn berth_with_config(
    home: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    isolate(&mut c, home);
    c.arg("--config")
        .arg(config)
        .args(args)
        .output_within(BERTH_TIMEOUT)
        .unwrap()
}

/// Clears every variable that would point a child process at another engine, config or data dir.
pub fn isolate<'a>(c: &'a mut Command, home: &std::path::Path) -> &'a mut Command {
    std::fs::create_dir_all(home).expect("a HOME for the child");
    c.env("HOME", home)
        // The machine's /etc/ssh/ssh_config is not the test's.
        .env("BERTH_SSH_SYSTEM_CONFIG", home.join("etc_ssh_config"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CONFIG")
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_DATA_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
}

/// The berth binary with its own empty HOME and none of the engine-choosing variables of the caller.
pub fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    isolate(&mut c, &fresh_home());
    c
}

/// A config file, data dir and HOME of one test's own, and the berth binary run with them
/// (stdin not a terminal, bounded in time).
pub struct RunEnv {
    pub dir: tempfile::TempDir,
}

impl RunEnv {
    /// With `config` as its config file's text.
    pub fn new(config: &str) -> RunEnv {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        RunEnv { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `berth --config …` with this HOME and data dir, not yet run.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        isolate(&mut c, &self.home())
            .arg("--config")
            .arg(self.config())
            .env("BERTH_DATA_DIR", self.data());
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output_within(BERTH_TIMEOUT)
            .expect("berth finishes")
    }

    /// The audit's last 100 lines, oldest first (each run writes `started`, then its result).
    pub fn audit_lines(&self) -> Vec<berth::runbook::AuditEntry> {
        berth::runbook::AuditLog::at(self.data().join("audit.jsonl"))
            .read_last(100)
            .unwrap()
    }
}

/// A file's sha256 as `sha256sum` reads it (not berth's own code).
pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The audit entries of `action` that ended (its `started` lines left out), oldest first, from
/// berth's data directory under the fresh HOME `home`.
pub fn ended_audit(home: &Path, action: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.join(".local/share/berth/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["action"] == action && e["result"] != "started")
        .collect()
}

/// Lines a child printed that [`lines_of`] holds unread at most; past that its reader waits, as a
/// terminal that is not read makes the child wait.
pub const LINES_KEPT: usize = 10_000;

/// A child's output (stdout or stderr) as lines on a bounded channel, read on a thread of its own
/// until the output ends or the receiver is dropped.
pub fn lines_of(r: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::sync_channel(LINES_KEPT);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The lines still to come from [`lines_of`] once the child has exited: read until its output
/// ends (bounded: 10 s without a line, or [`LINES_KEPT`] lines).
pub fn rest_of(rx: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(10)).ok())
        .take(LINES_KEPT)
        .collect()
}

/// The arguments of `berth rollback web -p PROJECT --to berth-test/web:v1 --yes`: the rollback
/// the run and fault tests start and then cut, hold or hang up on.
pub fn rollback_web_to_v1(project: &str) -> [&str; 7] {
    [
        "rollback",
        "web",
        "-p",
        project,
        "--to",
        "berth-test/web:v1",
        "--yes",
    ]
}
