//! `berth backup` on the real engine with a real PostgreSQL (the host's binaries in a FROM-scratch
//! image) and sqlite: the dump is written on the server (here: this machine, for a local engine)
//! with its checksum and sidecar, old ones pruned, and the bad inputs refused with one line.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    BERTH_TIMEOUT, OutputWithin, Scope, berth_with_config as berth_in, docker, fresh_home, inspect,
    text,
};

const PASSWORD: &str = "only-in-the-container-3f9a";

fn config(home: &Path, dir: &Path, extra: &str) -> PathBuf {
    let path = home.join("config.toml");
    std::fs::write(
        &path,
        format!("[backup]\ndir = \"{}\"\nkeep = 2\n{extra}", dir.display()),
    )
    .unwrap();
    path
}

fn psql(container: &str, sql: &str) -> String {
    docker(&[
        "exec",
        "-e",
        &format!("PGPASSWORD={PASSWORD}"),
        container,
        "psql",
        "-tA",
        "-U",
        "app",
        "-d",
        "shop",
        "-c",
        sql,
    ])
}

fn postgres(scope: &Scope) -> String {
    let db = scope.run_service(
        "db",
        1,
        &[
            "-e",
            &format!("POSTGRES_PASSWORD={PASSWORD}"),
            "-e",
            "POSTGRES_USER=app",
            "-e",
            "POSTGRES_DB=shop",
            "berth-test/postgres",
        ],
    );
    assert!(
        common::wait_until(Duration::from_secs(60), Duration::from_millis(250), || {
            inspect(&db, "{{.State.Health.Status}}") == "healthy"
        }),
        "postgres never turned healthy: {}",
        docker(&["logs", &db])
    );
    psql(
        &db,
        "create table items(id int primary key, name text); insert into items select g, 'item ' || g from generate_series(1, 500) g;",
    );
    db
}

#[test]
fn a_postgres_dump_is_written_checked_kept_and_listed() {
    let scope = Scope::new("backup-pg");
    let home = fresh_home();
    let dir = home.join("backups");
    let cfg = config(&home, &dir, "");
    let db = postgres(&scope);
    let project = scope.project();

    let mut metas = Vec::new();
    for _ in 0..3 {
        let out = berth_in(&home, &cfg, &["backup", "db", "-p", &project, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(!text(&out).contains(PASSWORD), "{}", text(&out));
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        metas.push(meta);
    }
    let last = &metas[2];
    let file = PathBuf::from(last["file"].as_str().unwrap());
    assert_eq!(file.parent().unwrap(), dir.join(&project).join("db"));
    assert_eq!(file.extension().unwrap(), "pgdump");
    // The numbers in the sidecar are the file's.
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        last["size"].as_u64().unwrap()
    );
    assert_eq!(common::sha256_of(&file), last["sha256"].as_str().unwrap());
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file.with_extension("pgdump.json")).unwrap())
            .unwrap();
    assert_eq!(&sidecar, last);
    assert_eq!(last["image"], "berth-test/postgres");
    // A real custom-format dump: pg_restore reads the table and its rows from it.
    let mut restore = std::process::Command::new("docker");
    restore
        .args(["exec", "-i", &db, "pg_restore", "-l"])
        .stdin(std::fs::File::open(&file).unwrap());
    let listing = text(&restore.output_within(BERTH_TIMEOUT).unwrap());
    assert!(listing.contains("TABLE DATA public items"), "{listing}");
    // keep = 2: the oldest of three is gone, dump and sidecar.
    let mut kept: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    kept.sort();
    let ids: Vec<&str> = metas[1..]
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        vec![
            format!("{}.pgdump", ids[0]),
            format!("{}.pgdump.json", ids[0]),
            format!("{}.pgdump", ids[1]),
            format!("{}.pgdump.json", ids[1]),
        ]
    );
    let out = berth_in(&home, &cfg, &["backup", "--list", "db", "-p", &project]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains(ids[1]), "{table}");
    // Audited, each.
    let audit = std::fs::read_to_string(home.join(".local/share/berth/audit.jsonl")).unwrap();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("\"action\":\"backup\"") && l.contains("\"result\":\"ok\""))
            .count(),
        3,
        "{audit}"
    );
    assert!(!audit.contains(PASSWORD));
}

#[test]
fn sqlite_and_a_command_that_fails_half_way() {
    let scope = Scope::new("backup-lite");
    let home = fresh_home();
    let dir = home.join("backups");
    let project = scope.project();
    let app = scope.run_service("app", 1, &["berth-test/sqlite"]);
    docker(&[
        "exec",
        &app,
        "sqlite3",
        "/data/app.db",
        "create table t(x); insert into t values (1), (2), (3);",
    ]);
    let worker = scope.run_service("worker", 1, &["berth-test/sqlite"]);
    let cfg = config(
        &home,
        &dir,
        &format!(
            "[services.\"{project}/app\"]\nbackup = \"sqlite:/data/app.db\"\n[services.\"{project}/worker\"]\nbackup = \"command: cat /etc/passwd; sleep 1; echo disk gone >&2; exit 4\"\n"
        ),
    );
    let out = berth_in(&home, &cfg, &["backup", "app", "-p", &project, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = meta["file"].as_str().unwrap();
    let rows = std::process::Command::new("sqlite3")
        .args([file, "select count(*) from t"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "3");

    let out = berth_in(&home, &cfg, &["backup", "worker", "-p", &project]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed (exit 4: disk gone); the partial file was removed"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join(&project).join("worker"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let audit = std::fs::read_to_string(home.join(".local/share/berth/audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"action\":\"backup\"") && l.contains("\"result\":\"failed\"")),
        "{audit}"
    );
    assert_eq!(inspect(&worker, "{{.State.Running}}"), "true");
}

#[test]
fn too_little_space_and_an_unwritable_directory_are_refused() {
    let scope = Scope::new("backup-space");
    let home = fresh_home();
    let project = scope.project();
    postgres(&scope);
    // A 64 KiB filesystem for the dumps: the database is megabytes.
    let small = home.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "the test mounts a tmpfs (root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let cfg = config(&home, &small, "");
    let out = berth_in(&home, &cfg, &["backup", "db", "-p", &project]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not enough free space in"), "{err}");
    assert!(err.contains("(the database's size)"), "{err}");
    assert!(err.contains("KiB is free"), "{err}");
    assert_eq!(
        std::fs::read_dir(small.join(&project).join("db"))
            .unwrap()
            .count(),
        0
    );

    // A directory that cannot be made: its parent is a file.
    let blocker = home.join("blocker");
    std::fs::write(&blocker, "a file").unwrap();
    let cfg = config(&home, &blocker.join("sub"), "");
    let out = berth_in(&home, &cfg, &["backup", "db", "-p", &project]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not writable"), "{err}");
    assert!(err.contains("set [backup] dir"), "{err}");
}

/// The console's `b`: a `Request::Backup` planned and run by the runbook, as the run view drives
/// it: the dump on disk holds the rows and matches its sidecar, the finished step names it, and
/// the run's own audit line is the only one.
#[tokio::test(flavor = "multi_thread")]
async fn the_consoles_backup_plan_writes_the_dump_and_audits_it_once() {
    use berth::runbook::{self, AuditLog, BackupRequest, Request, RunEvent, RunOptions};
    let scope = Scope::new("backup-plan");
    let home = fresh_home();
    let dir = home.join("backups");
    let project = scope.project();
    let app = scope.run_service("app", 1, &["berth-test/sqlite"]);
    docker(&[
        "exec",
        &app,
        "sqlite3",
        "/data/app.db",
        "create table t(x); insert into t values (7);",
    ]);
    let cfg = config(
        &home,
        &dir,
        &format!("[services.\"{project}/app\"]\nbackup = \"sqlite:/data/app.db\"\n"),
    );
    let config = berth::config::file::load(Some(&cfg)).unwrap().0;
    let engine = berth::engine::connect(
        &berth::target::Target::local(),
        &berth::ssh::SshOptions::default(),
    )
    .await
    .unwrap();
    let request = Request::Backup(BackupRequest {
        name: "app".into(),
        project: Some(project.clone()),
    });
    let plan = runbook::plan(&engine, &config, &request).await.unwrap();
    assert!(plan.mutating, "the console asks before a backup");
    assert_eq!(plan.steps.len(), 1);
    let audit = home.join("audit.jsonl");
    let (tx, mut rx) = tokio::sync::mpsc::channel(runbook::EVENT_CHANNEL);
    let options = RunOptions {
        audit: Some(AuditLog::at(&audit)),
        ..Default::default()
    };
    let task = tokio::spawn(runbook::execute_with(
        plan,
        engine,
        tx,
        tokio_util::sync::CancellationToken::new(),
        options,
    ));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let result = task.await.unwrap();
    assert!(result.ok, "{result:?}");
    let id = result.metrics["backup_id"].as_str().unwrap();
    let file = dir.join(&project).join("app").join(format!("{id}.sqlite"));
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file.with_extension("sqlite.json")).unwrap())
            .unwrap();
    assert_eq!(
        common::sha256_of(&file),
        sidecar["sha256"].as_str().unwrap()
    );
    let rows = std::process::Command::new("sqlite3")
        .arg(&file)
        .arg("select x from t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "7");
    // The finished step says where the dump went.
    assert!(
        events.iter().any(|e| matches!(e,
            RunEvent::StepFinished { step: 0, outcome } if outcome.ok && outcome.message.contains(&format!("{id}.sqlite")))),
        "{events:?}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["action"] == "backup" && e["result"] != "started")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["result"], "ok");
    assert_eq!(inspect(&app, "{{.State.Running}}"), "true");
}

/// `--download`: the dump also lands here, byte for byte the server's, under the default name in
/// a directory or at the path given.
#[test]
fn a_download_copies_the_dump_here_and_checks_it() {
    let scope = Scope::new("backup-dl");
    let home = fresh_home();
    let dir = home.join("backups");
    let project = scope.project();
    let app = scope.run_service("app", 1, &["berth-test/sqlite"]);
    docker(&[
        "exec",
        &app,
        "sqlite3",
        "/data/app.db",
        "create table t(x); insert into t select 'row ' || value from generate_series(1, 2000);",
    ]);
    let cfg = config(
        &home,
        &dir,
        &format!("[services.\"{project}/app\"]\nbackup = \"sqlite:/data/app.db\"\n"),
    );
    let here = home.join("laptop");
    std::fs::create_dir_all(&here).unwrap();
    let out = berth_in(
        &home,
        &cfg,
        &[
            "backup",
            "app",
            "-p",
            &project,
            "--json",
            "--download",
            here.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = meta["id"].as_str().unwrap();
    let copy = here.join(format!("{project}-app-{id}.sqlite"));
    assert_eq!(meta["download"].as_str().unwrap(), copy.to_str().unwrap());
    assert_eq!(common::sha256_of(&copy), meta["sha256"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(meta["file"].as_str().unwrap()).unwrap()
    );
    let rows = std::process::Command::new("sqlite3")
        .arg(&copy)
        .arg("select count(*) from t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "2000");
    assert_eq!(
        std::fs::read_dir(&here).unwrap().count(),
        1,
        "no partial file left"
    );

    // A file path: written there.
    let named = here.join("latest.sqlite");
    let out = berth_in(
        &home,
        &cfg,
        &[
            "backup",
            "app",
            "-p",
            &project,
            "--download",
            named.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(sha256 checked)"),
        "{}",
        text(&out)
    );
    let listed = berth_in(
        &home,
        &cfg,
        &["backup", "--list", "app", "-p", &project, "--json"],
    );
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(common::sha256_of(&named), last["sha256"].as_str().unwrap());
}
