//! What can go wrong on the way to a server's Docker engine, each with the fix in its message.

#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error(
        "cannot resolve host '{host}' ({reason}): check the name, or give it a HostName in ~/.ssh/config"
    )]
    Resolve { host: String, reason: String },
    #[error(
        "cannot connect to {addr}: {reason}; is sshd running there and is the port right (Port in ~/.ssh/config, or host:port)?"
    )]
    Connect { addr: String, reason: String },
    #[error("{what} timed out after {secs} s: the server or the network does not answer")]
    Timeout { what: String, secs: u64 },
    #[error("ssh handshake with {addr} failed: {reason}")]
    Handshake { addr: String, reason: String },
    #[error(
        "REMOTE HOST IDENTIFICATION HAS CHANGED for {host}: the server now offers {key_type} key {fingerprint}; \
         offending key in {file}:{line}. Someone may be intercepting the connection. If the server was really \
         reinstalled, remove that line (`ssh-keygen -R {}`) and connect again",
        super::known_hosts::shell_word(host)
    )]
    HostKeyChanged {
        host: String,
        key_type: String,
        fingerprint: String,
        file: String,
        line: usize,
    },
    #[error(
        "host key {fingerprint} of {host} is marked @revoked in {file}:{line}: refusing to connect"
    )]
    HostKeyRevoked {
        host: String,
        fingerprint: String,
        file: String,
        line: usize,
    },
    #[error(
        "host key of {host} is not known ({key_type} {fingerprint}) and {why}; check the fingerprint with the \
         server's admin, then add it with `{login}` once or `ssh-keyscan` into ~/.ssh/known_hosts"
    )]
    HostKeyUnknown {
        host: String,
        /// The ssh command that connects to the same place, to paste (`ssh -p 2222 root@10.0.0.5`).
        login: String,
        key_type: String,
        fingerprint: String,
        why: String,
    },
    #[error(
        "permission denied for {user}@{host} (tried: {tried}): check the user name (User in ~/.ssh/config) and \
         that your key is in the server's ~/.ssh/authorized_keys"
    )]
    Auth {
        user: String,
        host: String,
        tried: String,
    },
    #[error(
        "wrong passphrase for key {key} (3 attempts): try again, or load it with `ssh-add {key}`"
    )]
    WrongPassphrase { key: String },
    #[error(
        "no Docker socket at {socket} on {host}: is Docker installed and running there (`systemctl status docker`)? \
         For rootless Docker set the socket path, e.g. ssh://user@host/run/user/1000/docker.sock"
    )]
    SocketMissing { host: String, socket: String },
    #[error(
        "permission denied on {socket} on {host}: add the user to the docker group on the server \
         (`sudo usermod -aG docker {user}`), then reconnect"
    )]
    SocketDenied {
        host: String,
        socket: String,
        user: String,
    },
    #[error("cannot reach the Docker engine on {host} over ssh: {reason}")]
    Docker { host: String, reason: String },
    #[error(
        "the Docker engine on {host} did not answer within {secs} s, though ssh does: {via} accepts the connection and nothing replies; is dockerd hung? (`systemctl status docker` on the server)"
    )]
    EngineSilent {
        host: String,
        via: String,
        secs: u64,
    },
    #[error("ssh channel to {host} failed: {reason}")]
    Channel { host: String, reason: String },
    #[error("bad ProxyJump '{0}': use [user@]host[:port][,…]")]
    BadJump(String),
    #[error(
        "ProxyCommand for {host} failed: {reason} (command: {command}); run it by hand to see, or set ProxyCommand none"
    )]
    Proxy {
        host: String,
        command: String,
        reason: String,
    },
    #[error("ssh config: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl SshError {
    /// Errors that another attempt will not fix (or must not silently get past).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SshError::HostKeyChanged { .. }
                | SshError::HostKeyRevoked { .. }
                | SshError::HostKeyUnknown { .. }
                | SshError::Auth { .. }
                | SshError::WrongPassphrase { .. }
                | SshError::BadJump(_)
                | SshError::Config(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::Secret;

    #[test]
    fn errors_are_one_line_with_a_fix() {
        let e = SshError::SocketDenied {
            host: "prod".into(),
            socket: "/var/run/docker.sock".into(),
            user: "deploy".into(),
        };
        assert!(e.to_string().contains("add the user to the docker group"));
        assert!(e.to_string().contains("usermod -aG docker deploy"));
        for e in [
            e,
            SshError::HostKeyChanged {
                host: "h".into(),
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:x".into(),
                file: "/k".into(),
                line: 3,
            },
            SshError::BadJump("x".into()),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
        assert!(crate::ssh::resolve::parse_jumps("a,,b").is_err());
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
