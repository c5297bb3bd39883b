//! Questions the SSH layer asks the user (key passphrase, password, unknown host key), and the
//! registry's login when no docker config has one, behind a trait so the CLI answers on the tty and
//! the TUI in a popup. Secrets never reach a log or the disk.

use std::fmt;
use std::path::PathBuf;

use futures::future::BoxFuture;

/// A question for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptRequest {
    /// An encrypted private key needs its passphrase.
    Passphrase { key: PathBuf },
    /// Password authentication (only when the server's config allows it). `user_host` is `user@host`.
    Password { user_host: String },
    /// The server's host key is in no known_hosts file.
    UnknownHost {
        host: String,
        port: u16,
        key_type: String,
        fingerprint: String,
    },
    /// A registry answered 401 and no docker config (the server's, this machine's) has a login
    /// for it: a username, then a hidden password.
    RegistryLogin { registry: String },
}

/// What the user decided about an unknown host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyDecision {
    Refuse,
    AcceptOnce,
    AcceptAndSave,
}

/// A secret typed by the user. Its `Debug` never shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The answer to a [`PromptRequest`]. `Cancel` answers any request (user pressed Esc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptAnswer {
    Secret(Secret),
    HostKey(HostKeyDecision),
    /// A registry login: the username as typed, the password never shown.
    Login {
        username: String,
        password: Secret,
    },
    Cancel,
}

/// Asks the user. Object-safe: `Arc<dyn Prompter>` goes in [`super::SshOptions::prompter`].
/// An implementation may take as long as the user needs; the SSH layer waits.
pub trait Prompter: Send + Sync {
    fn ask(&self, request: PromptRequest) -> BoxFuture<'static, PromptAnswer>;
}

/// Asks on the controlling terminal (`/dev/tty`), with echo off for secrets. For CLI commands.
#[derive(Debug, Default, Clone, Copy)]
pub struct TtyPrompter;

impl Prompter for TtyPrompter {
    fn ask(&self, request: PromptRequest) -> BoxFuture<'static, PromptAnswer> {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask_tty(&request))
                .await
                .unwrap_or(PromptAnswer::Cancel)
        })
    }
}

fn ask_tty(request: &PromptRequest) -> PromptAnswer {
    match request {
        PromptRequest::Passphrase { key } => {
            match rpassword::prompt_password(format!(
                "Enter passphrase for key '{}': ",
                key.display()
            )) {
                Ok(p) if !p.is_empty() => PromptAnswer::Secret(Secret(p)),
                _ => PromptAnswer::Cancel,
            }
        }
        PromptRequest::Password { user_host } => {
            match rpassword::prompt_password(format!("{user_host}'s password: ")) {
                Ok(p) => PromptAnswer::Secret(Secret(p)),
                Err(_) => PromptAnswer::Cancel,
            }
        }
        PromptRequest::RegistryLogin { registry } => {
            // The asker passes the registry through the sanitiser already.
            let Some(username) = read_tty_line(&format!("username for {registry}: ")) else {
                return PromptAnswer::Cancel;
            };
            let username = username.trim().to_string();
            if username.is_empty() {
                return PromptAnswer::Cancel;
            }
            match rpassword::prompt_password(format!("password for {username}@{registry}: ")) {
                Ok(p) => PromptAnswer::Login {
                    username,
                    password: Secret(p),
                },
                Err(_) => PromptAnswer::Cancel,
            }
        }
        PromptRequest::UnknownHost {
            host,
            port,
            key_type,
            fingerprint,
        } => {
            let Some(line) = read_tty_line(&format!(
                "The authenticity of host '{}' can't be established.\n{key_type} key fingerprint is {fingerprint}.\n\
                 Connect? [y]es and remember / [o]nce / [N]o: ",
                super::known_hosts::lookup_name(host, *port)
            )) else {
                return PromptAnswer::Cancel;
            };
            let d = match line.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => HostKeyDecision::AcceptAndSave,
                "o" | "once" => HostKeyDecision::AcceptOnce,
                _ => HostKeyDecision::Refuse,
            };
            PromptAnswer::HostKey(d)
        }
    }
}

/// Asks one question on the controlling terminal (not stdin, which may be a pipe) and reads one
/// line of answer; `None` when there is no terminal or it cannot be read.
fn read_tty_line(question: &str) -> Option<String> {
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut out = &tty;
    let _ = write!(out, "{question}");
    let _ = out.flush();
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line).ok()?;
    Some(line)
}

/// A question waiting for the user, as the TUI receives it from a [`ChannelPrompter`].
#[derive(Debug)]
pub struct PendingPrompt {
    pub request: PromptRequest,
    reply: tokio::sync::oneshot::Sender<PromptAnswer>,
}

impl PendingPrompt {
    /// Answers the question; the SSH task waiting on it resumes.
    pub fn answer(self, answer: PromptAnswer) {
        let _ = self.reply.send(answer);
    }
}

/// Hands questions to whoever holds the receiver (the TUI's event loop shows a popup and calls
/// [`PendingPrompt::answer`]). Dropping a `PendingPrompt` unanswered, or the receiver, cancels.
#[derive(Debug, Clone)]
pub struct ChannelPrompter {
    tx: tokio::sync::mpsc::Sender<PendingPrompt>,
}

impl ChannelPrompter {
    /// A prompter and the receiving end of its bounded queue of questions.
    pub fn new(capacity: usize) -> (ChannelPrompter, tokio::sync::mpsc::Receiver<PendingPrompt>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (ChannelPrompter { tx }, rx)
    }
}

impl Prompter for ChannelPrompter {
    fn ask(&self, request: PromptRequest) -> BoxFuture<'static, PromptAnswer> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            if tx.send(PendingPrompt { request, reply }).await.is_err() {
                return PromptAnswer::Cancel;
            }
            answer.await.unwrap_or(PromptAnswer::Cancel)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_prompter_round_trip() {
        let (p, mut rx) = ChannelPrompter::new(1);
        let asking = tokio::spawn({
            let p = p.clone();
            async move { p.ask(PromptRequest::Passphrase { key: "/k".into() }).await }
        });
        let pending = rx.recv().await.unwrap();
        assert_eq!(
            pending.request,
            PromptRequest::Passphrase { key: "/k".into() }
        );
        pending.answer(PromptAnswer::Secret(Secret::new("s")));
        assert_eq!(
            asking.await.unwrap(),
            PromptAnswer::Secret(Secret::new("s"))
        );

        // Dropped unanswered: cancel, never hang.
        let asking = tokio::spawn({
            let p = p.clone();
            async move {
                p.ask(PromptRequest::Password {
                    user_host: "u@h".into(),
                })
                .await
            }
        });
        drop(rx.recv().await.unwrap());
        assert_eq!(asking.await.unwrap(), PromptAnswer::Cancel);
        drop(rx);
        assert_eq!(
            p.ask(PromptRequest::Password {
                user_host: "u@h".into()
            })
            .await,
            PromptAnswer::Cancel
        );
    }
}
