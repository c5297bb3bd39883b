//! Shared helpers for integration tests: the real Docker engine via the docker CLI, unique container
//! names, cleanup that runs even when a test fails, and bounded waiting.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod pty;
pub mod sshd;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs the docker CLI and returns trimmed stdout; panics with stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
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
    match Command::new("docker").args(args).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
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
        let ids: Vec<&str> = ids.split_whitespace().collect();
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// The berth binary with a throwaway HOME and none of the engine-choosing variables of the caller.
pub fn berth() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    let home = std::env::temp_dir().join("berth-test-home");
    std::fs::create_dir_all(&home).unwrap();
    c.env("HOME", &home)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_CONFIG")
        .env_remove("DOCKER_CONTEXT");
    c
}
