//! Rollback on a real compose project: `docker-compose` (Debian's 1.29, which sets the same labels
//! as v2) starts the service from a compose file with a fixed host port; after berth's rollback,
//! compose's own view is checked: `ps` lists exactly the replica, and the next `up -d` with the
//! files unchanged redeploys what they declare — it neither adopts nor starts the kept container.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{docker, docker_try, free_port, http_get, inspect, wait_until};

/// A compose project made by this test; dropping it removes its containers (kept ones too) and network.
struct Project {
    name: String,
    dir: tempfile::TempDir,
}

impl Project {
    fn new(port: u16) -> Project {
        let name = format!("berth-t-compose-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!(
                "version: \"2.4\"\nservices:\n  web:\n    image: berth-test/web:v2\n    ports:\n      - \"127.0.0.1:{port}:8080\"\n    environment:\n      FOO: bar\n    stop_grace_period: 1s\n"
            ),
        )
        .unwrap();
        Project { name, dir }
    }

    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .current_dir(self.dir.path())
            .args(["-p", &self.name])
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("docker-compose runs (scripts/ensure-deps.sh installs it)")
    }

    /// Container ids compose counts as the project's (`docker-compose ps -q`).
    fn ps(&self) -> Vec<String> {
        let out = self.compose(&["ps", "-q"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn berth(&self, data: &Path, args: &[&str]) -> Output {
        let config = data.join("config.toml");
        std::fs::create_dir_all(data).unwrap();
        std::fs::write(
            &config,
            "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n",
        )
        .unwrap();
        common::berth()
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("BERTH_DATA_DIR", data)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Project {
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
        let _ = docker_try(&["network", "rm", &format!("{}_default", self.name)]);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn serves(port: u16, version: &str) -> bool {
    wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        http_get(port, "/version").as_deref() == Some(version)
    })
}

#[test]
fn compose_sees_the_truth_after_a_rollback() {
    let port = free_port();
    let p = Project::new(port);
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(serves(port, "v2"), "compose did not start v2");
    let ids = p.ps();
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

    let data = p.dir.path().join("berth");
    let out = p.berth(
        &data,
        &[
            "rollback",
            "web",
            "-p",
            &p.name,
            "--to",
            "berth-test/web:v1",
            "--yes",
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("up -d"),
        "the plan says what the next compose up does: {t}"
    );
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));

    // compose lists exactly the replica: the new container, not the kept one.
    let new_id = inspect(&name, "{{.Id}}");
    let ids = p.ps();
    assert!(
        ids.len() == 1 && new_id.starts_with(ids[0].as_str()),
        "compose sees exactly the new container: {ids:?} (new {new_id})"
    );
    assert_eq!(
        inspect(
            &name,
            "{{index .Config.Labels \"com.docker.compose.config-hash\"}}"
        ),
        "",
        "the new container must not claim the old configuration's hash"
    );
    let kept_filter = format!("label=berth.kept.com.docker.compose.project={}", p.name);
    let kept = docker(&["ps", "-aq", "--filter", &kept_filter]);
    assert_eq!(kept.lines().count(), 1, "one kept container: {kept}");
    let kept_name = inspect(&kept, "{{.Name}}");

    // berth ps shows it under its service, as kept, never as a second web-1.
    let ps = p.berth(&data, &["ps", "--all"]);
    let listing = text(&ps);
    assert!(listing.contains("web-1 · kept"), "{listing}");
    assert!(
        listing.contains("kept · from berth-test/web:v2"),
        "{listing}"
    );

    // The next `up -d` with the files unchanged redeploys what they declare (v2), one container,
    // and leaves the kept one alone: not started, not renamed, not adopted.
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(serves(port, "v2"), "compose redeploys what its file says");
    assert_eq!(p.ps().len(), 1, "{:?}", p.ps());
    assert_eq!(inspect(&kept, "{{.Name}}"), kept_name);
    assert_eq!(inspect(&kept, "{{.State.Running}}"), "false");
    let again = p.compose(&["up", "-d"]);
    assert!(
        text(&again).contains("up-to-date"),
        "after its own recreate compose is settled: {}",
        text(&again)
    );
}
