//! Host key verification against OpenSSH known_hosts files: plain and hashed (`|1|salt|hash`) names,
//! `[host]:port`, wildcard and negated patterns, `@revoked` (refused) and `@cert-authority` (skipped,
//! since berth does not verify host certificates).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};

use crate::ssh_config::wildcard;

/// What the known_hosts files say about a server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    Known {
        file: PathBuf,
        line: usize,
    },
    /// The host is listed with a different key of the same type: possible man in the middle.
    Changed {
        file: PathBuf,
        line: usize,
    },
    Revoked {
        file: PathBuf,
        line: usize,
    },
    Unknown,
}

/// The name OpenSSH looks up: `host`, or `[host]:port` off port 22.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `word` as one shell word: as is when it is plain, else in single quotes (`'[10.0.0.5]:2222'`).
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/@%+=".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The OpenSSH command that reaches `user@host:port`, ready to paste: `ssh -p 2222 root@10.0.0.5`.
pub fn login_command(user: &str, host: &str, port: u16) -> String {
    let dest = if user.is_empty() {
        shell_word(host)
    } else {
        shell_word(&format!("{user}@{host}"))
    };
    if port == 22 {
        format!("ssh {dest}")
    } else {
        format!("ssh -p {port} {dest}")
    }
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub fn key_type(key: &PublicKey) -> String {
    key.algorithm().as_str().to_string()
}

/// Checks `key` for `host:port` against every file, in order. A revoked key wins over everything;
/// otherwise the first match (known or changed) decides, as OpenSSH reports the first offending line.
pub fn check(files: &[PathBuf], host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
    let name = lookup_name(host, port);
    let mut decided = HostKeyStatus::Unknown;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (i, raw) in text.lines().enumerate() {
            let Some(entry) = parse_line(raw) else {
                continue;
            };
            let line = i + 1;
            if entry.marker == Marker::Revoked {
                if entry.key.key_data() == key.key_data() {
                    return HostKeyStatus::Revoked {
                        file: file.clone(),
                        line,
                    };
                }
                continue;
            }
            if entry.marker == Marker::CertAuthority || !names_match(entry.hosts, &name) {
                continue;
            }
            if entry.key.key_data() == key.key_data() {
                if !matches!(decided, HostKeyStatus::Changed { .. }) {
                    // A matching line anywhere makes the key known, even after a stale one of another file,
                    // but a changed line seen first still reports as changed (OpenSSH does the same).
                    if decided == HostKeyStatus::Unknown {
                        decided = HostKeyStatus::Known {
                            file: file.clone(),
                            line,
                        };
                    }
                }
            } else if entry.key.algorithm() == key.algorithm() && decided == HostKeyStatus::Unknown
            {
                decided = HostKeyStatus::Changed {
                    file: file.clone(),
                    line,
                };
            }
        }
    }
    decided
}

/// Key algorithms listed for this host, to ask the server for a key we can verify.
pub fn known_algorithms(files: &[PathBuf], host: &str, port: u16) -> Vec<russh::keys::Algorithm> {
    let name = lookup_name(host, port);
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for raw in text.lines() {
            if let Some(e) = parse_line(raw)
                && e.marker == Marker::None
                && names_match(e.hosts, &name)
                && !out.contains(&e.key.algorithm())
            {
                out.push(e.key.algorithm());
            }
        }
    }
    out
}

/// Appends `host key` to `file` (creating it and its directory); `hashed` writes the name as
/// `|1|salt|hash`, as OpenSSH does with `HashKnownHosts yes`.
pub fn append(
    file: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
    hashed: bool,
) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let name = if hashed {
        hash_name(&lookup_name(host, port))?
    } else {
        lookup_name(host, port)
    };
    let line = format!(
        "{} {}\n",
        name,
        key.to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?
    );
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    // A file whose last line lacks a newline would glue our entry onto it.
    let len = f.metadata()?.len();
    if len > 0 {
        let text = std::fs::read(file)?;
        if text.last() != Some(&b'\n') {
            f.write_all(b"\n")?;
        }
    }
    f.write_all(line.as_bytes())
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key: PublicKey,
}

fn parse_line(raw: &str) -> Option<Entry<'_>> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let _key_type = fields.next()?;
    let key = russh::keys::parse_public_key_base64(fields.next()?).ok()?;
    Some(Entry {
        marker,
        hosts: first,
        key,
    })
}

/// A hosts field: a hashed name, or comma-separated patterns where a negated match excludes.
fn names_match(hosts: &str, name: &str) -> bool {
    if let Some(rest) = hosts.strip_prefix("|1|") {
        return hashed_match(rest, name);
    }
    let mut matched = false;
    for p in hosts.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, name) {
                return false;
            }
        } else if wildcard(p, name) {
            matched = true;
        }
    }
    matched
}

fn hash_name(name: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut salt = [0u8; 20];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    mac.update(name.as_bytes());
    Ok(format!(
        "|1|{}|{}",
        B64.encode(salt),
        B64.encode(mac.finalize().into_bytes())
    ))
}

fn hashed_match(rest: &str, name: &str) -> bool {
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAICdlT1QcGHuV6OnWSwI3Cav8t4O2MCqzxeQWlDu9sq58";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIN/mY3i3TOqlE5HSJrmu4DjS08Q4Ll7QaB6fsjjwLQU+";

    fn key(b: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b).unwrap()
    }

    fn hashed(name: &str) -> String {
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            B64.encode(salt),
            B64.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn suggested_commands_paste_into_a_shell() {
        assert_eq!(shell_word("[127.0.0.1]:22951"), "'[127.0.0.1]:22951'");
        assert_eq!(shell_word("prod.example.com"), "prod.example.com");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(
            login_command("root", "127.0.0.1", 22951),
            "ssh -p 22951 root@127.0.0.1"
        );
        assert_eq!(login_command("", "box", 22), "ssh box");
        assert_eq!(
            login_command("deploy", "::1", 2222),
            "ssh -p 2222 deploy@::1"
        );
    }

    #[test]
    fn statuses() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        std::fs::write(
            &f,
            format!(
                "# comment\n\
                 @cert-authority *.corp ssh-ed25519 {ED2}\n\
                 plain.example,other ssh-ed25519 {ED1}\n\
                 [ported]:2222 ssh-ed25519 {ED1}\n\
                 {} ssh-ed25519 {ED1}\n\
                 *.wild,!bad.wild ssh-ed25519 {ED1}\n\
                 changed ssh-ed25519 {ED2}\n\
                 @revoked * ssh-ed25519 {ED2}\n",
                hashed("[hashed]:2200")
            ),
        )
        .unwrap();
        let files = vec![f.clone()];
        let k1 = key(ED1);
        assert_eq!(
            check(&files, "plain.example", 22, &k1),
            HostKeyStatus::Known {
                file: f.clone(),
                line: 3
            }
        );
        assert_eq!(
            check(&files, "other", 22, &k1),
            HostKeyStatus::Known {
                file: f.clone(),
                line: 3
            }
        );
        assert_eq!(
            check(&files, "ported", 2222, &k1),
            HostKeyStatus::Known {
                file: f.clone(),
                line: 4
            }
        );
        assert_eq!(check(&files, "ported", 22, &k1), HostKeyStatus::Unknown);
        assert_eq!(
            check(&files, "hashed", 2200, &k1),
            HostKeyStatus::Known {
                file: f.clone(),
                line: 5
            }
        );
        assert_eq!(
            check(&files, "a.wild", 22, &k1),
            HostKeyStatus::Known {
                file: f.clone(),
                line: 6
            }
        );
        assert_eq!(check(&files, "bad.wild", 22, &k1), HostKeyStatus::Unknown);
        assert_eq!(
            check(&files, "x.corp", 22, &k1),
            HostKeyStatus::Unknown,
            "a CA line is not a host key"
        );
        assert_eq!(
            check(&files, "changed", 22, &k1),
            HostKeyStatus::Changed {
                file: f.clone(),
                line: 7
            }
        );
        assert_eq!(
            check(&files, "changed", 22, &key(ED2)),
            HostKeyStatus::Revoked {
                file: f.clone(),
                line: 8
            }
        );

        append(&f, "new", 2022, &k1, false).unwrap();
        assert!(matches!(
            check(&files, "new", 2022, &k1),
            HostKeyStatus::Known { line: 9, .. }
        ));
        append(&f, "secret", 22, &k1, true).unwrap();
        assert!(matches!(
            check(&files, "secret", 22, &k1),
            HostKeyStatus::Known { line: 10, .. }
        ));
        assert!(
            !std::fs::read_to_string(&f).unwrap().contains("secret"),
            "the name is hashed"
        );
    }
}
