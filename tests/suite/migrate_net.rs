//! `berth migrate` with its safety net on the real engine and a real Django (Debian's python3 and
//! python3-django in the FROM-scratch `berth-test/django` image, its database sqlite in
//! /data/app.db): the plan is Django's own `migrate --plan`, the irreversible migration (a
//! RunPython without a reverse and a RemoveField) is flagged, production takes a backup first
//! (its rows read back from the file on the server), the state is read back with
//! `showmigrations`, migrating back across the irreversible one names that backup, and the
//! restore brings the rows and the schema back.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Scope, berth_with_config as berth_in, docker, fresh_home, text};

/// The migration runner of a test image: its sqlite database, berth's preset and status command.
struct Runner {
    database: &'static str,
    preset: &'static str,
    status: &'static str,
}

/// The config of a `PROJECT/app` service migrated by `runner`, backed up under HOME/backups, on
/// the server `p` (the local engine), production or not.
fn write_config(home: &Path, project: &str, runner: Runner, production: bool) -> PathBuf {
    let config = home.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[backup]\ndir = \"{}\"\nkeep = 5\n[services.\"{project}/app\"]\nbackup = \"sqlite:{}\"\nmigrate_preset = \"{}\"\nmigrate_status = \"{}\"\n[servers.p]\ntarget = \"unix:///var/run/docker.sock\"\n{}",
            home.join("backups").display(),
            runner.database,
            runner.preset,
            runner.status,
            if production {
                "environment = \"production\"\n"
            } else {
                ""
            }
        ),
    )
    .unwrap();
    config
}

/// One Django app service with migration 0001 applied and three rows whose notes 0003 drops.
struct App {
    /// Removes the container when the test ends, also on a panic.
    _scope: Scope,
    container: String,
    project: String,
    home: PathBuf,
    config: PathBuf,
}

const ROWS: &str = "select id, name, note from shop_item order by id";

/// What `showmigrations` reports applied once every migration of the fixture ran.
const ALL_APPLIED: [&str; 3] = [
    "shop.0001_initial",
    "shop.0002_item_price",
    "shop.0003_drop_note",
];

impl App {
    fn up(area: &str, production: bool) -> App {
        let scope = Scope::new(area);
        let container = scope.run_service("app", 1, &["berth-test/django"]);
        let project = scope.project();
        let home = fresh_home();
        let config = write_config(
            &home,
            &project,
            Runner {
                database: "/data/app.db",
                preset: "django",
                status: "python manage.py showmigrations",
            },
            production,
        );
        docker(&[
            "exec",
            &container,
            "python",
            "manage.py",
            "migrate",
            "shop",
            "0001",
        ]);
        let app = App {
            _scope: scope,
            container,
            project,
            home,
            config,
        };
        app.sql("insert into shop_item(name, note) values ('tea', 'green'), ('cup', 'blue rim'), ('pot', 'cast iron');");
        app
    }

    fn sql(&self, q: &str) -> String {
        docker(&["exec", &self.container, "sqlite3", "/data/app.db", q])
    }

    /// What Django itself reports applied, read in the container.
    fn applied(&self) -> Vec<String> {
        let out = docker(&[
            "exec",
            &self.container,
            "python",
            "manage.py",
            "showmigrations",
            "--plan",
        ]);
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("[X]"))
            .map(|n| n.trim().to_string())
            .collect()
    }

    fn berth(&self, args: &[&str]) -> std::process::Output {
        berth_in(&self.home, &self.config, args)
    }

    fn full(&self) -> String {
        format!("{}/app", self.project)
    }

    fn dumps(&self) -> Vec<PathBuf> {
        let dir = self.home.join("backups").join(&self.project).join("app");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn audit(&self, action: &str) -> Vec<serde_json::Value> {
        common::ended_audit(&self.home, action)
    }
}

/// An earlier release of the app: the same Django under a tag of the test's own, built before the
/// migration (so older than it), removed when the test ends.
struct OldRelease(String);

impl OldRelease {
    fn build(app: &App) -> OldRelease {
        let tag = format!("{}:old", app.project);
        let dir = app.home.join("old-release");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM berth-test/django\nLABEL release=old\n",
        )
        .unwrap();
        docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
        OldRelease(tag)
    }
}

impl Drop for OldRelease {
    fn drop(&mut self) {
        let _ = common::docker_try(&["rmi", "-f", &self.0]);
    }
}

/// sqlite3 of this machine on a dump file: the server's copy, read where it was written.
fn sqlite_file(file: &Path, q: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(file)
        .arg(q)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_plan_lists_the_pending_migrations_and_flags_the_irreversible_one() {
    let app = App::up("mnet-plan", false);
    let out = app.berth(&["migrate", "app", "-p", &app.project, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains("note: migration plan (`python manage.py migrate --plan`): applies 2 migration(s), 1 IRREVERSIBLE"),
        "{said}"
    );
    assert!(
        said.contains("note:   shop.0002_item_price: Add field price to item\n"),
        "{said}"
    );
    assert!(
        said.contains("note:   shop.0003_drop_note IRREVERSIBLE (RemoveField note from item: the column's data is dropped; RunPython without a reverse): Raw Python operation -> Price from the note's length; Remove field note from item"),
        "{said}"
    );
    // No backup off production unless asked, and the state is what Django will report after.
    assert!(!said.contains("dump the sqlite database"), "{said}");
    assert!(
        said.contains("after: `python manage.py showmigrations` reports applied: shop.0002_item_price, shop.0003_drop_note"),
        "{said}"
    );
    // Nothing was applied, and nothing backed up.
    assert_eq!(app.applied(), vec!["shop.0001_initial"]);
    assert!(app.dumps().is_empty());
}

#[test]
fn on_production_the_backup_comes_first_and_is_the_way_back_across_the_irreversible_migration() {
    let app = App::up("mnet-prod", true);
    let old = OldRelease::build(&app);
    let before = app.sql(ROWS);
    assert_eq!(before, "1|tea|green\n2|cup|blue rim\n3|pot|cast iron");
    let full = app.full();
    let out = app.berth(&[
        "-s",
        "p",
        "migrate",
        "app",
        "-p",
        &app.project,
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // Django reports both applied; the RunPython ran and the notes are gone.
    assert_eq!(app.applied(), ALL_APPLIED);
    assert_eq!(
        app.sql("select id, name, price from shop_item order by id"),
        "1|tea|5\n2|cup|8\n3|pot|9"
    );
    // The backup on the server holds the rows and the schema as they were before.
    let dumps = app.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert_eq!(sqlite_file(&dumps[0], ROWS), before);
    assert_eq!(
        sqlite_file(
            &dumps[0],
            "select group_concat(name) from django_migrations where app = 'shop'"
        ),
        "0001_initial"
    );
    let mut sidecar = dumps[0].clone().into_os_string();
    sidecar.push(".json");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    let id = meta["id"].as_str().unwrap().to_string();
    assert_eq!(
        meta["before_migrations"],
        serde_json::json!(["shop.0002_item_price", "shop.0003_drop_note"])
    );
    // The migration state at that moment, from the status command.
    assert!(
        meta["migration"]
            .as_str()
            .unwrap()
            .contains("[ ] 0003_drop_note"),
        "{meta}"
    );
    let migrated = app.audit("migrate");
    assert_eq!(migrated.len(), 1, "{migrated:?}");
    assert_eq!(migrated[0]["result"], "ok");
    assert_eq!(migrated[0]["parameters"]["backup"], "taken");
    assert!(
        migrated[0]["message"].as_str().unwrap().contains(&id),
        "{migrated:?}"
    );

    // A rollback to the release before it says so, and names the backup as the way back.
    let image = common::inspect(&app.container, "{{.Image}}");
    let out = app.berth(&[
        "-s",
        "p",
        "rollback",
        "app",
        "-p",
        &app.project,
        "--to",
        &old.0,
        "--dry-run",
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "note: {} is older than migration shop.0003_drop_note (IRREVERSIBLE), which the running release applied",
            old.0
        )) && said.contains(&format!(
            "restore backup {id}, taken before migration shop.0003_drop_note: berth restore app -p {} --from {id}",
            app.project
        )),
        "{said}"
    );
    assert_eq!(common::inspect(&app.container, "{{.Image}}"), image);

    // Migrating back across 0003 is refused and names the backup taken before it.
    let out = app.berth(&[
        "-s",
        "p",
        "migrate",
        "app",
        "-p",
        &app.project,
        "--target",
        "shop 0001",
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "restore backup {id}, taken before migration shop.0003_drop_note: berth restore app -p {} --from {id}",
            app.project
        )),
        "{err}"
    );
    assert_eq!(app.applied().len(), 3, "nothing was migrated back");

    // That restore brings back the rows, the dropped column and Django's own record of it.
    let out = app.berth(&[
        "-s",
        "p",
        "restore",
        "app",
        "-p",
        &app.project,
        "--from",
        &id,
        "--no-safety-backup",
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.sql(ROWS), before);
    assert_eq!(app.applied(), vec!["shop.0001_initial"]);
}

#[test]
fn skipping_the_backup_on_production_needs_a_reason_and_is_audited() {
    let app = App::up("mnet-skip", true);
    let full = app.full();
    let out = app.berth(&[
        "-s",
        "p",
        "migrate",
        "app",
        "-p",
        &app.project,
        "--no-backup",
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "berth: --no-backup needs --reason TEXT: say why this migration runs without a backup (it is written to the audit)"
    );
    assert_eq!(app.applied(), vec!["shop.0001_initial"]);
    let out = app.berth(&[
        "-s",
        "p",
        "migrate",
        "app",
        "-p",
        &app.project,
        "--no-backup",
        "--reason",
        "the table is rebuilt by the nightly import",
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.applied().len(), 3);
    assert!(app.dumps().is_empty());
    let migrated = app.audit("migrate");
    assert_eq!(migrated.len(), 1, "{migrated:?}");
    assert_eq!(migrated[0]["parameters"]["backup"], "skipped");
    assert_eq!(
        migrated[0]["parameters"]["reason"],
        "the table is rebuilt by the nightly import"
    );
}

/// Off production: `--backup` asks for the backup; a reversible migration goes back with
/// `--target`, and the state Django reports afterwards is checked.
#[test]
fn a_reversible_migration_goes_back_and_the_backup_is_taken_when_asked() {
    let app = App::up("mnet-back", false);
    let out = app.berth(&[
        "migrate",
        "app",
        "-p",
        &app.project,
        "--target",
        "shop 0002",
        "--backup",
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        app.applied(),
        vec!["shop.0001_initial", "shop.0002_item_price"]
    );
    let dumps = app.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let out = app.berth(&[
        "migrate",
        "app",
        "-p",
        &app.project,
        "--target",
        "shop 0001",
        "--yes",
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("undoes 1 migration(s)")
            && said.contains("reports not applied: shop.0002_item_price"),
        "{said}"
    );
    assert_eq!(app.applied(), vec!["shop.0001_initial"]);
    assert_eq!(app.dumps().len(), 1, "no backup unless asked");
    assert_eq!(
        app.sql(ROWS),
        "1|tea|green\n2|cup|blue rim\n3|pot|cast iron"
    );
}

/// The run's end is Django's word, not the command's exit code: a configured command that applies
/// less than the plan promised fails the run, naming what is not applied.
#[test]
fn a_migration_that_applies_less_than_its_plan_fails_its_postcondition() {
    let app = App::up("mnet-less", false);
    let cfg = std::fs::read_to_string(&app.config).unwrap().replace(
        "migrate_preset = \"django\"\n",
        "migrate_preset = \"django\"\nmigrate = \"python manage.py migrate shop 0002\"\n",
    );
    std::fs::write(&app.config, cfg).unwrap();
    let out = app.berth(&["migrate", "app", "-p", &app.project, "--yes"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("reports applied: shop.0002_item_price, shop.0003_drop_note: not applied: shop.0003_drop_note"),
        "{said}"
    );
    assert_eq!(
        app.applied(),
        vec!["shop.0001_initial", "shop.0002_item_price"]
    );
}

/// alembic (Debian's python3-alembic in `berth-test/alembic`): its history is the plan, a
/// downgrade that raises or is empty is flagged, production backs up first, `alembic current`
/// is read back, and going back across the raising downgrade names the backup.
#[test]
fn alembic_plan_backup_state_and_the_way_back() {
    let scope = Scope::new("mnet-alembic");
    let container = scope.run_service("app", 1, &["berth-test/alembic"]);
    let project = scope.project();
    let home = fresh_home();
    let config = write_config(
        &home,
        &project,
        Runner {
            database: "/data/alembic.db",
            preset: "alembic",
            status: "alembic current",
        },
        true,
    );
    let current = || docker(&["exec", &container, "alembic", "current"]);
    docker(&["exec", &container, "alembic", "upgrade", "a1"]);
    let sql = |q: &str| docker(&["exec", &container, "sqlite3", "/data/alembic.db", q]);
    sql("insert into items(name, note) values ('tea', 'green'), ('pot', 'cast iron');");
    let rows = "select id, name, note from items order by id";
    let before = sql(rows);
    assert_eq!(current(), "a1");
    let full = format!("{project}/app");
    let berth = |args: &[&str]| berth_in(&home, &config, args);

    let out = berth(&["-s", "p", "migrate", "app", "-p", &project, "--dry-run"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("note: migration plan (`alembic history -r current:heads --verbose`): applies 3 migration(s), 2 IRREVERSIBLE"),
        "{said}"
    );
    assert!(
        said.contains("note:   a2: price: reversible, the column dropped again on the way back\n"),
        "{said}"
    );
    assert!(
        said.contains("note:   a3 IRREVERSIBLE (its downgrade raises): drop note: irreversible, the notes are gone"),
        "{said}"
    );
    assert!(
        said.contains("note:   a4 IRREVERSIBLE (its downgrade is empty)"),
        "{said}"
    );
    assert!(
        said.contains("after: `alembic current` reports applied: a2, a3, a4"),
        "{said}"
    );
    assert_eq!(current(), "a1", "a dry run applies nothing");

    let out = berth(&[
        "-s",
        "p",
        "migrate",
        "app",
        "-p",
        &project,
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(current(), "a4 (head)");
    assert_eq!(
        sql("select id, name, price from items order by id"),
        "1|tea|5\n2|pot|9"
    );
    let dir = home.join("backups").join(&project).join("app");
    let dumps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .collect();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert_eq!(sqlite_file(&dumps[0], rows), before);
    let mut sidecar = dumps[0].clone().into_os_string();
    sidecar.push(".json");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    assert_eq!(
        meta["before_migrations"],
        serde_json::json!(["a2", "a3", "a4"])
    );
    assert_eq!(meta["irreversible"], serde_json::json!(["a3", "a4"]));
    let id = meta["id"].as_str().unwrap().to_string();

    let out = berth(&[
        "-s",
        "p",
        "migrate",
        "app",
        "-p",
        &project,
        "--target",
        "a1",
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "a3 cannot be migrated back (its downgrade raises): restore backup {id}, taken before migration a3: berth restore app -p {project} --from {id}"
        )),
        "{err}"
    );
    assert_eq!(current(), "a4 (head)");

    let out = berth(&[
        "-s",
        "p",
        "restore",
        "app",
        "-p",
        &project,
        "--from",
        &id,
        "--no-safety-backup",
        "--yes",
        "--confirm",
        &full,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sql(rows), before);
    assert_eq!(current(), "a1");
}

/// Over SSH (a real sshd, `-s box`): the plan is read through the engine, the backup is written
/// by the server's shell in an SSH session (an SSH target has no other: `backup::shell::server_of`),
/// and the refusal to go back reads the backups there.
#[test]
fn over_ssh_the_backup_before_a_migration_is_written_and_named_by_the_server() {
    use common::sshd::{ClientHome, Sshd, SshdOptions};
    use common::{BERTH_TIMEOUT, OutputWithin, isolate};
    let sshd = Sshd::start(SshdOptions::default());
    let client = ClientHome::new(true);
    sshd.authorize(&client.ssh("id_ed25519"));
    client.trust(&sshd);
    client.write_box_config(&sshd, "  IdentitiesOnly yes\n");
    let app = App::up("mnet-ssh", false);
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        isolate(&mut c, client.path());
        c.env("SSH_AUTH_SOCK", "")
            .arg("--config")
            .arg(&app.config)
            .args(["-s", "box"])
            .args(args)
            .output_within(BERTH_TIMEOUT)
            .unwrap()
    };
    let before = app.sql(ROWS);
    let out = run(&["migrate", "app", "-p", &app.project, "--backup", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.applied().len(), 3);
    let dumps = app.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert_eq!(sqlite_file(&dumps[0], ROWS), before);
    let id = dumps[0].file_stem().unwrap().to_string_lossy().to_string();
    let out = run(&[
        "migrate",
        "app",
        "-p",
        &app.project,
        "--target",
        "shop 0002",
        "--yes",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "restore backup {id}, taken before migration shop.0003_drop_note"
        )),
        "{err}"
    );
    assert_eq!(app.applied().len(), 3);
}

/// The console's `M` on the Django service: the plan the CLI shows (the pending migrations, the
/// irreversible one flagged) is asked first; confirmed, the run applies them, and Django itself
/// reports every migration applied; the run is audited.
#[test]
fn console_m_shows_the_plan_asks_then_migrates() {
    let app = App::up("mnet-console", false);
    let (config, home) = (
        app.config.display().to_string(),
        app.home.display().to_string(),
    );
    // The audit goes where the CLI's goes: the data dir under this HOME.
    let mut s = common::pty::Session::start(
        &["--config", &config, "-s", "p"],
        &[("HOME", home.as_str())],
    );
    s.expect(&app.project, Duration::from_secs(30));
    s.type_keys(&format!("/{}\r", app.project));
    s.expect("filter “", Duration::from_secs(5));
    s.type_keys("M");
    s.expect("y / Enter go ahead", Duration::from_secs(30));
    let plan = s.text();
    assert!(
        plan.contains("(`python manage.py migrate --plan`): applies 2 migration(s), 1")
            && plan.contains("shop.0002_item_price: Add field price to item")
            && plan.contains("shop.0003_drop_note IRREVERSIBLE (RemoveField note from item"),
        "the console shows the CLI's plan:\n{plan}"
    );
    // Asked, not run: nothing applied yet.
    assert_eq!(app.applied(), vec!["shop.0001_initial"]);
    s.type_keys("y");
    s.expect("done in", Duration::from_secs(60));
    assert_eq!(app.applied(), ALL_APPLIED);
    let runs = app.audit("migrate");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["result"], "ok", "{runs:?}");
    s.quit_ok();
}
