//! The README works as written: every block fenced ```` ```sh run ```` runs, line by line, as a
//! reader on a fresh HOME would type it, against the real binary and the test engine; after the
//! Install block, `man berth` finds the page; its pictures are of the screens berth draws now.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{BERTH_TIMEOUT, OutputWithin, text};

/// The blocks of `readme` fenced ```` ```sh run ````, each as its lines, with the heading above it.
fn runnable_blocks(readme: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match &mut current {
            Some(lines) if line.trim_start().starts_with("```") => {
                blocks.push((heading.clone(), std::mem::take(lines)));
                current = None;
            }
            Some(lines) => lines.push(line.to_string()),
            None if line.trim() == "```sh run" => current = Some(Vec::new()),
            None if line.starts_with('#') => heading = line.to_string(),
            None => {}
        }
    }
    blocks
}

/// A fresh HOME where `cargo install` has put berth: `~/.cargo/bin/berth` is the binary under test.
fn fresh_install() -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(".cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), bin.join("berth")).unwrap();
    (home, bin)
}

fn shell(line: &str, home: &Path, bin: &Path) -> Command {
    let mut c = Command::new("bash");
    c.args(["--norc", "--noprofile", "-eo", "pipefail", "-c", line])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("HOME", home)
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("LANG", "C.UTF-8")
        // The engine under test, as a reader's default socket.
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .stdin(std::process::Stdio::null());
    c
}

#[test]
fn every_runnable_readme_block_runs_as_written_on_a_fresh_home() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = runnable_blocks(&readme);
    assert!(
        blocks.len() >= 2,
        "the README marks its install lines and CLI examples ```sh run"
    );
    let (home, bin) = fresh_install();
    let mut ran = 0;
    for (heading, lines) in &blocks {
        for line in lines {
            // What a line says after `#` is for the reader.
            let command = line.split(" #").next().unwrap_or("").trim();
            if command.is_empty() || command.starts_with('#') {
                continue;
            }
            // The build itself: the test's binary stands for what `cargo install` put in
            // ~/.cargo/bin (see `fresh_install`).
            if command.starts_with("cargo ") {
                continue;
            }
            let out = shell(command, home.path(), &bin)
                .output_within(BERTH_TIMEOUT)
                .unwrap();
            assert!(
                out.status.success(),
                "README ({heading}): `{command}` failed ({:?}):\n{}",
                out.status.code(),
                text(&out)
            );
            ran += 1;
        }
    }
    assert!(ran >= 4, "only {ran} lines ran");
    // After the Install steps: the completion script where bash-completion looks, and the manual.
    let completion = home
        .path()
        .join(".local/share/bash-completion/completions/berth");
    let script = std::fs::read_to_string(&completion)
        .unwrap_or_else(|e| panic!("{}: {e}", completion.display()));
    assert!(script.contains("_berth"), "{script}");
    let out = shell("man -w berth", home.path(), &bin)
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    assert!(out.status.success(), "man berth: {}", text(&out));
    let page = std::fs::read_to_string(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(page.contains(".SH KEYS"), "{page}");
}

#[test]
fn the_parser_finds_only_blocks_marked_to_run() {
    let readme = "# A\n```sh\nscripts/demo.sh\n```\n## B\n```sh run\nberth ps\n```\n";
    assert_eq!(
        runnable_blocks(readme),
        vec![("## B".to_string(), vec!["berth ps".to_string()])]
    );
}

/// The README's pictures were recorded from the screens berth draws now: the views they show
/// (their snapshots, listed in assets/recorded-screens.txt) and berth's version have the
/// fingerprint scripts/record-demo.sh stored when it recorded them.
#[test]
fn the_pictures_are_of_the_current_screens() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/screens-fingerprint.sh"))
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", text(&out));
    let now = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let recorded = std::fs::read_to_string(format!("{root}/assets/recorded-fingerprint"))
        .expect("assets/recorded-fingerprint: written by scripts/record-demo.sh");
    assert_eq!(
        recorded.trim(),
        now,
        "a view the README's pictures show changed since they were recorded: run scripts/record-demo.sh and commit assets/"
    );
}
