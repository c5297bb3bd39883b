//! Rollback on a real compose project: `docker-compose` (Debian's 1.29, which sets the same labels
//! as v2) starts the service from a compose file with a fixed host port; after berth's rollback,
//! compose's own view is checked: `ps` lists exactly the replica, and the next `up -d` with the
//! files unchanged redeploys what they declare — it neither adopts nor starts the kept container.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::compose::{ComposeProject, text};
use common::{OutputWithin, docker, http_get, inspect};

/// web on v2 with an environment of its own (a rollback must keep it), started by each test.
struct Project(ComposeProject);

impl std::ops::Deref for Project {
    type Target = ComposeProject;
    fn deref(&self) -> &ComposeProject {
        &self.0
    }
}

impl Project {
    fn new() -> Project {
        Project(ComposeProject::new(
            "compose",
            "berth-test/web:v2",
            "    environment:\n      FOO: bar\n",
            None,
        ))
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
            .output_within(common::BERTH_TIMEOUT)
            .unwrap()
    }
}

#[test]
fn compose_sees_the_truth_after_a_rollback() {
    let p = Project::new();
    let port = p.port;
    let name = p.up_healthy();
    assert!(p.serves("v2"), "compose did not start v2");

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
    assert!(p.serves("v2"), "compose redeploys what its file says");
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
