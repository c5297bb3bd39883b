//! What kind of database a service holds, and the scripts that dump it, restore it and measure
//! it, run inside its container. The credentials are read there, from the container's own
//! environment, by the script: berth never sees, passes or prints them.

use crate::engine::model::Container;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `pg_dump -Fc`; `POSTGRES_USER`, `POSTGRES_PASSWORD(_FILE)`, `POSTGRES_DB` as the official
    /// image reads them.
    Postgres,
    /// `mysqldump --single-transaction --add-drop-database` (or `mariadb-dump`): its restore
    /// overwrites the whole database, tables made since included; `MYSQL_*` / `MARIADB_*`.
    Mysql,
    /// sqlite's `.backup` of the database file at this path in the container.
    Sqlite(String),
    /// The command's stdout is the dump.
    Command(String),
}

/// Single-quoted for sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

const PG_ENV: &str = r#"if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"; else PGPASSWORD="${POSTGRES_PASSWORD:-}"; fi; export PGPASSWORD; u="${POSTGRES_USER:-postgres}"; d="${POSTGRES_DB:-$u}"; "#;
const MY_ENV: &str = r#"MYSQL_PWD="${MYSQL_ROOT_PASSWORD:-${MARIADB_ROOT_PASSWORD:-}}"; u=root; if [ -z "$MYSQL_PWD" ]; then MYSQL_PWD="${MYSQL_PASSWORD:-${MARIADB_PASSWORD:-}}"; u="${MYSQL_USER:-${MARIADB_USER:-root}}"; fi; export MYSQL_PWD; d="${MYSQL_DATABASE:-${MARIADB_DATABASE:-}}"; "#;

impl Kind {
    /// The `backup = …` setting: `postgres`, `mysql`, `mariadb`, `sqlite:/path`, `command: …`.
    pub fn parse(text: &str) -> Result<Kind, String> {
        let t = text.trim();
        if let Some(path) = t.strip_prefix("sqlite:") {
            let path = path.trim();
            if !path.starts_with('/') {
                return Err(format!(
                    "backup = \"{t}\": give the database file's absolute path in the container, e.g. sqlite:/data/app.db"
                ));
            }
            return Ok(Kind::Sqlite(path.to_string()));
        }
        if let Some(cmd) = t.strip_prefix("command:") {
            if cmd.trim().is_empty() {
                return Err(
                    "backup = \"command:\": give the command whose stdout is the dump".into(),
                );
            }
            return Ok(Kind::Command(cmd.trim().to_string()));
        }
        match t {
            "postgres" | "postgresql" => Ok(Kind::Postgres),
            "mysql" | "mariadb" => Ok(Kind::Mysql),
            _ => Err(format!(
                "backup = \"{t}\" is not a kind berth knows: postgres, mysql, mariadb, sqlite:/path/in/container or command: …"
            )),
        }
    }

    /// From the image's repository name: `postgres`, `bitnami/postgresql`, `mysql`, `mariadb`.
    pub fn from_image(image: &str) -> Option<Kind> {
        let repo = image.rsplit('/').next().unwrap_or(image);
        let repo = repo.split(['@', ':']).next().unwrap_or(repo);
        if repo.starts_with("postgres") || repo.starts_with("postgis") {
            Some(Kind::Postgres)
        } else if repo.starts_with("mysql") || repo.starts_with("mariadb") {
            Some(Kind::Mysql)
        } else {
            None
        }
    }

    /// The configured kind, else the one the image tells; the error says how to configure one.
    pub fn of(c: &Container, configured: Option<&str>) -> Result<Kind, String> {
        match configured {
            Some(text) => Kind::parse(text),
            None => Kind::from_image(&c.image).ok_or_else(|| {
                format!(
                    "berth cannot tell which database {} holds from its image {}: set backup = \"postgres\" | \"mysql\" | \"sqlite:/path\" | \"command: …\" under [services.\"{}\"] in the config",
                    c.name,
                    c.image,
                    match (&c.project, &c.service) {
                        (Some(p), Some(s)) => format!("{p}/{s}"),
                        _ => c.name.clone(),
                    }
                )
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
            Kind::Sqlite(_) => "sqlite",
            Kind::Command(_) => "command",
        }
    }

    /// The dump file's extension.
    pub fn ext(&self) -> &'static str {
        match self {
            Kind::Postgres => "pgdump",
            Kind::Mysql => "sql",
            Kind::Sqlite(_) => "sqlite",
            Kind::Command(_) => "dump",
        }
    }

    /// Writes the dump to stdout, inside the container.
    pub fn dump_script(&self) -> String {
        match self {
            Kind::Postgres => format!(r#"{PG_ENV}exec pg_dump -Fc -U "$u" -d "$d""#),
            Kind::Mysql => format!(
                r#"{MY_ENV}dump="$(command -v mysqldump || command -v mariadb-dump)"; exec "$dump" --single-transaction --routines --triggers --add-drop-database -u "$u" --databases "$d""#
            ),
            Kind::Sqlite(path) => format!(
                r#"t="$(mktemp)" || exit 1; sqlite3 {} ".backup '$t'" && cat "$t"; rc=$?; rm -f "$t"; exit $rc"#,
                quote(path)
            ),
            Kind::Command(cmd) => cmd.clone(),
        }
    }

    /// Reads a dump on stdin and overwrites the database with it, inside the container.
    /// `restore`: the configured `restore = "command: …"`, required for the command kind.
    pub fn restore_script(&self, restore: Option<&str>) -> Result<String, String> {
        if let Some(r) = restore {
            return match r.trim().strip_prefix("command:") {
                Some(cmd) if !cmd.trim().is_empty() => Ok(cmd.trim().to_string()),
                _ => Err(format!(
                    "restore = \"{r}\": write it as restore = \"command: …\", a command that reads the dump on stdin"
                )),
            };
        }
        Ok(match self {
            Kind::Postgres => format!(
                r#"{PG_ENV}exec pg_restore --clean --if-exists --no-owner --single-transaction -U "$u" -d "$d""#
            ),
            Kind::Mysql => format!(
                r#"{MY_ENV}client="$(command -v mysql || command -v mariadb)"; exec "$client" -u "$u""#
            ),
            Kind::Sqlite(path) => format!(
                r#"t="$(mktemp)" || exit 1; cat > "$t" && sqlite3 {} ".restore '$t'"; rc=$?; rm -f "$t"; exit $rc"#,
                quote(path)
            ),
            Kind::Command(_) => {
                return Err(
                    "a command backup needs its restore: set restore = \"command: …\" (a command that reads the dump on stdin) next to backup in the config".into(),
                );
            }
        })
    }

    /// Prints the database's size in bytes, inside the container: what the dump may need.
    pub fn size_script(&self) -> Option<String> {
        match self {
            Kind::Postgres => Some(format!(
                r#"{PG_ENV}exec psql -tA -U "$u" -d "$d" -c 'select pg_database_size(current_database())'"#
            )),
            Kind::Mysql => Some(format!(
                r#"{MY_ENV}client="$(command -v mysql || command -v mariadb)"; exec "$client" -N -u "$u" -e "select coalesce(sum(data_length + index_length), 0) from information_schema.tables where table_schema = '$d'""#
            )),
            Kind::Sqlite(path) => Some(format!("wc -c < {}", quote(path))),
            Kind::Command(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_settings_and_images() {
        assert_eq!(Kind::parse("postgres"), Ok(Kind::Postgres));
        assert_eq!(Kind::parse("mariadb"), Ok(Kind::Mysql));
        assert_eq!(
            Kind::parse("sqlite:/data/app.db"),
            Ok(Kind::Sqlite("/data/app.db".into()))
        );
        assert_eq!(
            Kind::parse("command: cat /x"),
            Ok(Kind::Command("cat /x".into()))
        );
        assert!(
            Kind::parse("sqlite:data.db")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(Kind::parse("oracle").unwrap_err().contains("not a kind"));
        assert_eq!(Kind::from_image("postgres:16-alpine"), Some(Kind::Postgres));
        assert_eq!(
            Kind::from_image("registry.example:5000/bitnami/postgresql@sha256:ab"),
            Some(Kind::Postgres)
        );
        assert_eq!(Kind::from_image("mariadb:11"), Some(Kind::Mysql));
        assert_eq!(Kind::from_image("shop/web:v1"), None);
        assert!(Kind::Command("x".into()).restore_script(None).is_err());
        assert_eq!(
            Kind::Command("x".into()).restore_script(Some("command: y")),
            Ok("y".into())
        );
    }

    #[test]
    fn scripts_read_credentials_in_the_container() {
        let dump = Kind::Postgres.dump_script();
        assert!(dump.contains(r#"PGPASSWORD="${POSTGRES_PASSWORD:-}""#));
        assert!(dump.ends_with(r#"pg_dump -Fc -U "$u" -d "$d""#));
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
