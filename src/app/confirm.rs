//! The confirmation popup: a plan waiting for the user's yes (on production, the name typed out).
//! Owns its state and its keys; the app applies what it decides.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Command, Input, Overlay, new_input};
use crate::action::Level;

/// A mutating action waiting for the user's yes. On production the yes is typing the name.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    /// What the user must know first (what changes, where, what happens on failure): always shown.
    pub summary: Vec<String>,
    /// The plan step by step with its engine calls, one line each: scrolls under the summary.
    pub body: Vec<String>,
    /// First row of `body` shown (arrows and PgUp/PgDn; the drawing clamps it).
    pub scroll: u16,
    /// Text the user must type to confirm (the service name on production); `None`: y / Enter.
    pub typed: Option<String>,
    pub input: Input,
    pub then: Vec<Command>,
    /// The same action with one choice flipped (Tab plans it instead): the rollback's pin.
    pub variant: Option<crate::runbook::Variant>,
}

/// What a key did to the confirmation.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfirmStep {
    /// Still open (scrolled, a letter typed, or a key that means nothing here).
    Stay,
    /// Still open, with a word for the user.
    Warn(String),
    /// Closed: nothing runs.
    Cancelled,
    /// Closed: run these.
    Confirmed(Vec<Command>),
    /// Closed without a yes: plan this variant instead.
    Switch(crate::runbook::Request),
}

impl Confirm {
    pub fn handle(&mut self, key: KeyEvent) -> ConfirmStep {
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if ctrl_c || key.code == KeyCode::Esc {
            return ConfirmStep::Cancelled;
        }
        // Tab, never a letter: on production letters are the typed name.
        if key.code == KeyCode::Tab
            && let Some(v) = &self.variant
        {
            return ConfirmStep::Switch(v.request.clone());
        }
        // Arrows and pages scroll the steps; letters stay for the typed name.
        let last = self.body.len().saturating_sub(1) as u16;
        match key.code {
            KeyCode::Up => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Down => self.scroll = (self.scroll + 1).min(last),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::PageDown => self.scroll = (self.scroll + 10).min(last),
            _ => {}
        }
        if matches!(
            key.code,
            KeyCode::Up | KeyCode::Down | KeyCode::PageUp | KeyCode::PageDown
        ) {
            return ConfirmStep::Stay;
        }
        match &self.typed {
            None => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    ConfirmStep::Confirmed(std::mem::take(&mut self.then))
                }
                KeyCode::Char('n') | KeyCode::Char('N') => ConfirmStep::Cancelled,
                _ => ConfirmStep::Stay,
            },
            Some(expected) => {
                if key.code != KeyCode::Enter {
                    self.input.input(key);
                    return ConfirmStep::Stay;
                }
                if self.input.lines().join("") == *expected {
                    return ConfirmStep::Confirmed(std::mem::take(&mut self.then));
                }
                ConfirmStep::Warn(format!(
                    "type '{expected}' exactly to confirm, or Esc to cancel"
                ))
            }
        }
    }
}

// The app's side: opening the popup and applying what it decides.
impl App {
    /// Asks before running `then`; typed confirmation when `typed` is set.
    pub fn ask(
        &mut self,
        title: impl Into<String>,
        body: Vec<String>,
        typed: Option<String>,
        then: Vec<Command>,
    ) {
        self.overlay = Overlay::Confirm(Confirm {
            title: title.into(),
            summary: Vec::new(),
            body,
            scroll: 0,
            typed,
            input: new_input(),
            then,
            variant: None,
        });
    }

    /// What a confirmation lets through; a plan about to run opens the run view.
    pub(super) fn confirmed(&mut self, then: Vec<Command>) -> Vec<Command> {
        for c in &then {
            match c {
                Command::RunPlan(plan) => self.start_run(plan.0.clone()),
                Command::RunGroup(plan) => self.start_group_run(plan),
                _ => {}
            }
        }
        then
    }

    pub(super) fn on_confirm_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Confirm(c) = &mut self.overlay else {
            return vec![];
        };
        match c.handle(key) {
            ConfirmStep::Stay => vec![],
            ConfirmStep::Warn(msg) => {
                self.notify(Level::Warn, msg);
                vec![]
            }
            ConfirmStep::Cancelled => {
                self.overlay = Overlay::None;
                self.notify(Level::Info, "cancelled: nothing was changed");
                vec![]
            }
            ConfirmStep::Confirmed(then) => {
                self.overlay = Overlay::None;
                self.confirmed(then)
            }
            ConfirmStep::Switch(request) => {
                self.overlay = Overlay::None;
                self.request_runbook(request)
            }
        }
    }
}
