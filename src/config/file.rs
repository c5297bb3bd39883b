//! Reading the config file: where it is, its TOML into a `Config`, and the checks that refuse a
//! bad file with one line naming the line to fix.

use std::path::{Path, PathBuf};

use super::{Config, notify};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The platform config path: `~/.config/berth/config.toml` on Linux.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "berth").map(|d| d.config_dir().join("config.toml"))
}

/// Loads the config at `explicit`, or the default path when it exists, or the defaults.
pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) if p.exists() => p,
            _ => return Ok((Config::default(), None)),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let config = parse(&text, &path)?;
    Ok((config, Some(path)))
}

/// Parses and checks the whole file, so every command (`ps` as much as the console) refuses a bad
/// key binding or theme with the line to fix.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let config = parse_toml(text, path)?;
    let invalid = |message: &str| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    if config.logs.max_lines == 0 {
        return Err(invalid(
            "[logs] max_lines = 0 would keep no lines: give a positive number (default 100000)",
        ));
    }
    if config.logs.max_bytes == 0 {
        return Err(invalid(
            "[logs] max_bytes = 0 would keep no lines: give a positive number of bytes (default 67108864, 64 MiB)",
        ));
    }
    config
        .stats
        .interval()
        .map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
    let at_line = |table: Option<&str>, key: &str, message: String| {
        let line = line_of_key(text, table, key).unwrap_or(1);
        let column = 1;
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    if let Err(message) = config.fleet.connect_timeout() {
        return Err(at_line(Some("fleet"), "connect_timeout", message));
    }
    if let Err(message) = config.fleet.idle_close() {
        return Err(at_line(Some("fleet"), "idle_close", message));
    }
    for (name, group) in &config.groups {
        let table = format!("groups.{name}");
        if let Some(unknown) = group
            .servers
            .iter()
            .find(|s| !config.servers.contains_key(*s))
        {
            // The line that names it, when the list spans several.
            let line = line_of_value(text, &table, unknown)
                .or_else(|| line_of_key(text, Some(&table), "servers"))
                .unwrap_or(1);
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column: 1,
                message: format!(
                    "[groups.{name}] names server '{unknown}', which is not configured: add [servers.{unknown}] or remove it from the group"
                ),
            });
        }
        if config.servers.contains_key(name) {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line: line_of_table(text, &table).unwrap_or(1),
                column: 1,
                message: format!(
                    "[groups.{name}] has the name of a server: -s {name} would be ambiguous; rename the group"
                ),
            });
        }
        if group.members(&config.servers).is_empty() {
            let key = if group.pattern.is_some() {
                "pattern"
            } else {
                "servers"
            };
            let line = line_of_key(text, Some(&table), key)
                .or_else(|| line_of_table(text, &table))
                .unwrap_or(1);
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column: 1,
                message: format!(
                    "[groups.{name}] has no servers: list configured ones (servers = [\"app-1\"]) or give a pattern that matches some (pattern = \"app-*\")"
                ),
            });
        }
    }
    if let Err(message) = crate::keymap::Keymap::new(&config.keys) {
        let action = keys_error_action(&message).unwrap_or_default();
        return Err(at_line(Some("keys"), &action, message));
    }
    if let Some(theme) = &config.theme
        && let Err(e) = crate::theme::Theme::load(theme)
    {
        return Err(at_line(None, "theme", e.to_string()));
    }
    Ok(config)
}

/// The action a keymap error is about: `[keys] NAME = …` or `[keys] unknown action 'NAME'`.
fn keys_error_action(message: &str) -> Option<String> {
    let rest = message.strip_prefix("[keys] ")?;
    let name = match rest.strip_prefix("unknown action '") {
        Some(r) => r.split('\'').next()?,
        None => rest.split([' ', '=']).next()?,
    };
    Some(name.to_string())
}

/// The 1-based line of the `[table]` header.
fn line_of_table(text: &str, table: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim()
                .strip_prefix('[')
                .and_then(|h| h.split(']').next())
                .is_some_and(|h| h.trim() == table)
        })
        .map(|i| i + 1)
}

/// The 1-based line in `[table]` where the string `"value"` appears.
fn line_of_value(text: &str, table: &str, value: &str) -> Option<usize> {
    let start = line_of_table(text, table)?;
    let quoted = format!("\"{value}\"");
    text.lines()
        .enumerate()
        .skip(start)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| l.contains(&quoted))
        .map(|(i, _)| i + 1)
}

/// The 1-based line where `key` is set in `[table]` (`None`: the top level, before any table).
fn line_of_key(text: &str, table: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("");
            current = Some(name.trim().to_string());
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        if current.as_deref() == table && k == key {
            return Some(i + 1);
        }
    }
    None
}

fn parse_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
    toml::from_str::<Config>(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let message = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .trim()
            .to_string();
        // Several `[[notify]]` entries look alike: say which one.
        let message = match notify::entry_at_line(text, line) {
            Some(n) => format!(
                "[[notify]] entry {n}: {}",
                message.strip_prefix("[[notify]] ").unwrap_or(&message)
            ),
            None => message,
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_and_themes_name_their_line() {
        let p = Path::new("c.toml");
        let e = parse(
            "theme = \"dark\"\n[keys]\nquit = \"Q\"\nlogs = \"ctrl-\"\n",
            p,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config c.toml:4:1: [keys] logs = "),
            "{e}"
        );
        let e = parse("[keys]\nexplode = \"e\"\n", p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config c.toml:2:1: [keys] unknown action 'explode'"),
            "{e}"
        );
        let e = parse("read_only = false\ntheme = \"neon\"\n", p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config c.toml:2:1: unknown theme 'neon'"),
            "{e}"
        );
        // A view key that hides a global one names both actions.
        let e = parse("[keys]\n\"logs\" = \"q\"\n", p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config c.toml:2:1: [keys] logs = \"q\""),
            "{e}"
        );
        assert!(e.to_string().contains("quit"), "{e}");
    }

    #[test]
    fn logs_bounds_of_zero_are_errors() {
        let p = Path::new("c.toml");
        assert_eq!(
            parse("", p).unwrap().logs.max_bytes,
            crate::logs::buffer::DEFAULT_MAX_BYTES
        );
        assert_eq!(
            parse("[logs]\nmax_bytes = 1048576\n", p)
                .unwrap()
                .logs
                .max_bytes,
            1 << 20
        );
        for text in ["[logs]\nmax_lines = 0\n", "[logs]\nmax_bytes = 0\n"] {
            let e = parse(text, p).unwrap_err().to_string();
            assert!(e.starts_with("config c.toml: [logs] max_"), "{e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse(
            "theme = \"dark\"\n[servers.x]\ntarget = 5\n",
            Path::new("/tmp/c.toml"),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("config /tmp/c.toml:3:10: "), "{s}");
        assert!(!s.contains('\n'));
        let e = parse("[logs]\ntial = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml:2:1") && e.contains("unknown field `tial`"),
            "{e}"
        );
        let e = parse("theme = \n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml:1:"), "{e}");
    }
}
