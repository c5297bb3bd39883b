//! SSH: a russh session to a server, and the Docker API carried over it (streamlocal channels to the
//! remote socket, or `docker system dial-stdio` when the server refuses unix-socket forwarding).
//!
//! One session per server, kept alive and re-established in the background; the bollard `Docker`
//! handed out keeps working across reconnects (a request made while the link is down waits for it).

mod auth;
mod error;
pub mod health;
mod hostkey;
pub mod known_hosts;
mod link;
pub mod prompt;
mod proxy;
mod resolve;
mod session;
mod transport;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::SshError;
pub use known_hosts::HostKeyStatus;
pub use link::LinkStatus;
pub use prompt::{
    ChannelPrompter, HostKeyDecision, PendingPrompt, PromptAnswer, PromptRequest, Prompter, Secret,
    TtyPrompter,
};
pub use resolve::{Resolved, Strict, inputs as config_inputs, resolve};
pub use session::{SshSession, connect, establish};

use hostkey::{Client, ClientHandle};
use session::{Inner, Mode};

/// A byte stream over an SSH channel (streamlocal, dial-stdio or direct-tcpip).
pub type SshStream = russh::ChannelStream<russh::client::Msg>;

/// How the SSH layer finds its files and may interact with the user.
#[derive(Clone, Default)]
pub struct SshOptions {
    /// Never prompt (CLI without a tty): fail with the fingerprint / key path in the message.
    pub batch: bool,
    /// Who answers passphrase, password and unknown-host questions; `None` means the tty (unless batch).
    pub prompter: Option<Arc<dyn Prompter>>,
    /// Home directory for `~` in the ssh config and the default key/known_hosts files; `None`: the real one.
    pub home: Option<PathBuf>,
    /// The ssh config file; `None`: `<home>/.ssh/config`.
    pub ssh_config: Option<PathBuf>,
    /// The system-wide ssh config; `None`: `BERTH_SSH_SYSTEM_CONFIG`, else `/etc/ssh/ssh_config`.
    pub system_config: Option<PathBuf>,
    /// The agent socket; `None`: `IdentityAgent` from the ssh config, else `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Use no agent at all (tests, or a user who wants only key files).
    pub no_agent: bool,
}

impl std::fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshOptions")
            .field("batch", &self.batch)
            .field("prompter", &self.prompter.as_ref().map(|_| "…"))
            .field("home", &self.home)
            .field("ssh_config", &self.ssh_config)
            .field("system_config", &self.system_config)
            .field("agent_socket", &self.agent_socket)
            .field("no_agent", &self.no_agent)
            .finish()
    }
}

impl SshOptions {
    pub fn home_dir(&self) -> PathBuf {
        self.home
            .clone()
            .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    pub fn ssh_config_path(&self) -> PathBuf {
        self.ssh_config
            .clone()
            .unwrap_or_else(|| self.home_dir().join(".ssh").join("config"))
    }

    /// The system-wide ssh config ssh reads after the user's.
    pub fn system_config_path(&self) -> PathBuf {
        self.system_config
            .clone()
            .or_else(|| std::env::var_os("BERTH_SSH_SYSTEM_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/etc/ssh/ssh_config"))
    }

    /// Who answers questions (`None` in batch mode): the SSH layer's, and the registry's login.
    pub fn prompter(&self) -> Option<Arc<dyn Prompter>> {
        if self.batch {
            return None;
        }
        Some(
            self.prompter
                .clone()
                .unwrap_or_else(|| Arc::new(TtyPrompter)),
        )
    }
}

/// What `exec` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the server sent no exit status (killed by a signal).
    pub exit_code: Option<u32>,
}

pub(super) fn open_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::ChannelOpenFailure(f) => format!("the server refused the channel ({f:?})"),
        other => other.to_string(),
    }
}
