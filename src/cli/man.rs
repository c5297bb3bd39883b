//! `berth man`: the manual page, made from the tables the console and `--help` use: the clap
//! definitions for the synopsis and every command's options, the command table and the default
//! keymap for the keys and the palette, the config's own `[keys]` names.

use std::io::Write;

use crate::commands::{Intent, Scope};
use crate::keymap::Keymap;

/// Every scope, in the order the page lists their keys.
const SCOPES: [Scope; 7] = [
    Scope::Global,
    Scope::List,
    Scope::Details,
    Scope::Logs,
    Scope::Panel,
    Scope::Fleet,
    Scope::Swarm,
];

/// Text for roff: a backslash doubled, a line that would start with `.` or `'` escaped.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\\\").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

/// A tagged paragraph: `tag` in bold, `text` under it.
fn item(out: &mut dyn Write, tag: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(tag), roff(text))
}

/// The manual page (roff) of berth, written to `out`. roff input is ASCII: every other
/// character (the arrows, `…` and `·` of the keys and help) goes as groff's `\[uXXXX]`, so
/// `man` renders it on any locale and groff reads the page without warnings.
pub fn write_man(out: &mut dyn Write) -> std::io::Result<()> {
    let mut page = Vec::new();
    write_page(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let mut ascii = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            ascii.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out.write_all(ascii.as_bytes())
}

fn write_page(out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    cmd.build();
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    writeln!(out, ".SH DESCRIPTION")?;
    writeln!(
        out,
        "{}",
        roff(
            "berth is an operations console for apps that run under Docker: containers grouped by \
             compose project and service, live health, events, logs and stats, and the on-call \
             runbook (restart, rollback, deploy, migrate, prune) behind keys, on the local engine \
             or on a server reached over SSH. Run without a command it opens the console; every \
             action of the console is also a command below. Every change asks first, shows its \
             plan, and is written to the audit log."
        )
    )?;
    page.render_options_section(out)?;
    commands(out, &cmd)?;
    keys(out)?;
    configuration(out)?;
    files(out)?;
    environment(out)?;
    exit_status(out)?;
    Ok(())
}

/// One subsection per command: its synopsis, what it does, its options.
fn commands(out: &mut dyn Write, cmd: &clap::Command) -> std::io::Result<()> {
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = clap_mangen::Man::new(sub.clone());
        let mut synopsis = Vec::new();
        page.render_synopsis_section(&mut synopsis)?;
        let synopsis = String::from_utf8_lossy(&synopsis).replacen(
            ".SH SYNOPSIS",
            &format!(".SS \"berth {}\"", sub.get_name()),
            1,
        );
        out.write_all(synopsis.as_bytes())?;
        let about = sub.get_long_about().or(sub.get_about());
        if let Some(about) = about {
            writeln!(out, ".PP\n{}", roff(&about.to_string()))?;
        }
        let mut options = Vec::new();
        page.render_options_section(&mut options)?;
        let options = String::from_utf8_lossy(&options).replacen(".SH OPTIONS", ".PP\nOptions:", 1);
        out.write_all(options.as_bytes())?;
    }
    Ok(())
}

/// The console's keys per view from the default keymap, then the palette's commands: the same
/// rows the help overlay (`?`) shows.
fn keys(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH KEYS")?;
    writeln!(
        out,
        "{}",
        roff(
            "The console's default keys, by where they apply. Every key that changes something \
             asks first; on a server labelled production it waits for the name typed out. Any \
             key can be rebound in the config's [keys] table under the name in brackets."
        )
    )?;
    let keymap = Keymap::default();
    for scope in SCOPES {
        let intents: Vec<Intent> = Intent::ALL
            .iter()
            .copied()
            .filter(|i| i.scope() == scope && !keymap.keys_for(*i).is_empty())
            .collect();
        if intents.is_empty() {
            continue;
        }
        writeln!(out, ".SS \"{}\"", roff(scope.title()))?;
        for intent in intents {
            let keys = keymap
                .keys_for(intent)
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            item(
                out,
                &keys,
                &format!("{} [{}]", intent.help(), intent.name()),
            )?;
        }
    }
    writeln!(out, ".SS \"Commands (:)\"")?;
    writeln!(
        out,
        "{}",
        roff(": opens the palette; Tab completes a command, then its argument.")
    )?;
    for (_, form) in Intent::palette_commands() {
        let line = form.help_line();
        let (usage, what) = line.split_once(" — ").unwrap_or((line.as_str(), ""));
        item(out, &format!(":{}", usage.trim()), what.trim())?;
    }
    Ok(())
}

fn configuration(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH CONFIGURATION")?;
    writeln!(
        out,
        "{}",
        roff(
            "A TOML file (see FILES), or --config PATH, or BERTH_CONFIG; no file is fine. A bad \
             file is one error naming the line to fix. Its tables:"
        )
    )?;
    for (table, what) in [
        (
            "default_server, theme, read_only",
            "the server opened when none is named; the theme (dark, light, high-contrast or a TOML file's path); refuse every change",
        ),
        (
            "[servers.NAME]",
            "target (an ssh alias, user@host[:port], ssh://, tcp://, unix://, a docker context), environment (production shows a red banner and asks for typed names), socket, read_only, allow_password",
        ),
        (
            "[groups.NAME]",
            "servers = [...] and/or pattern = \"app-*\": a group for the fleet and for -s GROUP",
        ),
        (
            "[keys]",
            "NAME = \"KEY\" or [\"KEY\", ...], NAME as in brackets under KEYS",
        ),
        (
            "[logs]",
            "tail, max_lines, max_bytes, wrap, timestamps, utc",
        ),
        ("[stats]", "interval, method (auto, cgroup, api)"),
        ("[fleet]", "parallel, connect_timeout, idle_close"),
        (
            "[runbook], [services.\"project/service\"]",
            "defaults and per-service settings: migrate command, migrate_plan, migrate_status, migrate_db (backed up before a migration on production), health_url, health_retries, images to keep",
        ),
        (
            "[[notify]]",
            "webhooks (discord, slack, generic) told when runs start and end",
        ),
    ] {
        item(out, table, what)?;
    }
    writeln!(
        out,
        "{}",
        roff("A complete, commented example is assets/config.example.toml in the source.")
    )
}

fn files(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH FILES")?;
    item(
        out,
        "~/.config/berth/config.toml",
        "the config (the platform's config directory)",
    )?;
    item(
        out,
        "~/.local/share/berth/audit.jsonl",
        "the audit log: one JSON line per change made through berth (the data directory, or BERTH_DATA_DIR)",
    )?;
    item(
        out,
        "~/.local/share/berth/",
        "also the journals of rollbacks in flight, and saved logs when the current directory is not writable",
    )?;
    item(
        out,
        "~/.ssh/config, ~/.ssh/known_hosts",
        "read as ssh reads them; an accepted host key is saved to known_hosts when asked",
    )?;
    item(
        out,
        "~/.docker/config.json",
        "registry logins (also on the server, over SSH) and the current docker context",
    )
}

fn environment(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH ENVIRONMENT")?;
    for (name, what) in [
        (
            "BERTH_CONFIG",
            "the config file, when --config is not given",
        ),
        (
            "BERTH_DATA_DIR",
            "where the audit log and run journals are kept",
        ),
        (
            "DOCKER_HOST",
            "the engine to open when no server is named (unix://, tcp://, ssh://)",
        ),
        ("DOCKER_CONTEXT", "the docker context to use"),
        ("DOCKER_CONFIG", "the directory of the docker config.json"),
        ("SSH_AUTH_SOCK", "the ssh-agent berth asks for keys"),
        (
            "RUST_BACKTRACE",
            "1: a panic's report names every function on the way",
        ),
    ] {
        item(out, name, what)?;
    }
    Ok(())
}

fn exit_status(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, what) in [
        ("0", "done: the change verified, the listing printed"),
        (
            "1",
            "failed: bad input, a refused or failed change (its message says what serves now), an unreachable server or an unhealthy container in berth fleet, a failed doctor check",
        ),
        (
            "N",
            "berth migrate exits with the migration's own exit code",
        ),
        ("2", "the command line could not be parsed"),
    ] {
        item(out, code, what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The page has every section a manual page is expected to have, and its keys and commands
    /// come from the tables: a key added to the table is on the page.
    #[test]
    fn the_page_has_every_section_and_the_tables_keys() {
        let mut out = Vec::new();
        super::write_man(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH COMMANDS",
            ".SH KEYS",
            ".SH CONFIGURATION",
            ".SH FILES",
            ".SH ENVIRONMENT",
            ".SH \"EXIT STATUS\"",
        ] {
            assert!(page.contains(section), "{section} missing");
        }
        for intent in crate::commands::Intent::ALL {
            if !crate::keymap::Keymap::default()
                .keys_for(*intent)
                .is_empty()
            {
                assert!(
                    page.contains(&format!("[{}]", intent.name().replace('-', "\\-"))),
                    "{} missing from KEYS",
                    intent.name()
                );
            }
        }
        assert!(page.contains(".SS \"berth rollback\""), "commands missing");
        assert!(page.contains(":save\\-all"), "palette commands missing");
    }
}
