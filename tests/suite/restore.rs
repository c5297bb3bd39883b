//! `berth restore` on the real engine: a compose project (docker-compose) of a real PostgreSQL
//! (the FROM-scratch fixture) and a web app, and sqlite. The rows read back through psql equal the
//! ones backed up; the app was stopped and runs again; a file that does not match its record is
//! refused with nothing changed; the safety backup is on disk, and skipping it is audited.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::compose::ComposeProject;
use common::{
    BERTH_TIMEOUT, OutputWithin, Scope, berth_with_config as berth_in, docker, fresh_home, inspect,
    isolate, text,
};

const PASSWORD: &str = "restore-only-in-the-container-77c1";

fn config(home: &Path, extra: &str) -> PathBuf {
    let path = home.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[backup]\ndir = \"{}\"\nkeep = 5\n{extra}",
            home.join("backups").display()
        ),
    )
    .unwrap();
    path
}

/// The compose project of `yaml` up, with its `db` and `web` containers (ids) both healthy.
fn db_and_web(area: &str, yaml: &str) -> (ComposeProject, String, String) {
    let project = ComposeProject::from_yaml(area, yaml, None);
    let up = project.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    let id_of = |service: &str| {
        let out = project.compose(&["ps", "-q", service]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (db, web) = (id_of("db"), id_of("web"));
    for c in [&db, &web] {
        assert!(
            common::wait_until(Duration::from_secs(60), Duration::from_millis(250), || {
                inspect(c, "{{.State.Health.Status}}") == "healthy"
            }),
            "{c} never turned healthy: {}",
            project.serving()
        );
    }
    (project, db, web)
}

/// A project of `db` (PostgreSQL) and `web`, which depends on it; both healthy, `items` filled.
struct Shop {
    project: ComposeProject,
    db: String,
    web: String,
}

impl Shop {
    fn up(area: &str) -> Shop {
        let yaml = format!(
            "version: \"2.4\"\nservices:\n  db:\n    image: berth-test/postgres\n    environment:\n      POSTGRES_PASSWORD: {PASSWORD}\n      POSTGRES_USER: app\n      POSTGRES_DB: shop\n    stop_grace_period: 5s\n  web:\n    image: berth-test/web:v1\n    depends_on: [db]\n    stop_grace_period: 1s\n"
        );
        let (project, db, web) = db_and_web(area, &yaml);
        let shop = Shop { project, db, web };
        shop.psql(
            "create table items(id int primary key, name text); insert into items select g, 'item ' || g from generate_series(1, 300) g;",
        );
        shop
    }

    fn psql(&self, sql: &str) -> String {
        docker(&[
            "exec",
            "-e",
            &format!("PGPASSWORD={PASSWORD}"),
            &self.db,
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

    /// Every row, in order, as one text.
    fn rows(&self) -> String {
        self.psql("select coalesce(string_agg(id || '=' || name, ',' order by id), '') from items")
    }

    /// Deletes, changes and adds rows.
    fn change(&self) {
        self.psql(
            "delete from items where id > 200; update items set name = 'changed' where id <= 10; insert into items values (9999, 'new');",
        );
    }

    fn backup(&self, home: &Path, cfg: &Path) -> serde_json::Value {
        let out = berth_in(
            home,
            cfg,
            &["backup", "db", "-p", &self.project.name, "--json"],
        );
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn started_at(&self, c: &str) -> String {
        inspect(c, "{{.State.StartedAt}}")
    }

    fn dumps(&self, home: &Path) -> Vec<serde_json::Value> {
        let dir = home.join("backups").join(&self.project.name).join("db");
        let mut sidecars: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        sidecars.sort();
        sidecars
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

/// The one restore the audit holds: it ended as `result`, its safety backup `safety`.
#[track_caller]
fn the_one_restore(home: &Path, result: &str, safety: &str) -> serde_json::Value {
    let restores = common::ended_audit(home, "restore");
    assert_eq!(restores.len(), 1, "{restores:?}");
    assert_eq!(restores[0]["result"], result);
    assert_eq!(restores[0]["parameters"]["safety_backup"], safety);
    restores[0].clone()
}

#[test]
fn a_postgres_restore_brings_the_rows_back_after_a_safety_backup() {
    let home = fresh_home();
    let cfg = config(&home, "");
    let shop = Shop::up("restore-pg");
    let project = shop.project.name.clone();
    let before = shop.rows();
    assert!(before.starts_with("1=item 1,2=item 2,"), "{before}");
    let backup = shop.backup(&home, &cfg);
    let id = backup["id"].as_str().unwrap();
    shop.change();
    let changed = shop.rows();
    assert_ne!(changed, before);

    // The plan names what is overwritten and what stops; a dry run changes nothing.
    let out = berth_in(
        &home,
        &cfg,
        &["restore", "db", "-p", &project, "--from", id, "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains(&format!("stops while it runs: web ({project}_web_1)")),
        "{plan}"
    );
    assert!(plan.contains(backup["file"].as_str().unwrap()), "{plan}");
    assert_eq!(shop.rows(), changed);

    let web_started = shop.started_at(&shop.web);
    let db_started = shop.started_at(&shop.db);
    let out = berth_in(
        &home,
        &cfg,
        &["restore", "db", "-p", &project, "--from", id, "--yes"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));

    // The database holds the backed-up rows again, in the same container.
    assert_eq!(shop.rows(), before);
    assert_eq!(shop.started_at(&shop.db), db_started);
    // The app was stopped and started again, and serves healthy.
    assert_ne!(shop.started_at(&shop.web), web_started);
    assert_eq!(inspect(&shop.web, "{{.State.Running}}"), "true");
    assert_eq!(inspect(&shop.web, "{{.State.Health.Status}}"), "healthy");

    // The safety backup holds the data as it was before the restore.
    let dumps = shop.dumps(&home);
    assert_eq!(dumps.len(), 2, "{dumps:?}");
    let safety = &dumps[1];
    assert_eq!(
        safety["reason"].as_str().unwrap(),
        format!("before restoring {id}")
    );
    let safety_file = PathBuf::from(safety["file"].as_str().unwrap());
    assert_eq!(
        common::sha256_of(&safety_file),
        safety["sha256"].as_str().unwrap()
    );
    let mut listing = std::process::Command::new("docker");
    listing
        .args(["exec", "-i", &shop.db, "pg_restore", "-f", "-", "-a"])
        .stdin(std::fs::File::open(&safety_file).unwrap());
    let data = text(&listing.output_within(BERTH_TIMEOUT).unwrap());
    assert!(
        data.contains("9999\tnew"),
        "the safety dump has the changed rows"
    );

    let restore = the_one_restore(&home, "ok", "taken");
    assert_eq!(restore["parameters"]["from"], id);
    // It names the safety backup to go back to.
    let message = restore["message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!(
            "safety backup {})",
            safety["id"].as_str().unwrap()
        )),
        "{message}"
    );
}

#[test]
fn a_backup_that_does_not_match_its_record_is_refused_and_skipping_the_safety_backup_is_audited() {
    let home = fresh_home();
    let cfg = config(&home, "");
    let shop = Shop::up("restore-bad");
    let project = shop.project.name.clone();
    let first = shop.backup(&home, &cfg);
    shop.change();
    let changed = shop.rows();
    let web_started = shop.started_at(&shop.web);

    // One byte of the dump changed on the server's disk.
    let file = PathBuf::from(first["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let out = berth_in(
        &home,
        &cfg,
        &[
            "restore",
            "db",
            "-p",
            &project,
            "--from",
            first["id"].as_str().unwrap(),
            "--yes",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    let failed: Vec<&str> = said.lines().filter(|l| l.starts_with("FAILED:")).collect();
    assert_eq!(failed.len(), 1, "{said}");
    assert!(
        failed[0].contains("does not match its record")
            && failed[0].contains("nothing was changed"),
        "{said}"
    );
    // Nothing changed: the rows, the app (never stopped), no safety backup taken.
    assert_eq!(shop.rows(), changed);
    assert_eq!(shop.started_at(&shop.web), web_started);
    assert_eq!(shop.dumps(&home).len(), 1);

    // A sound backup without the safety one: restored, and the audit says it was skipped.
    let second = shop.backup(&home, &cfg);
    let at_second = shop.rows();
    shop.psql("delete from items");
    assert_eq!(shop.rows(), "");
    let out = berth_in(
        &home,
        &cfg,
        &[
            "restore",
            "db",
            "-p",
            &project,
            "--from",
            second["id"].as_str().unwrap(),
            "--no-safety-backup",
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(shop.rows(), at_second);
    assert_eq!(shop.dumps(&home).len(), 2, "no safety backup was written");
    assert_eq!(inspect(&shop.web, "{{.State.Health.Status}}"), "healthy");
    let restores = common::ended_audit(&home, "restore");
    assert_eq!(restores.len(), 2, "{restores:?}");
    assert_eq!(restores[0]["result"], "failed");
    assert_eq!(restores[1]["result"], "ok");
    assert_eq!(restores[1]["parameters"]["safety_backup"], "skipped");
}

#[test]
fn a_sqlite_database_is_restored_from_its_file() {
    let scope = Scope::new("restore-lite");
    let home = fresh_home();
    let project = scope.project();
    let app = scope.run_service("app", 1, &["berth-test/sqlite"]);
    let sql = |q: &str| docker(&["exec", &app, "sqlite3", "/data/app.db", q]);
    sql("create table t(x); insert into t values (1), (2), (3);");
    let cfg = config(
        &home,
        &format!(
            "[services.\"{project}/app\"]\nbackup = \"sqlite:/data/app.db\"\n[servers.p]\ntarget = \"unix:///var/run/docker.sock\"\nenvironment = \"production\"\n"
        ),
    );
    let out = berth_in(&home, &cfg, &["backup", "app", "-p", &project, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    sql("delete from t where x < 3; insert into t values (40);");
    assert_eq!(sql("select group_concat(x) from t"), "3,40");
    let id = meta["id"].as_str().unwrap();
    let full = format!("{project}/app");
    // Production: --yes alone is not enough, the name must be typed.
    let out = berth_in(
        &home,
        &cfg,
        &[
            "-s", "p", "restore", "app", "-p", &project, "--from", id, "--yes",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    // (`app` or `PROJECT/app`: other tests' projects may have an `app` at the same time.)
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is production") && err.contains("add --confirm "),
        "{}",
        text(&out)
    );
    assert_eq!(sql("select group_concat(x) from t"), "3,40");
    let out = berth_in(
        &home,
        &cfg,
        &[
            "-s",
            "p",
            "restore",
            "app",
            "-p",
            &project,
            "--from",
            id,
            "--yes",
            "--confirm",
            &full,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sql("select group_concat(x) from t"), "1,2,3");
    assert_eq!(inspect(&app, "{{.State.Running}}"), "true");
}

/// MariaDB (the FROM-scratch fixture from the host's binaries), found by its image: the dump is
/// taken with the root password from the container's environment, and the restore overwrites the
/// whole database: rows changed since come back, and a table made since is gone.
#[test]
fn a_mariadb_restore_brings_the_rows_back_and_drops_what_came_since() {
    let home = fresh_home();
    let cfg = config(&home, "");
    let yaml = format!(
        "version: \"2.4\"\nservices:\n  db:\n    image: berth-test/mariadb\n    environment:\n      MARIADB_ROOT_PASSWORD: {PASSWORD}\n      MARIADB_DATABASE: shop\n    stop_grace_period: 5s\n  web:\n    image: berth-test/web:v1\n    depends_on: [db]\n    stop_grace_period: 1s\n"
    );
    let (project, db, web) = db_and_web("restore-maria", &yaml);
    let sql = |q: &str| {
        docker(&[
            "exec",
            "-e",
            &format!("MYSQL_PWD={PASSWORD}"),
            &db,
            "mysql",
            "-uroot",
            "-N",
            "shop",
            "-e",
            q,
        ])
    };
    sql(
        "create table items(id int primary key, name text); insert into items select seq, concat('item ', seq) from seq_1_to_300;",
    );
    let rows = || sql("select count(*), sum(id), group_concat(name order by id) from items");
    let tables = || sql("show tables");
    let before = rows();
    assert!(before.starts_with("300\t45150\titem 1,item 2,"), "{before}");

    let out = berth_in(
        &home,
        &cfg,
        &["backup", "db", "-p", &project.name, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));
    let backup: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(backup["kind"], "mysql", "{backup}");
    let file = PathBuf::from(backup["file"].as_str().unwrap());
    assert_eq!(common::sha256_of(&file), backup["sha256"].as_str().unwrap());

    sql(
        "delete from items where id > 200; update items set name = 'changed' where id <= 10; create table extra(x int);",
    );
    assert_ne!(rows(), before);
    assert_eq!(tables(), "extra\nitems");
    let web_started = inspect(&web, "{{.State.StartedAt}}");
    let out = berth_in(
        &home,
        &cfg,
        &[
            "restore",
            "db",
            "-p",
            &project.name,
            "--from",
            backup["id"].as_str().unwrap(),
            "--no-safety-backup",
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));
    assert_eq!(rows(), before);
    assert_eq!(tables(), "items", "the table made since the backup is gone");
    // The app was stopped while it ran and serves again.
    assert_ne!(inspect(&web, "{{.State.StartedAt}}"), web_started);
    assert_eq!(inspect(&web, "{{.State.Health.Status}}"), "healthy");
    the_one_restore(&home, "ok", "skipped");
}

/// The `command:` kind, whose restore fails half way: the project's other service was stopped,
/// runs again, and the run fails with the restore's own reason.
#[test]
fn a_failing_restore_starts_the_stopped_services_again_and_says_why() {
    let scope = Scope::new("restore-cmd");
    let home = fresh_home();
    let project = scope.project();
    let store = scope.run_service("store", 1, &["berth-test/sqlite"]);
    docker(&["exec", &store, "sh", "-c", "echo 'state 1' > /data/state"]);
    let worker = scope.run_service("worker", 1, &["--stop-timeout", "1", "berth-test/sqlite"]);
    let cfg = config(
        &home,
        &format!(
            "[services.\"{project}/store\"]\nbackup = \"command: cat /data/state\"\nrestore = \"command: cat > /data/incoming; echo 'disk is read-only' >&2; exit 3\"\n"
        ),
    );
    let out = berth_in(&home, &cfg, &["backup", "store", "-p", &project, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let worker_started = inspect(&worker, "{{.State.StartedAt}}");
    let out = berth_in(
        &home,
        &cfg,
        &[
            "restore",
            "store",
            "-p",
            &project,
            "--from",
            meta["id"].as_str().unwrap(),
            "--no-safety-backup",
            "--yes",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.lines().any(|l| l.starts_with("FAILED:")
            && l.contains("the restore of")
            && l.contains("exit 3: disk is read-only")),
        "{said}"
    );
    // The dump reached the container's restore command, streamed from the file on the server.
    assert_eq!(
        docker(&["exec", &store, "cat", "/data/incoming"]),
        "state 1"
    );
    // The worker was stopped for the restore and runs again.
    assert_ne!(inspect(&worker, "{{.State.StartedAt}}"), worker_started);
    assert_eq!(inspect(&worker, "{{.State.Running}}"), "true");
    the_one_restore(&home, "failed", "skipped");
}

/// Over SSH (a real sshd, `-s box`): the dump is written by the server's shell, downloaded
/// through the session and checked, and restored from the server's file.
#[test]
fn over_ssh_a_backup_is_downloaded_and_restored() {
    use common::sshd::{ClientHome, Sshd, SshdOptions};
    // VERBOSE: sshd logs each command session, the proof that berth's shell ran there.
    let sshd = Sshd::start(SshdOptions {
        log_level: "VERBOSE",
        ..SshdOptions::default()
    });
    let client = ClientHome::new(true);
    sshd.authorize(&client.ssh("id_ed25519"));
    client.trust(&sshd);
    client.write_box_config(&sshd, "  IdentitiesOnly yes\n");
    let scope = Scope::new("restore-ssh");
    let project = scope.project();
    let app = scope.run_service("app", 1, &["berth-test/sqlite"]);
    let sql = |q: &str| docker(&["exec", &app, "sqlite3", "/data/app.db", q]);
    sql("create table t(x); insert into t values (1), (2);");
    let work = fresh_home();
    let cfg = config(
        &work,
        &format!("[services.\"{project}/app\"]\nbackup = \"sqlite:/data/app.db\"\n"),
    );
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        isolate(&mut c, client.path());
        c.env("SSH_AUTH_SOCK", "")
            .arg("--config")
            .arg(&cfg)
            .args(["-s", "box"])
            .args(args)
            .output_within(BERTH_TIMEOUT)
            .unwrap()
    };
    let copy = work.join("copy.sqlite");
    let out = run(&[
        "backup",
        "app",
        "-p",
        &project,
        "--json",
        "--download",
        copy.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(common::sha256_of(&copy), meta["sha256"].as_str().unwrap());
    sql("delete from t");
    let out = run(&[
        "restore",
        "app",
        "-p",
        &project,
        "--from",
        meta["id"].as_str().unwrap(),
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sql("select group_concat(x) from t"), "1,2");
    // The scripts and the download ran as commands of the SSH sessions, in both runs.
    let log = sshd.log();
    assert!(log.matches("Accepted publickey").count() >= 2, "{log}");
    assert!(
        log.matches("Starting session: command").count() >= 4,
        "{log}"
    );
}
