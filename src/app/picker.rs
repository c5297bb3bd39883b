//! The server picker: the servers berth knows of, one to connect to. Owns its state and its keys;
//! the app applies what it decides.

use crossterm::event::{KeyCode, KeyEvent};

use super::move_in_list;
use crate::commands::Intent;

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
