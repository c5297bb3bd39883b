//! Authentication in OpenSSH's order: the agent, then IdentityFile keys (or the default key files),
//! then a password when the server's config allows it. Encrypted keys ask for their passphrase.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use super::prompt::{PromptAnswer, PromptRequest, Prompter};
use super::{Client, Resolved, SshError};

const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];
const PASSPHRASE_ATTEMPTS: usize = 3;

/// What worked last time, kept in memory only, so a reconnect does not ask again.
#[derive(Default)]
pub(super) struct Memory(StdMutex<std::collections::HashMap<String, Remembered>>);

#[derive(Clone)]
pub(super) enum Remembered {
    Key(Arc<PrivateKey>, String),
    Password(super::Secret),
}

pub(super) async fn authenticate(
    handle: &mut Handle<Client>,
    r: &Resolved,
    home: &Path,
    prompter: Option<Arc<dyn Prompter>>,
    allow_password: bool,
    memory: &Memory,
) -> Result<String, SshError> {
    let user = r.user.clone();
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .unwrap_or(Some(HashAlg::Sha256));
    let mut tried: Vec<String> = Vec::new();
    // Per host: a jump host and the target may well use different keys.
    let who = format!("{user}@{}:{}", r.host, r.port);
    let remembered = memory.0.lock().ok().and_then(|m| m.get(&who).cloned());
    let remember = |m: Remembered| {
        if let Ok(mut slots) = memory.0.lock() {
            slots.insert(who.clone(), m);
        }
    };

    if let Some(Remembered::Key(key, label)) = &remembered
        && try_key(handle, &user, key.clone(), rsa_hash).await?
    {
        return Ok(format!("publickey ({label})"));
    }
    if let Some(Remembered::Password(p)) = &remembered
        && password(handle, &user, p.expose()).await?
    {
        return Ok("password".into());
    }

    // 1. the agent
    let explicit_pubs: Vec<PublicKey> = r
        .identity_files
        .iter()
        .filter_map(|f| russh::keys::load_public_key(pub_path(f)).ok())
        .collect();
    if let Some(sock) = &r.agent {
        match AgentClient::connect_uds(sock).await {
            Ok(mut agent) => {
                let ids = agent.request_identities().await.unwrap_or_default();
                let mut offered = 0;
                for id in ids {
                    let AgentIdentity::PublicKey { key, comment } = id else {
                        continue;
                    };
                    if r.identities_only
                        && !explicit_pubs.iter().any(|p| p.key_data() == key.key_data())
                    {
                        continue;
                    }
                    offered += 1;
                    let hash = if key.algorithm().is_rsa() {
                        rsa_hash
                    } else {
                        None
                    };
                    if let Ok(AuthResult::Success) = handle
                        .authenticate_publickey_with(&user, key, hash, &mut agent)
                        .await
                    {
                        return Ok(format!("publickey (agent: {comment})"));
                    }
                }
                tried.push(format!("agent ({offered} keys)"));
            }
            Err(e) => tried.push(format!("agent at {} unreachable ({e})", sock.display())),
        }
    }

    // 2. key files: IdentityFile lines, or the default files when there are none (as OpenSSH)
    let files: Vec<PathBuf> = if r.identity_files.is_empty() {
        let dir = home.join(".ssh");
        DEFAULT_KEYS.iter().map(|k| dir.join(k)).collect()
    } else {
        r.identity_files.clone()
    };
    for file in files.iter().filter(|f| f.is_file()) {
        let label = file.display().to_string();
        let key = match russh::keys::load_secret_key(file, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let Some(prompter) = prompter.clone() else {
                    tried.push(format!(
                        "{label} (encrypted; no terminal to ask its passphrase)"
                    ));
                    continue;
                };
                let mut decoded = None;
                for _ in 0..PASSPHRASE_ATTEMPTS {
                    match prompter
                        .ask(PromptRequest::Passphrase { key: file.clone() })
                        .await
                    {
                        PromptAnswer::Secret(s) => {
                            if let Ok(k) = russh::keys::load_secret_key(file, Some(s.expose())) {
                                decoded = Some(k);
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                match decoded {
                    Some(k) => k,
                    None => return Err(SshError::WrongPassphrase { key: label }),
                }
            }
            Err(e) => {
                tried.push(format!("{label} (unreadable: {e})"));
                continue;
            }
        };
        let key = Arc::new(key);
        if try_key(handle, &user, key.clone(), rsa_hash).await? {
            remember(Remembered::Key(key, label.clone()));
            return Ok(format!("publickey ({label})"));
        }
        tried.push(label);
    }

    // 3. a password, only where the config allows it
    if allow_password && let Some(prompter) = prompter {
        let user_host = format!("{user}@{}", r.host);
        for _ in 0..PASSPHRASE_ATTEMPTS {
            let PromptAnswer::Secret(s) = prompter
                .ask(PromptRequest::Password {
                    user_host: user_host.clone(),
                })
                .await
            else {
                break;
            };
            match password(handle, &user, s.expose()).await {
                Ok(true) => {
                    remember(Remembered::Password(s));
                    return Ok("password".into());
                }
                Ok(false) => {}
                // sshd hangs up once MaxAuthTries is spent: that is a wrong password too.
                Err(_) if handle.is_closed() => break,
                Err(e) => return Err(e),
            }
        }
        tried.push("password".into());
    }

    if tried.is_empty() {
        tried.push("no agent and no key file".into());
    }
    if !allow_password
        && let Ok(AuthResult::Failure {
            remaining_methods, ..
        }) = handle.authenticate_none(user.clone()).await
        && remaining_methods.iter().any(|m| {
            matches!(
                m,
                russh::MethodKind::Password | russh::MethodKind::KeyboardInteractive
            )
        })
    {
        tried.push(
            "the server also takes a password: set allow_password = true for this server in the \
             berth config to be asked for it"
                .into(),
        );
    }
    Err(SshError::Auth {
        user,
        host: r.alias.clone(),
        tried: tried.join(", "),
    })
}

async fn try_key(
    handle: &mut Handle<Client>,
    user: &str,
    key: Arc<PrivateKey>,
    rsa_hash: Option<HashAlg>,
) -> Result<bool, SshError> {
    let r = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, rsa_hash))
        .await
        .map_err(|e| SshError::Other(format!("ssh authentication failed: {e}")))?;
    Ok(matches!(r, AuthResult::Success))
}

/// Password authentication, then keyboard-interactive answering each hidden prompt with the same
/// password (what a PAM password prompt is).
async fn password(handle: &mut Handle<Client>, user: &str, p: &str) -> Result<bool, SshError> {
    let fail = |e: russh::Error| SshError::Other(format!("ssh authentication failed: {e}"));
    if matches!(
        handle.authenticate_password(user, p).await.map_err(fail)?,
        AuthResult::Success
    ) {
        return Ok(true);
    }
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .map_err(fail)?;
    // A server may send several rounds (and empty ones); a handful is plenty for a password.
    for _ in 0..5 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|q| if q.echo { String::new() } else { p.to_string() })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(fail)?;
            }
        }
    }
    Ok(false)
}

fn pub_path(f: &Path) -> PathBuf {
    let mut s = f.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}
