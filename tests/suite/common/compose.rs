//! A compose project started by a test with Debian's `docker-compose` (1.29, which sets the same
//! labels as v2): one `web` service of the busybox web fixture on a fixed 127.0.0.1 port.
//! Dropping it removes its containers (berth's kept ones too) and its network.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use super::{DOCKER_TIMEOUT, OutputWithin, docker_try, free_port, http_get, inspect, wait_until};

pub struct ComposeProject {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl ComposeProject {
    /// Writes `docker-compose.yml` (web from `image`, `extra` YAML lines under it) and, when given,
    /// `.env`; starts nothing.
    pub fn new(area: &str, image: &str, extra: &str, env: Option<&str>) -> ComposeProject {
        let port = free_port();
        let name = format!("berth-t-{area}-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!(
                "version: \"2.4\"\nservices:\n  web:\n    image: {image}\n    ports:\n      - \"127.0.0.1:{port}:8080\"\n{extra}    stop_grace_period: 1s\n"
            ),
        )
        .unwrap();
        if let Some(env) = env {
            std::fs::write(dir.path().join(".env"), env).unwrap();
        }
        ComposeProject { name, dir, port }
    }

    /// A project whose whole `docker-compose.yml` is `yaml` (no host port: `port` is 0), with
    /// `.env` when given; starts nothing.
    pub fn from_yaml(area: &str, yaml: &str, env: Option<&str>) -> ComposeProject {
        let name = format!("berth-t-{area}-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("docker-compose.yml"), yaml).unwrap();
        if let Some(env) = env {
            std::fs::write(dir.path().join(".env"), env).unwrap();
        }
        ComposeProject { name, dir, port: 0 }
    }

    /// A `web` of the fixtures from `image` (in `.env`, `WEB_IMAGE`) scaled to `replicas`, without
    /// a host port (so berth starts each new replica beside its old one), stopped by SIGKILL;
    /// started, and waited for until every replica is healthy.
    pub fn scaled(area: &str, image: &str, replicas: usize) -> ComposeProject {
        const YAML: &str = "version: \"2.4\"\nservices:\n  web:\n    image: ${WEB_IMAGE}\n    stop_signal: SIGKILL\n    stop_grace_period: 1s\n";
        let p = ComposeProject::from_yaml(area, YAML, Some(&format!("WEB_IMAGE={image}\n")));
        let up = p.compose(&["up", "-d", "--scale", &format!("web={replicas}")]);
        assert!(up.status.success(), "{}", text(&up));
        assert!(
            wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
                let r = p.replicas();
                r.len() == replicas && r.iter().all(|(_, _, health)| health == "healthy")
            }),
            "compose never had {replicas} healthy replicas: {}",
            p.serving()
        );
        p
    }

    /// The running replicas compose counts: (name, image id, health), by name.
    pub fn replicas(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = self
            .ps()
            .iter()
            .map(|id| {
                (
                    inspect(id, "{{.Name}}").trim_start_matches('/').to_string(),
                    inspect(id, "{{.Image}}"),
                    inspect(id, "{{.State.Health.Status}}"),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `docker-compose -p NAME ARGS` in the project's folder, bounded.
    pub fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .current_dir(self.dir.path())
            .args(["-p", &self.name])
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("WEB_TAG")
            .output_within(DOCKER_TIMEOUT)
            .expect("docker-compose runs (scripts/ensure-deps.sh installs it)")
    }

    /// `up -d`, then waits until the replica is healthy; its name.
    pub fn up_healthy(&self) -> String {
        let up = self.compose(&["up", "-d"]);
        assert!(up.status.success(), "{}", text(&up));
        let ids = self.ps();
        assert_eq!(ids.len(), 1, "{ids:?}");
        let name = inspect(&ids[0], "{{.Name}}")
            .trim_start_matches('/')
            .to_string();
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(250), || {
                inspect(&name, "{{.State.Health.Status}}") == "healthy"
            }),
            "the compose service never became healthy"
        );
        name
    }

    /// Container ids compose counts as the project's (`docker-compose ps -q`).
    pub fn ps(&self) -> Vec<String> {
        let out = self.compose(&["ps", "-q"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The port answers `/version` with `version` within 30 s.
    pub fn serves(&self, version: &str) -> bool {
        wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            http_get(self.port, "/version").as_deref() == Some(version)
        })
    }

    /// What the port answers and which of the project's containers run, for a failed assertion.
    pub fn serving(&self) -> String {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let (_, ps) = docker_try(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}} {{.Image}} {{.Status}}",
        ]);
        format!(
            "port {} answers {:?}; containers:\n{ps}",
            self.port,
            http_get(self.port, "/version")
        )
    }

    pub fn env_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(".env")).unwrap()
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        for label in [
            "com.docker.compose.project",
            "berth.kept.com.docker.compose.project",
        ] {
            let filter = format!("label={label}={}", self.name);
            let (_, ids) = docker_try(&["ps", "-aq", "--filter", &filter]);
            for id in ids.split_whitespace() {
                let _ = docker_try(&["rm", "-f", id]);
            }
        }
        for id in super::berth_records_of(&self.name) {
            let _ = docker_try(&["rm", "-f", &id]);
        }
        let _ = docker_try(&["network", "rm", &format!("{}_default", self.name)]);
    }
}

/// A command's stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
