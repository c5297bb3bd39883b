//! A second Docker engine of the test's own: Debian's `dockerd` with its own socket, data root,
//! exec root, pidfile and containerd namespace, no bridge and no iptables rules, so a test can
//! prune it, stop it and start it again without touching the shared engine other tests use.
//! It runs in a network namespace of its own: a dockerd started with `--bridge none` deletes the
//! host's `docker0` at start-up, which would cut every container of the shared engine off.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{DOCKER_TIMEOUT, OutputWithin, wait_until};

pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// The hostname of its own UTS namespace (a swarm node's name), when it has one.
    hostname: Option<String>,
}

impl Dockerd {
    /// Starts the engine and waits (bounded) until it answers.
    pub fn start() -> Dockerd {
        Dockerd::start_with(None)
    }

    /// Starts it in a UTS namespace of its own too, named `hostname` (a second swarm node must not
    /// share the test engine's hostname), with the loopback of its network namespace up (a relay
    /// listens there).
    pub fn start_as(hostname: &str) -> Dockerd {
        Dockerd::start_with(Some(hostname.to_string()))
    }

    fn start_with(hostname: Option<String>) -> Dockerd {
        // Short paths: a unix socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .unwrap();
        let mut d = Dockerd {
            dir,
            child: None,
            hostname,
        };
        d.run();
        d
    }

    /// The pid of the running dockerd (its network namespace is `/proc/PID/ns/net`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("dockerd runs").id()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    /// `unix:///…/d.sock`, for `berth -s` and `docker -H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn run(&mut self) {
        // dockerd gives its containerd a fixed time to start and exits when it misses it, as it
        // can on a loaded machine: started once more then.
        let mut up = false;
        for _ in 0..2 {
            self.spawn();
            up = self.wait_up();
            if up || !self.exited() {
                break;
            }
        }
        assert!(up, "the second dockerd did not answer:\n{}", self.log());
        assert!(
            host_bridge_intact(),
            "the shared engine's docker0 is gone: the second dockerd was not isolated"
        );
    }

    /// Whether it answers within 60 s; false at once when it has exited.
    fn wait_up(&mut self) -> bool {
        let mut up = false;
        wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            up = self
                .docker_try(&["version", "--format", "{{.Server.Version}}"])
                .0;
            up || self.exited()
        });
        up
    }

    /// Its process has ended.
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    fn spawn(&mut self) {
        let p = self.dir.path();
        let ns = format!(
            "berth-t-{}",
            p.file_name().unwrap().to_string_lossy().to_lowercase()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p.join("dockerd.log"))
            .unwrap();
        // `unshare --net` execs dockerd in place (same pid), so stop() still signals dockerd itself;
        // with a hostname, the shell between them execs dockerd too.
        let mut command = Command::new("unshare");
        match &self.hostname {
            None => command.args(["--net", "dockerd"]),
            Some(h) => command.args([
                "--net",
                "--uts",
                "sh",
                "-c",
                "hostname \"$0\" && ip link set lo up && exec dockerd \"$@\"",
                h,
            ]),
        };
        let child = command
            .arg("--data-root")
            .arg(p.join("root"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("d.pid"))
            .arg("-H")
            .arg(self.host())
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--containerd-namespace",
                &ns,
                "--containerd-plugins-namespace",
                &format!("{ns}-plugins"),
            ])
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts (scripts/ensure-deps.sh installs docker.io)");
        self.child = Some(child);
    }

    /// Stops the engine (SIGTERM, bounded wait, then SIGKILL). Its containers stop with it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child this struct started and has not reaped.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let gone = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if !gone {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    /// Starts it again with the same data root and socket.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Kills it at once (SIGKILL): the engine goes away as a crashed host does, telling no one.
    /// Its containers' shims and mounts stay until it is started again (`revive`).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed engine again so it cleans up after itself; false when it does not answer
    /// (for a `Drop`, which must not panic).
    pub fn revive(&mut self) -> bool {
        if self.child.is_some() {
            return true;
        }
        self.spawn();
        self.wait_up()
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H")
            .arg(self.host())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    /// The docker CLI against this engine: trimmed stdout, panics on failure or timeout.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "docker -H {} {} failed: {}",
            self.host(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn docker_try(&self, args: &[&str]) -> (bool, String) {
        match self.cmd().args(args).output_within(DOCKER_TIMEOUT) {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).trim().to_string(),
            ),
            Err(e) => (false, e.to_string()),
        }
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .output_within(DOCKER_TIMEOUT)
            .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }

    /// Copies images from the shared engine into this one (`docker save` | `docker load`, through a file).
    pub fn load_images(&self, images: &[&str]) {
        let tar = self.dir.path().join("images.tar");
        let tar_s = tar.to_string_lossy().to_string();
        let mut args = vec!["save", "-o", tar_s.as_str()];
        args.extend_from_slice(images);
        super::docker(&args);
        self.docker(&["load", "-i", &tar_s]);
        let _ = std::fs::remove_file(&tar);
    }
}

/// The shared engine's default bridge is still there (when it has one).
fn host_bridge_intact() -> bool {
    let (ok, name) = super::docker_try(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
    ]);
    !ok || name.trim() != "docker0" || std::path::Path::new("/sys/class/net/docker0").exists()
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first, so the engine does not leave their mounts behind in the data root.
        if self.child.is_some() {
            let (_, ids) = self.docker_try(&["ps", "-aq"]);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids);
                let _ = self.docker_try(&args);
            }
        }
        self.stop();
        unmount_under(self.dir.path());
    }
}

/// Detaches what is still mounted under `dir` (deepest first), so the temporary directory can
/// go: an engine that was killed, or that had joined a swarm, can leave its data root's bind mount
/// and the ingress network's namespace file mounted after it stopped.
fn unmount_under(dir: &std::path::Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| std::path::Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let Ok(c) = std::ffi::CString::new(p) else {
            continue;
        };
        // SAFETY: umount2(2) on a NUL-terminated path under this engine's own temporary directory.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}
