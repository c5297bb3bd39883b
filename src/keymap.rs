//! Keys → commands. The default keys come from the command table (`crate::commands`) and are
//! overridable in the `[keys]` config section; the help overlay is generated from the same table,
//! so it can never disagree with what the keys do.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use crate::commands::{Intent, Scope};
use serde::Deserialize;

/// The keys of one `[keys]` entry: `quit = "q"` or `quit = ["q", "ctrl-c"]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    pub fn keys(&self) -> Vec<&str> {
        match self {
            KeyList::One(k) => vec![k.as_str()],
            KeyList::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

/// A key with modifiers, parsed from text like `q`, `G`, `ctrl-c`, `alt-enter`, `f5`, `pageup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCodeOrd,
    pub ctrl: bool,
    pub alt: bool,
}

/// `KeyCode` subset with an order, for stable help listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeOrd {
    Char(char),
    F(u8),
    Named(&'static str),
}

const NAMED: &[(&str, KeyCode)] = &[
    ("esc", KeyCode::Esc),
    ("enter", KeyCode::Enter),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("insert", KeyCode::Insert),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("space", KeyCode::Char(' ')),
];

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1 && (lower.starts_with("ctrl-") || lower.starts_with("ctrl+")) {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.len() > 1 && (lower.starts_with("alt-") || lower.starts_with("alt+")) {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let lower = rest.to_ascii_lowercase();
        let code = if let Some((name, _)) = NAMED.iter().find(|(n, _)| *n == lower) {
            KeyCodeOrd::Named(name)
        } else if lower.len() >= 2
            && lower.starts_with('f')
            && let Ok(n) = lower[1..].parse::<u8>()
            && (1..=12).contains(&n)
        {
            KeyCodeOrd::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => {
                    KeyCodeOrd::Char(if ctrl { c.to_ascii_lowercase() } else { c })
                }
                _ => {
                    return Err(format!(
                        "'{text}' is not a key: use a character (q, G, /), a name (enter, esc, tab, space, up, pageup, home, f5 …) with optional ctrl- / alt-"
                    ));
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        let code = match ev.code {
            KeyCode::Char(c) => KeyCodeOrd::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            KeyCode::F(n) => KeyCodeOrd::F(n),
            other => KeyCodeOrd::Named(NAMED.iter().find(|(_, k)| *k == other)?.0),
        };
        let code = match code {
            KeyCodeOrd::Char(' ') => KeyCodeOrd::Named("space"),
            c => c,
        };
        Some(Key { code, ctrl, alt })
    }
}

impl Key {
    /// The key event this key is pressed as (for tests and for replaying a binding).
    pub fn to_event(&self) -> KeyEvent {
        let code = match self.code {
            KeyCodeOrd::Char(c) => KeyCode::Char(c),
            KeyCodeOrd::F(n) => KeyCode::F(n),
            KeyCodeOrd::Named(name) => NAMED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
                .unwrap_or(KeyCode::Null),
        };
        let mut modifiers = KeyModifiers::NONE;
        if self.ctrl {
            modifiers |= KeyModifiers::CONTROL;
        }
        if self.alt {
            modifiers |= KeyModifiers::ALT;
        }
        KeyEvent::new(code, modifiers)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            write!(f, "Ctrl-")?;
        }
        if self.alt {
            write!(f, "Alt-")?;
        }
        match self.code {
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::F(n) => write!(f, "F{n}"),
            KeyCodeOrd::Named(n) => {
                let pretty = match n {
                    "esc" => "Esc",
                    "enter" => "Enter",
                    "tab" => "Tab",
                    "backtab" => "Shift-Tab",
                    "backspace" => "Backspace",
                    "delete" => "Del",
                    "insert" => "Ins",
                    "up" => "↑",
                    "down" => "↓",
                    "left" => "←",
                    "right" => "→",
                    "home" => "Home",
                    "end" => "End",
                    "pageup" => "PgUp",
                    "pagedown" => "PgDn",
                    "space" => "Space",
                    other => other,
                };
                write!(f, "{pretty}")
            }
        }
    }
}

/// A user's key that another action reaches in the same view through the scope chain: `logs = "q"`
/// would make `q` open logs in the list while quitting everywhere else. Overlaps the defaults
/// themselves make on purpose (the details pane's `d` closing it over the list's `d`) stay allowed.
fn check_shadowing(
    bindings: &BTreeMap<(Scope, Key), Intent>,
    overrides: &BTreeMap<String, KeyList>,
) -> Result<(), String> {
    let in_defaults = |intent: Intent, key: Key| {
        intent
            .default_keys()
            .iter()
            .any(|k| Key::parse(k).ok() == Some(key))
    };
    for (&(scope, key), &intent) in bindings {
        let Some(list) = overrides.get(intent.name()) else {
            continue;
        };
        for (&(other_scope, other_key), &other) in bindings {
            let related =
                scope.chain().contains(&other_scope) || other_scope.chain().contains(&scope);
            if other_key != key || other == intent || !related {
                continue;
            }
            if in_defaults(intent, key) && in_defaults(other, key) {
                continue;
            }
            let text = list
                .keys()
                .into_iter()
                .find(|k| Key::parse(k).ok() == Some(key))
                .unwrap_or_default()
                .to_string();
            return Err(format!(
                "[keys] {} = \"{text}\" clashes with {}, which {key} already does in the same view ({}); bind one of them to another key",
                intent.name(),
                other.name(),
                other_scope.title().to_lowercase()
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<(Scope, Key), Intent>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&BTreeMap::new()).expect("default bindings are valid")
    }
}

impl Keymap {
    /// Default bindings with the config's overrides. An override replaces all default keys of that action.
    pub fn new(overrides: &BTreeMap<String, KeyList>) -> Result<Keymap, String> {
        let mut bindings = BTreeMap::new();
        for name in overrides.keys() {
            if Intent::from_name(name).is_none() {
                let names: Vec<&str> = Intent::ALL.iter().map(|i| i.name()).collect();
                return Err(format!(
                    "[keys] unknown action '{name}'; actions are: {}",
                    names.join(", ")
                ));
            }
        }
        // Defaults first, then the overrides, so a user's key that lands on another action is reported.
        let defaults = Intent::ALL
            .iter()
            .filter(|i| !overrides.contains_key(i.name()));
        let overridden = Intent::ALL
            .iter()
            .filter(|i| overrides.contains_key(i.name()));
        for &intent in defaults.chain(overridden) {
            let keys: Vec<String> = match overrides.get(intent.name()) {
                Some(list) => list.keys().into_iter().map(str::to_string).collect(),
                None => intent
                    .default_keys()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            };
            for k in keys {
                let key = Key::parse(&k).map_err(|e| format!("[keys] {} = {e}", intent.name()))?;
                if let Some(prev) = bindings.insert((intent.scope(), key), intent)
                    && prev != intent
                {
                    return Err(format!(
                        "[keys] {} = \"{k}\" clashes with {} (same key in the same view); bind {} to another key too",
                        intent.name(),
                        prev.name(),
                        prev.name()
                    ));
                }
            }
        }
        check_shadowing(&bindings, overrides)?;
        Ok(Keymap { bindings })
    }

    /// The intent for a key in a view: the view's own binding first, then its parents'.
    pub fn lookup(&self, scope: Scope, ev: &KeyEvent) -> Option<Intent> {
        let key = Key::from_event(ev)?;
        scope
            .chain()
            .iter()
            .find_map(|s| self.bindings.get(&(*s, key)))
            .copied()
    }

    /// Keys bound to an intent, for hints.
    pub fn keys_for(&self, intent: Intent) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .bindings
            .iter()
            .filter(|(_, i)| **i == intent)
            .map(|((_, k), _)| *k)
            .collect();
        // Listed in the order the defaults declare them (q before Ctrl-c); user keys keep theirs.
        let order: Vec<Key> = intent
            .default_keys()
            .iter()
            .filter_map(|k| Key::parse(k).ok())
            .collect();
        keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
        keys
    }

    /// The key shown in hints: the first default key when it is still bound, else any bound key.
    pub fn hint(&self, intent: Intent) -> String {
        let keys = self.keys_for(intent);
        intent
            .default_keys()
            .iter()
            .filter_map(|k| Key::parse(k).ok())
            .find(|k| keys.contains(k))
            .or(keys.first().copied())
            .map(|k| k.to_string())
            .unwrap_or_else(|| "—".into())
    }

    /// Help sections for a view: its own bindings, then the global ones.
    pub fn help(&self, scope: Scope) -> Vec<(Scope, Vec<(String, &'static str)>)> {
        let mut out = Vec::new();
        for &s in scope.chain() {
            let mut rows: Vec<(String, &'static str)> = Vec::new();
            for &intent in Intent::ALL.iter().filter(|i| i.scope() == s) {
                let keys = self.keys_for(intent);
                if keys.is_empty() {
                    continue;
                }
                let text = keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                rows.push((text, intent.help()));
            }
            if !rows.is_empty() {
                out.push((s, rows));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: m,
            kind: KeyEventKind::Press,
            state: crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn parses_keys() {
        assert_eq!(Key::parse("q").unwrap().code, KeyCodeOrd::Char('q'));
        assert!(Key::parse("ctrl-c").unwrap().ctrl);
        assert_eq!(
            Key::parse("PageUp").unwrap().code,
            KeyCodeOrd::Named("pageup")
        );
        assert_eq!(Key::parse("f5").unwrap().code, KeyCodeOrd::F(5));
        assert!(Key::parse("ctrl-").is_err());
        assert!(Key::parse("banana").is_err());
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn defaults_and_lookup() {
        let km = Keymap::default();
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Intent::Down)
        );
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Intent::Quit)
        );
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Intent::Bottom)
        );
        assert_eq!(
            km.lookup(Scope::Details, &ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Intent::Reveal)
        );
        // Reveal works from the list too (and so in the details pane on top of it).
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Intent::Reveal)
        );
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char(' '), KeyModifiers::NONE)),
            Some(Intent::Collapse)
        );
    }

    #[test]
    fn overrides_replace_defaults() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), KeyList::One("Q".into()));
        let km = Keymap::new(&o).unwrap();
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char('Q'), KeyModifiers::SHIFT)),
            Some(Intent::Quit)
        );
        assert_eq!(
            km.lookup(Scope::List, &ev(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn bad_bindings_are_clear_errors() {
        let mut o = BTreeMap::new();
        o.insert("explode".to_string(), KeyList::One("e".into()));
        assert!(
            Keymap::new(&o)
                .unwrap_err()
                .contains("unknown action 'explode'")
        );
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), KeyList::One("ctrl-alt-delete-x".into()));
        assert!(Keymap::new(&o).unwrap_err().starts_with("[keys] quit = "));
        let mut o = BTreeMap::new();
        o.insert("sort".to_string(), KeyList::One("a".into()));
        assert!(Keymap::new(&o).unwrap_err().contains("clashes with"));
        // A list key that hides a global one: both actions named.
        let mut o = BTreeMap::new();
        o.insert("logs".to_string(), KeyList::One("q".into()));
        let e = Keymap::new(&o).unwrap_err();
        assert!(
            e.starts_with("[keys] logs = \"q\" clashes with quit"),
            "{e}"
        );
        // Moving quit away frees q for logs.
        o.insert("quit".to_string(), KeyList::One("ctrl-q".into()));
        assert!(Keymap::new(&o).is_ok());
        // The defaults' own overlaps stay allowed when restated.
        let mut o = BTreeMap::new();
        o.insert(
            "close-details".to_string(),
            KeyList::Many(vec!["left".into(), "h".into(), "d".into()]),
        );
        assert!(Keymap::new(&o).is_ok());
    }

    #[test]
    fn help_lists_view_then_global() {
        let km = Keymap::default();
        let h = km.help(Scope::List);
        assert_eq!(h[0].0, Scope::List);
        assert_eq!(h[1].0, Scope::Global);
        assert!(
            h[1].1
                .iter()
                .any(|(k, d)| k.contains('q') && d.contains("quit"))
        );
    }
}
