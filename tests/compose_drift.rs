//! Compose drift and the pin, on a real project `docker-compose` (Debian's 1.29) started from a
//! compose file whose image reads `${WEB_TAG}` from `.env`: berth reads the files, says what the
//! next `up -d` does, shows `declared_image` in `berth ps --json`, and with `--pin` rewrites only
//! the variable's line so that `up -d` keeps the rolled-back version.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{OutputWithin, docker_try, free_port, http_get, inspect, wait_until};

const ENV: &str =
    "# image tags of this deployment\nWEB_TAG=v2   # set by the deploy job\nOTHER=\"kept as is\"\n";

/// A compose project made by one test; dropping it removes its containers (kept ones too) and network.
struct Project {
    name: String,
    dir: tempfile::TempDir,
    port: u16,
}

impl Project {
    fn new(suffix: &str) -> Project {
        let port = free_port();
        let name = format!("berth-t-drift-{suffix}-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!(
                "version: \"2.4\"\nservices:\n  web:\n    image: berth-test/web:${{WEB_TAG}}\n    ports:\n      - \"127.0.0.1:{port}:8080\"\n    stop_grace_period: 1s\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join(".env"), ENV).unwrap();
        let p = Project { name, dir, port };
        let up = p.compose(&["up", "-d"]);
        assert!(up.status.success(), "{}", text(&up));
        assert!(p.serves("v2"), "compose did not start v2");
        let ids = p.compose(&["ps", "-q"]);
        let id = String::from_utf8_lossy(&ids.stdout).trim().to_string();
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(250), || {
                inspect(&id, "{{.State.Health.Status}}") == "healthy"
            }),
            "the compose service never became healthy"
        );
        p
    }

    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .current_dir(self.dir.path())
            .args(["-p", &self.name])
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("WEB_TAG")
            .output_within(common::DOCKER_TIMEOUT)
            .expect("docker-compose runs (scripts/ensure-deps.sh installs it)")
    }

    fn serves(&self, version: &str) -> bool {
        wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            http_get(self.port, "/version").as_deref() == Some(version)
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("berth-data")
    }

    fn berth(&self, args: &[&str]) -> Output {
        let data = self.data();
        std::fs::create_dir_all(&data).unwrap();
        let config = data.join("config.toml");
        std::fs::write(
            &config,
            "[runbook]\nhealth_retries = 6\nhealth_interval_ms = 500\n",
        )
        .unwrap();
        common::berth()
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("BERTH_DATA_DIR", &data)
            .output_within(common::BERTH_TIMEOUT)
            .unwrap()
    }

    fn rollback(&self, to: &str, extra: &[&str]) -> Output {
        let mut args = vec!["rollback", "web", "-p", &self.name, "--to", to, "--yes"];
        args.extend_from_slice(extra);
        self.berth(&args)
    }

    /// `berth ps --json`'s entry for the service's replica: (image, declared_image).
    fn ps_web(&self) -> (String, serde_json::Value) {
        let out = self.berth(&["ps", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let web = list
            .iter()
            .find(|e| e["project"] == self.name.as_str() && e["service"] == "web")
            .unwrap_or_else(|| panic!("no web of {} in {list:?}", self.name));
        (
            web["image"].as_str().unwrap_or_default().to_string(),
            web["declared_image"].clone(),
        )
    }

    /// The console, filtered to this project, marks web as drifted in the list and says what runs
    /// and what compose says in its details.
    fn console_shows_the_drift(&self) {
        let mut s = common::pty::Session::sized(40, 200, &[], &[]);
        assert!(
            s.wait_for("● live", Duration::from_secs(20)),
            "console connected:\n{}",
            s.text()
        );
        s.type_keys(&format!("/{}\r", self.name));
        let marked = |s: &common::pty::Session| {
            s.text()
                .lines()
                .any(|l| l.contains("web-1") && l.contains("⚠ drift berth-test/web:v1"))
        };
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                marked(&s)
            }),
            "the list marks web-1 as drifted:\n{}",
            s.text()
        );
        s.type_keys("\r");
        assert!(
            s.wait_for(
                "runs berth-test/web:v1 · compose says berth-test/web:v2",
                Duration::from_secs(10)
            ),
            "the details say what runs and what compose says:\n{}",
            s.text()
        );
        s.type_keys("q");
        assert!(
            s.wait_exit(Duration::from_secs(10)).is_some(),
            "berth quits"
        );
    }

    fn env_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(".env")).unwrap()
    }

    fn backups(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".env.berth-"))
            })
            .collect()
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

fn is_file(p: &Path) -> bool {
    p.is_file()
}

#[test]
fn without_the_pin_drift_shows_and_up_redeploys_what_the_files_say() {
    let p = Project::new("nopin");
    let (image, declared) = p.ps_web();
    assert_eq!(
        (image.as_str(), declared.as_str()),
        ("berth-test/web:v2", Some("berth-test/web:v2"))
    );
    let out = p.rollback("berth-test/web:v1", &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("the next `docker compose up -d` redeploys berth-test/web:v2")
            && t.contains("pin WEB_TAG=v1"),
        "the plan says what up -d will do and offers the pin: {t}"
    );
    assert!(p.serves("v1"));
    assert_eq!(p.env_text(), ENV, "without --pin nothing is written");
    assert!(p.backups().is_empty());
    let (image, declared) = p.ps_web();
    assert_eq!(
        (image.as_str(), declared.as_str()),
        ("berth-test/web:v1", Some("berth-test/web:v2")),
        "drift: runs v1, compose says v2"
    );
    p.console_shows_the_drift();
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        p.serves("v2"),
        "up -d redeploys what the files say, as the plan told"
    );
}

#[test]
fn the_pin_rewrites_one_line_and_up_keeps_the_rolled_back_version() {
    let p = Project::new("pin");
    let out = p.rollback("berth-test/web:v1", &["--pin"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("pin WEB_TAG=v1"), "{t}");
    assert!(p.serves("v1"));
    assert_eq!(
        p.env_text(),
        ENV.replace("WEB_TAG=v2   #", "WEB_TAG=v1   #"),
        "only the value changed; comments, quotes and the other lines are byte-identical"
    );
    let backups = p.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(is_file(&backups[0]));
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), ENV);
    let (image, declared) = p.ps_web();
    assert_eq!(
        (image.as_str(), declared.as_str()),
        ("berth-test/web:v1", Some("berth-test/web:v1")),
        "pinned: no drift"
    );
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(p.serves("v1"), "up -d keeps the pinned version");
    let ids = p.compose(&["ps", "-q"]);
    let id = String::from_utf8_lossy(&ids.stdout).trim().to_string();
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(250), || {
            inspect(&id, "{{.State.Health.Status}}") == "healthy"
        }),
        "the service compose redeployed is healthy"
    );
}

#[test]
fn the_automatic_restore_undoes_the_pin() {
    let p = Project::new("restore");
    let out = p.rollback("berth-test/web:bad", &["--pin"]);
    let t = text(&out);
    assert!(!out.status.success(), "a bad image must fail: {t}");
    assert!(t.contains("pin WEB_TAG=bad"), "{t}");
    assert!(t.contains("written back as it was"), "{t}");
    assert!(p.serves("v2"), "the old container serves again");
    assert_eq!(p.env_text(), ENV, "the restore wrote the .env back");
}

#[test]
fn unreadable_or_unparseable_files_leave_drift_unknown_and_the_rollback_works() {
    let p = Project::new("unknown");
    let compose_file = p.dir.path().join("docker-compose.yml");
    let saved = std::fs::read_to_string(&compose_file).unwrap();
    std::fs::write(&compose_file, "services: [web\n").unwrap();
    let out = p.berth(&["rollback", "web", "-p", &p.name, "--to", "v1", "--dry-run"]);
    let t = text(&out);
    assert!(
        t.contains("cannot be parsed") && t.contains("nothing in the project is written"),
        "{t}"
    );
    let out = p.rollback("berth-test/web:v1", &["--pin"]);
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("--pin:"),
        "a pin asked for and impossible is refused: {t}"
    );
    assert!(p.serves("v2"), "nothing ran");
    assert_eq!(p.env_text(), ENV);

    std::fs::remove_file(&compose_file).unwrap();
    let out = p.rollback("berth-test/web:v1", &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let path = compose_file.display().to_string();
    assert!(
        t.contains(&format!("drift unknown: {path} not readable")),
        "{t}"
    );
    assert!(p.serves("v1"));
    let (_, declared) = p.ps_web();
    assert!(declared.is_null(), "unknown is null: {declared}");
    std::fs::write(&compose_file, saved).unwrap();
}

/// The console's Tab in a rollback's confirmation flips the pin: the plan carries its variant,
/// planned through the same code as `--pin`, and the variant offers the way back.
#[test]
fn the_plan_offers_the_pin_and_its_undoing_as_variants() {
    use berth::runbook::{self, Request, RollbackRequest};
    let p = Project::new("variant");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = berth::engine::connect(
            &berth::target::Target::local(),
            &berth::ssh::SshOptions::default(),
        )
        .await
        .unwrap();
        let config = berth::config::Config::default();
        let plain = Request::Rollback(RollbackRequest {
            name: "web".into(),
            project: Some(p.name.clone()),
            to: Some("berth-test/web:v1".into()),
            ..Default::default()
        });
        let plan = runbook::plan(&engine, &config, &plain).await.unwrap();
        let variant = plan.variant.clone().expect("the plan offers the pin");
        assert_eq!(variant.label, "pin WEB_TAG=v1 in .env");
        let Request::Rollback(pinned_req) = &variant.request else {
            panic!("a rollback's variant is a rollback: {:?}", variant.request)
        };
        assert!(pinned_req.pin && pinned_req.to.as_deref() == Some("berth-test/web:v1"));
        assert!(
            !plan.steps.iter().any(|s| s.description.starts_with("pin ")),
            "no pin step without the pin: {:?}",
            plan.steps
        );

        let pinned = runbook::plan(&engine, &config, &variant.request)
            .await
            .unwrap();
        assert!(
            pinned.steps[0]
                .description
                .starts_with("pin WEB_TAG=v1 in "),
            "the pin is the first step: {:?}",
            pinned.steps
        );
        let back = pinned.variant.expect("the pinned plan offers the way back");
        assert_eq!(back.label, "do not pin WEB_TAG (leave .env as it is)");
        assert_eq!(back.request, plain);
    });
    assert_eq!(p.env_text(), ENV, "planning writes nothing");
}
