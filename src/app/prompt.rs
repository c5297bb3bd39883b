//! The SSH layer's questions (passphrase, password, unknown host key) and a registry's login in a
//! popup. Owns its state and its keys; an answer leaves as a command and closes it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Overlay};
use super::{Command, Input};
use crate::action::Reply;
use crate::ssh::{HostKeyDecision, PromptAnswer, PromptRequest, Secret};

/// A question from the SSH layer, answered in a popup.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub request: PromptRequest,
    /// Masked input for passphrases and passwords (a registry's username is shown as typed).
    pub input: Input,
    pub reply: Reply,
    /// A registry login's username, once typed: the input then asks for the password.
    pub username: Option<String>,
}

impl Prompt {
    pub fn new(request: PromptRequest, reply: Reply) -> Prompt {
        let mut input = super::new_input();
        if !matches!(request, PromptRequest::RegistryLogin { .. }) {
            input.set_mask_char('•');
        }
        Prompt {
            request,
            input,
            reply,
            username: None,
        }
    }

    /// The answer a key gives, as the command that hands it back; `None` while still asking.
    pub fn handle(&mut self, key: KeyEvent) -> Option<Command> {
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        let answer = if key.code == KeyCode::Esc || ctrl_c {
            PromptAnswer::Cancel
        } else {
            match &self.request {
                PromptRequest::UnknownHost { .. } => match key.code {
                    KeyCode::Char('o') | KeyCode::Char('O') => {
                        PromptAnswer::HostKey(HostKeyDecision::AcceptOnce)
                    }
                    KeyCode::Char('s') | KeyCode::Char('S') => {
                        PromptAnswer::HostKey(HostKeyDecision::AcceptAndSave)
                    }
                    KeyCode::Char('r') | KeyCode::Char('R') | KeyCode::Char('n') => {
                        PromptAnswer::HostKey(HostKeyDecision::Refuse)
                    }
                    _ => return None,
                },
                PromptRequest::Passphrase { .. } | PromptRequest::Password { .. } => {
                    if key.code != KeyCode::Enter {
                        self.input.input(key);
                        return None;
                    }
                    PromptAnswer::Secret(Secret::new(self.input.lines().join("")))
                }
                PromptRequest::RegistryLogin { .. } => {
                    if key.code != KeyCode::Enter {
                        self.input.input(key);
                        return None;
                    }
                    let typed = self.input.lines().join("");
                    match self.username.take() {
                        None => {
                            let user = typed.trim();
                            if !user.is_empty() {
                                self.username = Some(user.to_string());
                                self.input = super::new_input();
                                self.input.set_mask_char('•');
                            }
                            return None;
                        }
                        Some(username) => PromptAnswer::Login {
                            username,
                            password: Secret::new(typed),
                        },
                    }
                }
            }
        };
        Some(Command::Answer(self.reply.clone(), answer))
    }
}

// The app's side: applying what the popup decides.
impl App {
    pub(super) fn on_prompt_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Prompt(p) = &mut self.overlay else {
            return vec![];
        };
        match p.handle(key) {
            Some(answer) => {
                // The typed secret leaves the app state with the answer.
                self.overlay = Overlay::None;
                vec![answer]
            }
            None => vec![],
        }
    }
}
