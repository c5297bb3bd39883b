//! SSH: a russh session to a server, and the Docker API carried over it (streamlocal channels to the
//! remote socket, or `docker system dial-stdio` when the server refuses unix-socket forwarding).
//!
//! Placeholder interface until the SSH transport lands; the rest of berth codes against it.

use bollard::Docker;

use crate::target::{SshSpec, Target};

/// How the SSH layer may interact with the user.
#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    /// Never prompt (CLI without a tty): fail with the fingerprint / key path in the message.
    pub batch: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("ssh to {0} is not supported in this build yet")]
    Unsupported(String),
}

pub struct SshSession {
    docker: Docker,
}

impl SshSession {
    pub fn docker(&self) -> Docker {
        self.docker.clone()
    }
    pub fn transport_name(&self) -> &str {
        "ssh"
    }
}

pub async fn connect(
    spec: &SshSpec,
    _target: &Target,
    _options: &SshOptions,
) -> Result<SshSession, SshError> {
    Err(SshError::Unsupported(spec.to_string()))
}
