//! The server picker: the servers berth knows of, one to connect to. Owns its state and its keys;
//! the app applies what it decides.

use crossterm::event::{KeyCode, KeyEvent};

use super::move_in_list;
use super::{App, Command, Overlay};
use crate::commands::Intent;
use crate::keymap::Scope;

/// A server the picker offers.
pub type PickerEntry = crate::target::KnownServer;

#[derive(Debug, Clone)]
pub struct Picker {
    pub entries: Vec<PickerEntry>,
    pub selected: usize,
}

/// What a key did to the picker.
#[derive(Debug, Clone, PartialEq)]
pub enum PickerStep {
    Stay,
    Close,
    /// Nothing chosen and no server yet: leaving the picker leaves berth.
    Quit,
    Connect(String),
}

impl Picker {
    /// `intent` is what the key means globally; `has_server`: a server is chosen already (closing
    /// returns to it, else closing quits).
    pub fn handle(
        &mut self,
        key: &KeyEvent,
        intent: Option<Intent>,
        has_server: bool,
    ) -> PickerStep {
        match (key.code, intent) {
            (KeyCode::Enter, _) => match self.entries.get(self.selected) {
                Some(e) => PickerStep::Connect(e.name.clone()),
                None => PickerStep::Close,
            },
            (_, Some(i)) if move_in_list(&mut self.selected, self.entries.len(), i) => {
                PickerStep::Stay
            }
            (_, Some(Intent::Quit)) if !has_server => PickerStep::Quit,
            (_, Some(Intent::Back | Intent::Quit)) => {
                if has_server {
                    PickerStep::Close
                } else if key.code == KeyCode::Esc {
                    PickerStep::Quit
                } else {
                    PickerStep::Stay
                }
            }
            _ => PickerStep::Stay,
        }
    }
}

// The app's side: applying what the popup decides.
impl App {
    /// Resolving a name reads ssh config and docker contexts: the runner does it and answers
    /// with `Action::ServerResolved`.
    pub fn switch_server(&mut self, name: &str) -> Vec<Command> {
        vec![Command::ResolveServer(name.to_string())]
    }

    /// Opens the picker on the servers known so far and asks for a fresh list.
    pub fn open_picker(&mut self) -> Vec<Command> {
        let entries = self.servers.clone();
        let current = self.target.as_ref().map(|t| t.name.clone());
        let selected = entries
            .iter()
            .position(|e| Some(&e.name) == current.as_ref())
            .unwrap_or(0);
        self.overlay = Overlay::Picker(Picker { entries, selected });
        vec![Command::LoadServers]
    }

    pub(super) fn on_picker_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let intent = self.keymap.lookup(Scope::Global, &key);
        let has_server = self.target.is_some();
        let Overlay::Picker(p) = &mut self.overlay else {
            return vec![];
        };
        match p.handle(&key, intent, has_server) {
            PickerStep::Stay => vec![],
            PickerStep::Close => {
                self.overlay = Overlay::None;
                vec![]
            }
            PickerStep::Quit => {
                self.should_quit = true;
                vec![]
            }
            PickerStep::Connect(name) => {
                self.overlay = Overlay::None;
                self.switch_server(&name)
            }
        }
    }
}
