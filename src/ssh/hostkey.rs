//! The host-key check of every SSH handshake: known_hosts first, then the user (or the config's
//! StrictHostKeyChecking) for an unknown key; a changed or revoked key is refused with no way through.

use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};

use russh::client::{self, Handle};
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use super::{
    HostKeyDecision, HostKeyStatus, PromptAnswer, PromptRequest, Prompter, SshError, Strict,
    known_hosts,
};

pub(super) type Trusted = Arc<StdMutex<Vec<(String, u16, PublicKey)>>>;

/// The russh handler: verifies the host key against known_hosts and asks about unknown ones.
pub(super) struct Client {
    pub(super) host: String,
    pub(super) port: u16,
    /// For the `ssh …` command an unknown-host error suggests.
    pub(super) user: String,
    /// UserKnownHostsFile: read, and new keys saved to the first.
    pub(super) known_hosts: Vec<PathBuf>,
    /// GlobalKnownHostsFile: read only.
    pub(super) global_known_hosts: Vec<PathBuf>,
    pub(super) strict: Strict,
    pub(super) hash_known_hosts: bool,
    pub(super) prompter: Option<Arc<dyn Prompter>>,
    /// Keys accepted this session (host, port, key); they hold across reconnects.
    pub(super) trusted: Trusted,
    pub(super) verdict: Arc<StdMutex<Option<Result<String, SshError>>>>,
}

impl Client {
    async fn judge(&self, key: &PublicKey) -> Result<String, SshError> {
        let fingerprint = known_hosts::fingerprint(key);
        let key_type = known_hosts::key_type(key);
        let name = known_hosts::lookup_name(&self.host, self.port);
        let files: Vec<PathBuf> = self
            .known_hosts
            .iter()
            .chain(&self.global_known_hosts)
            .cloned()
            .collect();
        match known_hosts::check(&files, &self.host, self.port, key) {
            HostKeyStatus::Known { file, line } => Ok(format!("known ({}:{line})", file.display())),
            HostKeyStatus::Changed { file, line } => Err(SshError::HostKeyChanged {
                host: name,
                key_type,
                fingerprint,
                file: file.display().to_string(),
                line,
            }),
            HostKeyStatus::Revoked { file, line } => Err(SshError::HostKeyRevoked {
                host: name,
                fingerprint,
                file: file.display().to_string(),
                line,
            }),
            HostKeyStatus::Unknown => {
                let earlier: Vec<PublicKey> = self
                    .trusted
                    .lock()
                    .map(|t| {
                        t.iter()
                            .filter(|(h, p, _)| *h == self.host && *p == self.port)
                            .map(|(_, _, k)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if earlier.iter().any(|k| k.key_data() == key.key_data()) {
                    return Ok("accepted for this session".into());
                }
                // Accepted once, then a different key on reconnect: as loud as a known_hosts mismatch.
                if earlier.iter().any(|k| k.algorithm() == key.algorithm()) {
                    return Err(SshError::HostKeyChanged {
                        host: name,
                        key_type,
                        fingerprint,
                        file: "(the key you accepted earlier in this session)".into(),
                        line: 0,
                    });
                }
                let unknown = |why: &str| SshError::HostKeyUnknown {
                    host: name.clone(),
                    login: known_hosts::login_command(&self.user, &self.host, self.port),
                    key_type: key_type.clone(),
                    fingerprint: fingerprint.clone(),
                    why: why.into(),
                };
                let decision = match (self.strict, &self.prompter) {
                    (Strict::Yes, _) => return Err(unknown("StrictHostKeyChecking is yes")),
                    (Strict::AcceptNew, _) => HostKeyDecision::AcceptAndSave,
                    (Strict::Ask, None) => return Err(unknown("berth cannot ask (no terminal)")),
                    (Strict::Ask, Some(p)) => {
                        let req = PromptRequest::UnknownHost {
                            host: self.host.clone(),
                            port: self.port,
                            key_type: key_type.clone(),
                            fingerprint: fingerprint.clone(),
                        };
                        match p.ask(req).await {
                            PromptAnswer::HostKey(d) => d,
                            _ => HostKeyDecision::Refuse,
                        }
                    }
                };
                match decision {
                    HostKeyDecision::Refuse => Err(unknown("you refused it")),
                    HostKeyDecision::AcceptOnce => {
                        if let Ok(mut t) = self.trusted.lock() {
                            t.push((self.host.clone(), self.port, key.clone()));
                        }
                        Ok("accepted for this session".into())
                    }
                    HostKeyDecision::AcceptAndSave => {
                        let file = self
                            .known_hosts
                            .first()
                            .cloned()
                            .ok_or_else(|| unknown("no known_hosts file"))?;
                        known_hosts::append(
                            &file,
                            &self.host,
                            self.port,
                            key,
                            self.hash_known_hosts,
                        )
                        .map_err(|e| {
                            SshError::Other(format!(
                                "cannot save the host key to {}: {e}",
                                file.display()
                            ))
                        })?;
                        if let Ok(mut t) = self.trusted.lock() {
                            t.push((self.host.clone(), self.port, key.clone()));
                        }
                        Ok(format!("new, saved to {}", file.display()))
                    }
                }
            }
        }
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // Host certificates are not verified: refuse rather than trust blindly.
            *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Err(SshError::Other(format!(
                    "{} offers a host certificate; berth only checks plain host keys",
                    self.host
                ))));
            return Ok(false);
        };
        let v = self.judge(key).await;
        let ok = v.is_ok();
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        Ok(ok)
    }
}

pub(super) type ClientHandle = Handle<Client>;
