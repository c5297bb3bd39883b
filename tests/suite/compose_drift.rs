//! Compose drift and the pin, on a real project `docker-compose` (Debian's 1.29) started from a
//! compose file whose image reads `${WEB_TAG}` from `.env`: berth reads the files, says what the
//! next `up -d` does, shows `declared_image` in `berth ps --json`, and with `--pin` rewrites only
//! the variable's line so that `up -d` keeps the rolled-back version.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::compose::{ComposeProject, text};
use common::{OutputWithin, inspect, wait_until};

const ENV: &str =
    "# image tags of this deployment\nWEB_TAG=v2   # set by the deploy job\nOTHER=\"kept as is\"\n";

/// The drift fixture: web's image reads `${WEB_TAG}` from `.env`, started on v2 and healthy.
struct Project(ComposeProject);

impl std::ops::Deref for Project {
    type Target = ComposeProject;
    fn deref(&self) -> &ComposeProject {
        &self.0
    }
}

impl Project {
    fn new(suffix: &str) -> Project {
        let p = ComposeProject::new(
            &format!("drift-{suffix}"),
            "berth-test/web:${WEB_TAG}",
            "",
            Some(ENV),
        );
        p.up_healthy();
        assert!(p.serves("v2"), "compose did not start v2");
        Project(p)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("berth-data")
    }

    /// berth with this project's config and data directory.
    fn berth_command(&self) -> Command {
        let data = self.data();
        std::fs::create_dir_all(&data).unwrap();
        let config = data.join("config.toml");
        std::fs::write(
            &config,
            "[runbook]\nhealth_retries = 6\nhealth_interval_ms = 500\n",
        )
        .unwrap();
        let mut c = common::berth();
        c.arg("--config").arg(&config).env("BERTH_DATA_DIR", &data);
        c
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.berth_command()
            .args(args)
            .output_within(common::BERTH_TIMEOUT)
            .unwrap()
    }

    /// A pinned rollback to v1, killed (-9) `after` its step `step` starts; then
    /// `berth recover web --restore | --finish`, whose output is returned.
    fn pinned_rollback_killed_then_recovered(
        &self,
        step: u32,
        after: Duration,
        choice: &str,
    ) -> Output {
        // A kill "as the step starts" holds the run there first (debug builds): the run's output
        // reaches the pipe after the step may already have acted, so reading its line and
        // killing then could land after a quick step (the pin takes milliseconds).
        let hold = if after.is_zero() {
            step.to_string()
        } else {
            String::new()
        };
        common::kill_at_step(
            self.berth_command()
                .args([
                    "rollback",
                    "web",
                    "-p",
                    &self.name,
                    "--to",
                    "berth-test/web:v1",
                    "--pin",
                    "--yes",
                ])
                .env("BERTH_TEST_HOLD_STEP", hold),
            step,
            after,
        );
        self.berth(&["recover", "web", "-p", &self.name, choice, "--yes"])
    }

    /// Runs the journal still holds: a finished recovery leaves none.
    fn open_runs(&self) -> usize {
        std::fs::read_dir(self.data().join("runs"))
            .map(|d| d.count())
            .unwrap_or(0)
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

impl Project {
    /// A pinned rollback to `to` held (`BERTH_TEST_HOLD_STEP`) as its step `step` starts, where
    /// `edit` changes the `.env` as someone else would; what the run printed, once it ended.
    fn pinned_rollback_edited_at(
        &self,
        to: &str,
        step: u32,
        edit: impl FnOnce(),
    ) -> (bool, String) {
        use std::io::Read;
        let mut child = self
            .berth_command()
            .args([
                "rollback", "web", "-p", &self.name, "--to", to, "--pin", "--yes",
            ])
            .env("BERTH_TEST_HOLD_STEP", step.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let rx = common::lines_of(child.stdout.take().unwrap());
        let marker = format!("→ {step}.");
        let mut seen = Vec::new();
        let mut edit = Some(edit);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if line.starts_with(&marker)
                        && let Some(edit) = edit.take()
                    {
                        edit();
                    }
                    seen.push(line);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the run did not end:\n{}", seen.join("\n"));
            }
        }
        let status = child.wait().unwrap();
        seen.push(err_reader.join().unwrap());
        let said = seen.join("\n");
        assert!(edit.is_none(), "the run never reached step {step}:\n{said}");
        (status.success(), said)
    }

    fn write_env(&self, text: &str) {
        std::fs::write(self.dir.path().join(".env"), text).unwrap();
    }
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
    assert!(p.serves("v1"), "{}", p.serving());
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
    assert!(p.serves("v1"), "{}\n{t}", p.serving());
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
    assert!(t.contains("WEB_TAG=v2 set back"), "{t}");
    assert!(p.serves("v2"), "the old container serves again");
    assert_eq!(p.env_text(), ENV, "the restore wrote the .env back");
}

/// An edit made between the plan and the pin's write (here while the run is held at the pin, as
/// a confirmation left open would be) is never overwritten: the pin refuses with the difference,
/// nothing changes, and planning again pins over the file as it is now.
#[test]
fn an_env_edited_after_the_plan_is_not_overwritten_by_the_pin() {
    let p = Project::new("pinrace");
    let edited = ENV.replace("\"kept as is\"", "\"edited meanwhile\"");
    let (ok, said) = p.pinned_rollback_edited_at("berth-test/web:v1", 1, || p.write_env(&edited));
    assert!(!ok, "{said}");
    assert!(
        said.contains("changed since the plan (OTHER: kept as is → edited meanwhile)"),
        "{said}"
    );
    assert!(said.contains("no container was changed"), "{said}");
    assert_eq!(p.env_text(), edited, "the edit stays");
    assert!(
        p.backups().is_empty(),
        "nothing was copied: {:?}",
        p.backups()
    );
    assert!(p.serves("v2"), "{}", p.serving());
    assert_eq!(p.open_runs(), 0, "the refused run keeps no journal");
    // Planned again, the pin is made over the file as it is now.
    let out = p.rollback("berth-test/web:v1", &["--pin"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(p.env_text(), edited.replace("WEB_TAG=v2 ", "WEB_TAG=v1 "));
}

/// The automatic restore after a failed health check sets back only the pinned line: an edit of
/// another line made during the run stays; a pinned variable someone changed meanwhile is left
/// as they made it, with the way to undo the pin by hand.
#[test]
fn the_automatic_restore_touches_only_the_pinned_line() {
    let p = Project::new("pinline");
    // Held as the step after the pin starts: the pin is written.
    let (ok, said) = p.pinned_rollback_edited_at("berth-test/web:bad", 2, || {
        let now = p.env_text();
        assert!(now.contains("WEB_TAG=bad "), "pinned: {now}");
        p.write_env(&format!("{now}ADDED_DURING_THE_RUN=1\n"));
    });
    assert!(!ok, "a bad image must fail: {said}");
    assert!(said.contains("WEB_TAG=v2 set back"), "{said}");
    assert_eq!(p.env_text(), format!("{ENV}ADDED_DURING_THE_RUN=1\n"));
    assert!(p.serves("v2"), "{}", p.serving());

    let (ok, said) = p.pinned_rollback_edited_at("berth-test/web:bad", 2, || {
        p.write_env(&ENV.replace("WEB_TAG=v2 ", "WEB_TAG=v3 "));
    });
    assert!(!ok, "{said}");
    assert!(
        said.contains("sets WEB_TAG=v3 now, not the pinned bad"),
        "{said}"
    );
    assert_eq!(
        p.env_text(),
        ENV.replace("WEB_TAG=v2 ", "WEB_TAG=v3 "),
        "someone's value is left as they wrote it"
    );
    assert!(p.serves("v2"), "{}", p.serving());
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
    assert!(p.serves("v1"), "{}", p.serving());
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

// The pin's half of the fault matrix: berth killed (-9) once the pin is written, then recovered.
// The pin is step 1 and the stop step 2; the health wait is step 5.

#[test]
fn killed_after_the_pin_then_restored_writes_the_env_back() {
    let p = Project::new("pinkill");
    let out = p.pinned_rollback_killed_then_recovered(2, Duration::ZERO, "--restore");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("WEB_TAG=v2 set back in"),
        "the recovery says it set the pinned line back:\n{t}"
    );
    assert_eq!(p.env_text(), ENV, "the .env is byte for byte what it was");
    assert!(p.serves("v2"), "the old container serves again");
    assert_eq!(p.open_runs(), 0, "the recovery closes the journal");
    let (_, declared) = p.ps_web();
    assert_eq!(
        declared, "berth-test/web:v2",
        "compose declares what serves"
    );
}

#[test]
fn killed_during_the_pin_then_restored_leaves_the_env_as_it_was() {
    let p = Project::new("pinstep");
    let out = p.pinned_rollback_killed_then_recovered(1, Duration::ZERO, "--restore");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // Held as the pin starts and killed there: nothing of the pin was written.
    assert!(
        t.contains("before the pin"),
        "the recovery says what it found of the pin:\n{t}"
    );
    assert_eq!(p.env_text(), ENV);
    assert!(p.serves("v2"), "{}", p.serving());
    assert_eq!(p.open_runs(), 0, "the recovery closes the journal");
}

#[test]
fn killed_in_the_health_wait_then_finished_keeps_the_pin() {
    let p = Project::new("pinfinish");
    let out = p.pinned_rollback_killed_then_recovered(5, Duration::ZERO, "--finish");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("finishing keeps the pin"),
        "the plan says the pin stays:\n{t}"
    );
    assert!(p.serves("v1"), "the finished rollback serves v1");
    assert_eq!(
        p.env_text(),
        ENV.replace("WEB_TAG=v2   #", "WEB_TAG=v1   #"),
        "the pin stays"
    );
    assert_eq!(p.open_runs(), 0, "the recovery closes the journal");
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(p.serves("v1"), "up -d keeps what the finished run serves");
}
