//! The fault matrix of a rollback on a fixed host port: berth killed (-9) during each step, then
//! the recovery (`berth recover --restore | --finish`). Every case must end with exactly one
//! container serving on the port, running the version berth's last line names, an audit that
//! records the cut-off run as interrupted and the recovery's result, and no journal left over.
//! The web fixture's PID 1 ignores SIGTERM, so a stop takes its whole timeout (4 s here): a kill
//! during the stop leaves a stop request the engine is still carrying out.

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

use berth::runbook::AuditLog;
use common::{BERTH_TIMEOUT, OutputWithin, Scope, docker, free_port, http_get, inspect};

// Checks every 0.5 s, for up to 15 s: a loaded machine may be slow to run the first health check.
const FAST: &str = "[runbook]\nhealth_retries = 30\nhealth_interval_ms = 500\n";

#[derive(Clone, Copy, Debug)]
enum Choice {
    Restore,
    Finish,
}

struct Case {
    /// The step whose `→ N.` line starts the kill's countdown.
    step: u32,
    /// How long after that line berth is killed: inside a long step (stop, health wait, restore).
    after: Duration,
    /// The image the rollback goes to (`bad` fails its health check, so step 5, the restore, runs).
    to: &'static str,
    choice: Choice,
    /// The version serving at the end.
    serves: &'static str,
    /// More rollback flags: `--retag` (the service then runs from a tag of the test's own, which
    /// the rollback moves), `--remove-old`.
    flags: &'static [&'static str],
    /// Recovered from another machine: a data directory of its own, without the local journal.
    elsewhere: bool,
    /// Before the recovery, the keep step's own cut is made by hand: the kept copy made under its
    /// temporary name and the original removed, not yet renamed (a window too short to kill in).
    half_kept: bool,
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(case: Case) {
    let scope = Scope::new("fault");
    let port = free_port();
    let retag = case.flags.contains(&"--retag");
    // With --retag the rollback moves a tag: a repository of this test's own, not the fixtures'.
    let repo = scope.name("app");
    let _tags = retag.then(|| common::RepoTags(repo.clone()));
    let (from, to) = if retag {
        let (prod, to) = (format!("{repo}:prod"), format!("{repo}:v1"));
        docker(&["tag", "berth-test/web:v2", &prod]);
        docker(&["tag", case.to, &to]);
        (prod, to)
    } else {
        ("berth-test/web:v2".to_string(), case.to.to_string())
    };
    let name = common::slow_stop_web_from(&scope, port, &from);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, FAST).unwrap();
    let data = dir.path().join("data");
    // The recovering machine's data directory (its audit log and journals).
    let data_after = if case.elsewhere {
        dir.path().join("other-machine")
    } else {
        data.clone()
    };
    let home = dir.path().join("home");
    let project = scope.project();
    let berth = |args: &[&str]| -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        common::isolate(&mut c, &home)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("BERTH_DATA_DIR", &data_after)
            .output_within(BERTH_TIMEOUT)
            .unwrap()
    };

    // The rollback, killed `after` into step `case.step`.
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    let seen = common::kill_at_step(
        common::isolate(&mut c, &home)
            .arg("--config")
            .arg(&config)
            .args(["rollback", "web", "-p", &project, "--to", &to, "--yes"])
            .args(case.flags)
            .env("BERTH_DATA_DIR", &data)
            // Killed as the step starts: held there. Killed `after` into it: the next step is
            // held, so a quick step cannot end the run before the kill lands (a 10 ms kill in the
            // removal of a stopped container came after the run had closed its journal).
            .env(
                "BERTH_TEST_HOLD_STEP",
                if case.after == NOW {
                    case.step
                } else {
                    case.step + 1
                }
                .to_string(),
            ),
        case.step,
        case.after,
    );

    if case.half_kept {
        keep_by_hand_up_to_the_rename(&name);
    }
    let choice = match case.choice {
        Choice::Restore => "--restore",
        Choice::Finish => "--finish",
    };
    let out = berth(&["recover", "web", "-p", &project, choice, "--yes"]);
    let t = text(&out);
    let what = format!(
        "killed in step {} ({:?} after), {choice}",
        case.step, case.after
    );
    assert!(
        out.status.success(),
        "{what}: the recovery succeeds:\n{t}\nrollback said: {seen:#?}"
    );
    let fixture = format!("berth-test/web:{}", case.serves);
    // The reference the serving container was created from: v2 is the service's own.
    let image = if case.serves == "v2" {
        from.clone()
    } else {
        to.clone()
    };
    let last = t.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        last.contains("now:") && last.contains(&image),
        "{what}: the last line says what serves now ({image}):\n{t}"
    );

    // Exactly one container of the service runs, and it is the one serving the version named.
    let filter = format!("name={}", scope.prefix);
    let running: Vec<String> = docker(&["ps", "-q", "--filter", &filter])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        running.len(),
        1,
        "{what}: one container runs: {running:?}\n{t}"
    );
    assert_eq!(inspect(&name, "{{.Config.Image}}"), image, "{what}: {t}");
    assert_eq!(
        inspect(&name, "{{.Image}}"),
        common::image_id(&fixture),
        "{what}: {t}"
    );
    if retag {
        assert_eq!(
            common::image_id(&from),
            common::image_id(&fixture),
            "{what}: {from}, which `docker compose up -d` starts, names what serves:\n{t}"
        );
    }
    assert_eq!(
        http_get(port, "/version").as_deref(),
        Some(case.serves),
        "{what}: the port serves {}",
        case.serves
    );
    assert_eq!(
        inspect(&name, "{{.State.Health.Status}}"),
        "healthy",
        "{what}"
    );

    // The audit says the run was cut off and what the recovery did; the journal is closed.
    let lines = AuditLog::at(data_after.join("audit.jsonl"))
        .read_last(20)
        .unwrap();
    assert!(
        lines.iter().any(|e| e.result == "interrupted"),
        "{what}: the cut-off run is recorded as interrupted: {lines:#?}"
    );
    let closing = lines.last().expect("an audit line");
    assert_eq!(
        (closing.action.as_str(), closing.result.as_str()),
        ("rollback-recover", "ok"),
        "{what}: {lines:#?}"
    );
    assert!(
        closing.message.contains("now:") && closing.message.contains(&image),
        "{what}: the audit names what serves: {closing:?}"
    );
    assert_eq!(
        std::fs::read_dir(data_after.join("runs"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "{what}: the recovery closes the journal"
    );
    assert!(
        !common::has_run_journal(&name),
        "{what}: the server's journal is closed too"
    );
    // The old container has one name from its set-aside to its kept copy: `NAME-berth-kept-TIME`.
    let set_aside = format!("name={name}-berth-");
    let left: Vec<String> = docker(&["ps", "-a", "--filter", &set_aside, "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect();
    for n in &left {
        let kept = n
            .strip_prefix(&format!("{name}-berth-kept-"))
            .is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()));
        assert!(
            kept,
            "{what}: only kept copies under the one name are left: {left:?}"
        );
        assert_eq!(
            inspect(n, "{{index .Config.Labels \"berth.kept.name\"}}"),
            name,
            "{what}: {n} is a kept copy, out of compose's sight"
        );
    }
}

/// What a keep step cut between removing the original and renaming its copy leaves: the copy
/// (compose's labels set aside) under `KEPT-copy`, the set-aside original gone.
fn keep_by_hand_up_to_the_rename(name: &str) {
    let filter = format!("name={name}-berth-kept-");
    let set_aside = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
    let set_aside: Vec<&str> = set_aside.lines().collect();
    assert_eq!(
        set_aside.len(),
        1,
        "the run set the old one aside: {set_aside:?}"
    );
    let kept = set_aside[0];
    let image = inspect(kept, "{{.Image}}");
    let copy = format!("{kept}-copy");
    let label = format!("berth.kept.name={name}");
    docker(&["create", "--name", &copy, "--label", &label, &image]);
    docker(&["rm", kept]);
}

/// Killed as the step starts, before it does anything: berth (a debug build) holds there when
/// asked (`BERTH_TEST_HOLD_STEP`), so the kill cannot come after a quick step, or after the end of
/// the run, however loaded the machine.
const NOW: Duration = Duration::ZERO;

#[test]
fn killed_during_the_stop_then_restored() {
    run(Case {
        step: 1,
        after: Duration::from_millis(1500),
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_at_the_create_then_restored() {
    run(Case {
        step: 2,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_at_the_start_then_restored() {
    run(Case {
        step: 3,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_at_the_start_then_finished() {
    run(Case {
        step: 3,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Finish,
        serves: "v1",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_during_the_health_wait_then_restored() {
    run(Case {
        step: 4,
        after: Duration::from_millis(700),
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_during_the_health_wait_then_finished() {
    run(Case {
        step: 4,
        after: Duration::from_millis(700),
        to: "berth-test/web:v1",
        choice: Choice::Finish,
        serves: "v1",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_during_the_automatic_restore_then_restored() {
    run(Case {
        step: 5,
        after: Duration::from_millis(300),
        to: "berth-test/web:bad",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn killed_while_keeping_the_old_container_then_finished() {
    run(Case {
        step: 6,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Finish,
        serves: "v1",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

#[test]
fn cut_before_the_kept_copy_took_its_name_then_finished() {
    run(Case {
        step: 6,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Finish,
        serves: "v1",
        flags: &[],
        elsewhere: false,
        half_kept: true,
    });
}

#[test]
fn killed_while_keeping_the_old_container_then_restored() {
    run(Case {
        step: 6,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: false,
        half_kept: false,
    });
}

// The retag (step 6 with --retag, after the health check; step 7 keeps the old container) and the
// removal of the old container (step 6 with --remove-old; step 7 shows the first log lines).

#[test]
fn killed_at_the_retag_then_finished_moves_the_tag() {
    run(Case {
        step: 6,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Finish,
        serves: "v1",
        flags: &["--retag"],
        elsewhere: false,
        half_kept: false,
    });
}

/// Killed as the old container is kept (step 7): the retag is over, the restore points it back.
#[test]
fn killed_after_the_retag_then_restored_points_the_tag_back() {
    run(Case {
        step: 7,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &["--retag"],
        elsewhere: false,
        half_kept: false,
    });
}

/// Killed 10 ms into the removal (it takes some 30 ms): the engine may still be removing the old
/// container when the recovery asks it to.
#[test]
fn killed_while_removing_the_old_container_then_finished() {
    run(Case {
        step: 6,
        after: Duration::from_millis(10),
        to: "berth-test/web:v1",
        choice: Choice::Finish,
        serves: "v1",
        flags: &["--remove-old"],
        elsewhere: false,
        half_kept: false,
    });
}

/// The old container is gone: there is nothing to restore, the recovery verifies what serves and
/// closes the run (it says so; a rollback is the way back).
#[test]
fn killed_after_removing_the_old_container_then_recovered() {
    run(Case {
        step: 7,
        after: NOW,
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v1",
        flags: &["--remove-old"],
        elsewhere: false,
        half_kept: false,
    });
}

/// Cut off during the first stop, the run left nothing renamed or created: only its journal knows.
/// Another machine (no local journal) finds it through the server's copy and restores.
#[test]
fn killed_during_the_stop_then_restored_from_another_machine() {
    run(Case {
        step: 1,
        after: Duration::from_millis(1500),
        to: "berth-test/web:v1",
        choice: Choice::Restore,
        serves: "v2",
        flags: &[],
        elsewhere: true,
        half_kept: false,
    });
}
