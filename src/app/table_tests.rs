//! Walks the command table: every command is reachable by a key or the palette, listed in help,
//! refused on a read-only server when it changes something, and mapped to a CLI subcommand that
//! builds the same request.

use clap::{CommandFactory, Parser};

use super::tests::app_with;
use super::*;
use crate::cli::Cli;
use crate::commands::Intent;
use crate::fixtures;
use crate::keymap::Key;

fn read_only_app() -> App {
    let mut app = app_with(fixtures::shop());
    let mut t = Target::local();
    t.read_only = true;
    app.target = Some(t);
    app
}

#[test]
fn every_command_is_reachable_listed_and_guarded() {
    let keymap = Keymap::default();
    let cli = Cli::command();
    for &intent in Intent::ALL {
        let name = intent.name();
        let by_key = intent.default_keys().iter().any(|k| {
            let key = Key::parse(k).expect("default keys parse");
            intent
                .scope()
                .chain()
                .first()
                .is_some_and(|s| keymap.lookup(*s, &key.to_event()) == Some(intent))
        });
        let by_palette = intent
            .palette()
            .is_some_and(|p| Intent::from_palette(p.name()) == Some(intent));
        assert!(by_key || by_palette, "{name}: no key and no palette name");

        let in_key_help = keymap
            .help(intent.scope())
            .iter()
            .any(|(_, rows)| rows.iter().any(|(_, h)| *h == intent.help()));
        assert!(
            in_key_help || by_palette,
            "{name}: neither the key help nor the palette help lists it"
        );

        if let Some(sub) = intent.spec().cli {
            assert!(
                cli.find_subcommand(sub).is_some(),
                "{name}: `berth {sub}` does not exist"
            );
        }

        if intent.mutating() {
            let mut app = read_only_app();
            assert!(
                app.run_command(intent, None).is_empty(),
                "{name}: a key ran on a read-only server"
            );
            let said = app
                .status
                .as_ref()
                .map(|s| s.text.clone())
                .unwrap_or_default();
            assert!(
                said.contains("read-only"),
                "{name}: key refusal said {said:?}"
            );

            let mut app = read_only_app();
            let word = intent.palette().map(|p| p.name()).unwrap_or_default();
            assert!(
                app.run_palette(&format!("{word} shop-web-1")).is_empty(),
                "{name}: the palette ran on a read-only server"
            );
            let said = app
                .status
                .as_ref()
                .map(|s| s.text.clone())
                .unwrap_or_default();
            assert!(
                said.contains("read-only"),
                "{name}: palette refusal said {said:?}"
            );

            // The CLI builds the same kind of request, and it changes the server too.
            let sub = intent.spec().cli.unwrap_or_default();
            let mut argv = vec!["berth", sub];
            match sub {
                "prune" => {}
                "scale" => argv.push("web=2"),
                // A deploy names its tag: clap refuses it without one.
                "deploy" => argv.extend(["web", "--to", "v2"]),
                _ => argv.push("web"),
            }
            let parsed = Cli::try_parse_from(&argv).expect("the CLI parses");
            // `berth backup` takes its dump at once (it overwrites nothing) with its progress on
            // stderr, through the same `backup::take` the console's plan runs.
            if sub == "backup" {
                assert!(matches!(
                    parsed.command,
                    Some(crate::cli::Command::Backup(_))
                ));
                continue;
            }
            let request = parsed
                .command
                .as_ref()
                .and_then(crate::cli::runbook::request_of)
                .unwrap_or_else(|| panic!("{name}: `berth {sub}` makes no runbook request"));
            assert!(
                request.request.mutating(),
                "{name}: the CLI request changes nothing"
            );
        }
    }
}

#[test]
fn the_palette_names_every_command_it_runs() {
    let mut app = app_with(fixtures::shop());
    for (intent, form) in Intent::palette_commands() {
        for word in form.names {
            assert_eq!(Intent::from_palette(word), Some(intent));
            assert!(
                app.palette_candidates(&word[..1])
                    .iter()
                    .any(|c| c.trim_end() == *word),
                ":{word} is not offered by completion"
            );
        }
    }
    // A required argument left out is a usage line, not an action.
    assert!(app.run_palette("logs").is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .starts_with("usage: :logs NAME")
    );
}

#[test]
fn tab_completes_a_command_with_its_space_then_its_arguments() {
    let mut app = app_with(fixtures::shop());
    app.update(Action::Key(KeyEvent::from(KeyCode::Char(':'))));
    for c in "lo".chars() {
        app.update(Action::Key(KeyEvent::from(KeyCode::Char(c))));
    }
    app.update(Action::Key(KeyEvent::from(KeyCode::Tab)));
    let Overlay::Palette(p) = &app.overlay else {
        panic!("palette open");
    };
    assert_eq!(p.input.lines().join(""), "logs ");
    assert!(
        p.candidates.contains(&"logs shop-db-1".to_string()),
        "{:?}",
        p.candidates
    );
}

#[test]
fn a_palette_only_command_bound_to_a_key_asks_for_its_argument() {
    let mut app = app_with(fixtures::shop());
    assert!(app.run_command(Intent::Theme, None).is_empty());
    let Overlay::Palette(p) = &app.overlay else {
        panic!("the palette opens");
    };
    assert_eq!(p.input.lines().join(""), "theme ");
}
