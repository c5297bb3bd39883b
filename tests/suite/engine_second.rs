//! Paths that need an engine of the test's own (a second `dockerd` the test starts, with its own
//! socket, data root and exec root): prune without `--only` and with `--volumes` and its two
//! confirmations, and the loss and return of a local engine under the console.

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

use common::dockerd::Dockerd;
use common::pty::Session;
use common::{BERTH_TIMEOUT, OutputWithin, text};

const IMAGES: &[&str] = &[
    "berth-test/web:v1",
    "berth-test/web:v2",
    "berth-test/logger:latest",
];

fn berth(d: &Dockerd, data: &std::path::Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut c, &data.join("home"))
        .arg("-s")
        .arg(d.host())
        .args(args)
        .env("BERTH_DATA_DIR", data)
        .output_within(BERTH_TIMEOUT)
        .expect("berth finishes")
}

/// Builds `tag` from a one-line Dockerfile body on the second engine (the classic builder: no
/// registry is reached for a local base image).
fn build(d: &Dockerd, tag: &str, label: &str) {
    use std::io::Write;
    let mut file = tempfile::tempfile().unwrap();
    write!(file, "FROM berth-test/logger:latest\nLABEL {label}\n").unwrap();
    std::io::Seek::rewind(&mut file).unwrap();
    let out = Command::new("docker")
        .args(["-H", &d.host(), "build", "-q", "-t", tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(file)
        .output_within(common::DOCKER_TIMEOUT)
        .unwrap();
    assert!(out.status.success(), "docker build: {}", text(&out));
}

fn exists(d: &Dockerd, args: &[&str]) -> bool {
    d.docker_try(args).0
}

/// Answers the CLI's questions on a terminal: `answers` are typed one per prompt as it appears.
fn prune_on_a_terminal(d: &Dockerd, data: &std::path::Path, answers: &[(&str, &str)]) -> bool {
    let host = d.host();
    let data_s = data.display().to_string();
    let mut s = Session::start(
        &["-s", &host, "prune", "--volumes"],
        &[("BERTH_DATA_DIR", data_s.as_str())],
    );
    for (prompt, answer) in answers {
        assert!(
            s.wait_for(prompt, Duration::from_secs(60)),
            "no prompt '{prompt}':\n{}",
            s.text()
        );
        s.type_keys(&format!("{answer}\r"));
    }
    let status = s
        .wait_exit(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("berth prune did not finish:\n{}", s.text()));
    status.success()
}

/// Prune over the whole engine: stopped containers, unused images (a dangling one too), unused
/// networks and build cache go; the running service, its image and the earlier one a rollback
/// would need stay. Volumes only with `--volumes`, and only after the second, typed confirmation.
#[test]
fn unscoped_prune_and_volumes_confirmed_twice() {
    let d = Dockerd::start();
    d.load_images(IMAGES);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "shop-web-1",
        "--network",
        "none",
        "--label",
        "com.docker.compose.project=shop",
        "--label",
        "com.docker.compose.service=web",
        "--label",
        "com.docker.compose.container-number=1",
        "-v",
        "used:/data",
        // v2 runs, so v1 is the earlier image a rollback needs (an image newer than what runs and
        // never run is no rollback target, and prune may remove it).
        "berth-test/web:v2",
    ]);
    d.docker(&[
        "create",
        "--name",
        "junk",
        "--network",
        "none",
        "berth-test/logger",
    ]);
    d.docker(&["volume", "create", "spare"]);
    d.docker(&["network", "create", "unused-net"]);
    // The same tag built twice: the first image is left dangling.
    build(&d, "tools/cli:1", "gen=1");
    let dangling = d.docker(&["image", "inspect", "-f", "{{.Id}}", "tools/cli:1"]);
    build(&d, "tools/cli:1", "gen=2");
    assert_eq!(
        d.docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]),
        dangling
    );
    let data = tempfile::tempdir().unwrap();

    let dry = berth(&d, data.path(), &["prune", "--dry-run"]);
    let t = text(&dry);
    assert!(dry.status.success(), "{t}");
    for expected in [
        "junk",
        "unused-net",
        "build cache",
        "keep for rollback",
        "berth-test/web:v2",
        &dangling[7..19],
    ] {
        assert!(t.contains(expected), "{expected} in the plan:\n{t}");
    }
    assert!(!t.contains("spare"), "no volumes without --volumes:\n{t}");

    // Not a terminal and no --yes: refused before anything happens.
    let out = berth(&d, data.path(), &["prune", "--volumes"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("--yes"), "{t}");
    assert!(exists(&d, &["inspect", "junk"]), "nothing changed:\n{t}");

    // On a terminal: yes to the first question, but not the typed second one.
    assert!(
        !prune_on_a_terminal(
            &d,
            data.path(),
            &[
                ("Proceed? [y/N]", "y"),
                ("Type 'delete volumes' to proceed", "no")
            ]
        ),
        "refusing the second question fails the command"
    );
    assert!(exists(&d, &["inspect", "junk"]));
    assert!(exists(&d, &["volume", "inspect", "spare"]));
    assert!(exists(&d, &["image", "inspect", &dangling]));

    // Both answered: everything listed goes, in one run.
    assert!(prune_on_a_terminal(
        &d,
        data.path(),
        &[
            ("Proceed? [y/N]", "y"),
            ("Type 'delete volumes' to proceed", "delete volumes")
        ]
    ));
    assert!(!exists(&d, &["inspect", "junk"]), "stopped container");
    assert!(
        !exists(&d, &["image", "inspect", &dangling]),
        "dangling image"
    );
    assert!(!exists(&d, &["network", "inspect", "unused-net"]));
    assert!(
        !exists(&d, &["volume", "inspect", "spare"]),
        "unused volume"
    );
    // What stays: the running service, its volume, its image and the earlier one of its repository.
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Running}}", "shop-web-1"]),
        "true"
    );
    assert!(exists(&d, &["volume", "inspect", "used"]));
    assert!(exists(&d, &["image", "inspect", "berth-test/web:v1"]));
    assert!(exists(&d, &["image", "inspect", "berth-test/web:v2"]));
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap_or_default();
    // Each run opens with a `started` line; the closing one says how it ended.
    let lines: Vec<&str> = audit
        .lines()
        .filter(|l| !l.contains("\"result\":\"started\""))
        .collect();
    assert_eq!(lines.len(), 1, "one prune ran:\n{audit}");
    assert!(
        lines[0].contains("\"prune\"") && lines[0].contains("\"ok\""),
        "{audit}"
    );
}

/// The local engine goes away under the console and comes back: the list stays on screen marked
/// stale, then live again, and the log view of a container picks up its lines after the restart.
#[test]
fn local_engine_loss_and_return() {
    let mut d = Dockerd::start();
    d.load_images(&["berth-test/logger:latest"]);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--network",
        "none",
        "--restart",
        "always",
        "berth-test/logger",
        "sh",
        "-c",
        "echo boot-$$-$RANDOM; i=0; while :; do i=$((i+1)); echo tick=$i; sleep 0.5; done",
    ]);
    let host = d.host();
    let mut s = Session::start(&["-s", &host], &[]);
    s.expect("ticker", Duration::from_secs(30));
    s.expect("● live", Duration::from_secs(10));
    s.type_keys("L");
    s.expect("Logs · ticker", Duration::from_secs(10));
    s.expect("tick=5", Duration::from_secs(20));
    // Each start of the container prints its own `boot-1-<random>` line first.
    let boot_re = regex::Regex::new(r"boot-\d+-\d+").unwrap();
    let boots = |s: &Session| -> Vec<String> {
        boot_re
            .find_iter(&s.text())
            .map(|m| m.as_str().to_string())
            .collect()
    };
    let first = boots(&s);
    assert_eq!(first.len(), 1, "{}", s.text());

    d.stop();
    assert!(
        s.wait_for("stale", Duration::from_secs(30)),
        "the lost engine shows:\n{}",
        s.text()
    );
    assert!(
        s.text().contains("ticker"),
        "the last state stays on screen"
    );

    d.restart();
    // `--restart always`: the engine starts the container again; its new lines must arrive.
    assert!(
        common::wait_until(Duration::from_secs(90), Duration::from_millis(50), || {
            boots(&s).iter().any(|b| *b != first[0])
        }),
        "the log view resumed after the engine came back:\n{}",
        s.text()
    );
    s.expect("● live", Duration::from_secs(30));
    s.type_keys("\x1b");
    // Apart, or the terminal reads ESC q as Alt-q.
    assert!(
        common::wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("Logs ·")),
        "{}",
        s.text()
    );
    s.type_keys("q");
    assert!(
        s.wait_exit(Duration::from_secs(10))
            .is_some_and(|st| st.success()),
        "{}",
        s.text()
    );
}
