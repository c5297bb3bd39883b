//! The audit log: one JSON line per mutating action, appended to `audit.jsonl` in the data directory
//! (and optionally to a file on the server), so a team can see who changed what, when, and how it ended.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Plan, RunResult};
use crate::logs::sanitize::plain;
use crate::target::Target;

pub const FILE_NAME: &str = "audit.jsonl";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub time: DateTime<Utc>,
    pub user: String,
    pub server: String,
    pub environment: Option<String>,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub parameters: serde_json::Value,
    #[serde(default)]
    pub images_before: Vec<String>,
    #[serde(default)]
    pub images_after: Vec<String>,
    /// `started` (before the first change), then `ok` or `failed` when the run ends;
    /// `interrupted` for a run a recovery found cut off.
    pub result: String,
    #[serde(default)]
    pub message: String,
    pub duration_ms: u64,
    /// The account on the server when it is reached over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_user: Option<String>,
}

/// A shell session's two audit lines: when it opened, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellPhase {
    Started,
    /// The shell's exit code; `None` when berth could not run or follow it.
    Ended(Option<i64>),
}

impl AuditEntry {
    /// An interactive shell (`e`) in `container`: it can change anything, so it is audited like a
    /// runbook action — a `started` line before the first key, an `ok`/`failed` line at the end.
    pub fn shell(
        target: &Target,
        container: &str,
        phase: ShellPhase,
        message: &str,
        duration: std::time::Duration,
        time: DateTime<Utc>,
    ) -> AuditEntry {
        let (result, exit_code) = match phase {
            ShellPhase::Started => ("started", None),
            ShellPhase::Ended(Some(0)) => ("ok", Some(0)),
            ShellPhase::Ended(code) => ("failed", code),
        };
        AuditEntry {
            time,
            user: local_user(),
            server: target.name.clone(),
            environment: target.environment.clone(),
            action: "shell".into(),
            target: container.to_string(),
            parameters: serde_json::json!({ "exit_code": exit_code }),
            images_before: vec![],
            images_after: vec![],
            result: result.into(),
            message: message.to_string(),
            duration_ms: duration.as_millis() as u64,
            ssh_user: None,
        }
    }

    pub fn new(
        plan: &Plan,
        target: &Target,
        result: &RunResult,
        time: DateTime<Utc>,
    ) -> AuditEntry {
        AuditEntry {
            time,
            user: local_user(),
            server: target.name.clone(),
            environment: target.environment.clone(),
            action: plan.action.clone(),
            target: plan.subject.clone(),
            parameters: plan.parameters.clone(),
            images_before: result.images_before.clone(),
            images_after: result.images_after.clone(),
            result: if result.ok { "ok" } else { "failed" }.into(),
            message: result.message.clone(),
            duration_ms: result.duration.as_millis() as u64,
            ssh_user: None,
        }
    }

    /// The result as the tables show it: a shell session's ends with its exit code
    /// (`failed · exit 3`), which is what says how it ended.
    pub fn result_text(&self) -> String {
        let code = self.parameters.get("exit_code").and_then(|c| c.as_i64());
        match code {
            Some(code) if self.action == "shell" && self.result != "started" => {
                format!("{} · exit {code}", self.result)
            }
            _ => self.result.clone(),
        }
    }

    /// One line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

pub fn local_user() -> String {
    let user = crate::account::os_user_name();
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

/// Appends a line to a file on the server (the SSH module provides it; a local engine has none).
pub trait RemoteAppend: Send + Sync {
    fn append<'a>(
        &'a self,
        path: &'a str,
        line: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("cannot read the audit log {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("no data directory for berth: set BERTH_DATA_DIR")]
    NoDataDir,
}

impl AuditLog {
    pub fn at(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog { path: path.into() }
    }

    /// `$BERTH_DATA_DIR/audit.jsonl`, else the platform data directory (`~/.local/share/berth`).
    pub fn from_env() -> AuditLog {
        AuditLog::at(
            data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join(FILE_NAME),
        )
    }

    /// One `write` per line on an append-mode file, so concurrent berths never interleave a line.
    pub fn append(&self, entry: &AuditEntry) -> Result<(), AuditError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| AuditError::Write(self.path.clone(), e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| AuditError::Write(self.path.clone(), e))?;
        f.write_all(entry.to_line().as_bytes())
            .map_err(|e| AuditError::Write(self.path.clone(), e))
    }

    /// The last `limit` entries, oldest first. Lines that are not valid entries are skipped.
    pub fn read_last(&self, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        read_last(&self.path, limit)
    }
}

pub fn data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("BERTH_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    directories::ProjectDirs::from("", "", "berth").map(|d| d.data_dir().to_path_buf())
}

/// The most bytes read from the end of the audit file for its last entries: a file of any size
/// opens in constant memory and time.
pub const MAX_READ_BYTES: u64 = 8 << 20;
/// Read from the end in pieces of this size.
const READ_CHUNK: u64 = 64 << 10;

/// The last `limit` valid entries, read backwards from the end of the file, at most
/// [`MAX_READ_BYTES`] of it.
fn read_last(path: &Path, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
    use std::io::{Read, Seek, SeekFrom};
    let read_err = |e| AuditError::Read(path.to_path_buf(), e);
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut pos = file.metadata().map_err(read_err)?.len();
    let floor = pos.saturating_sub(MAX_READ_BYTES);
    let mut newest_first = Vec::new();
    // The start of the oldest line read so far, whose beginning is in the piece before.
    let mut head: Vec<u8> = Vec::new();
    while pos > floor && newest_first.len() < limit {
        let n = READ_CHUNK.min(pos - floor);
        pos -= n;
        let mut buf = vec![0u8; n as usize];
        file.seek(SeekFrom::Start(pos)).map_err(read_err)?;
        file.read_exact(&mut buf).map_err(read_err)?;
        buf.extend_from_slice(&head);
        // Whole lines only: the first one may begin in the piece before, unless this is the start.
        let whole_from = if pos == 0 {
            0
        } else {
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => {
                    head = buf;
                    continue;
                }
            }
        };
        for line in buf[whole_from..].rsplit(|b| *b == b'\n') {
            if newest_first.len() == limit {
                break;
            }
            if let Ok(e) = serde_json::from_slice::<AuditEntry>(line) {
                newest_first.push(e);
            }
        }
        buf.truncate(whole_from);
        head = buf;
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// A table row per entry for `berth audit`.
pub fn format_table(entries: &[AuditEntry]) -> String {
    let mut out = format!(
        "{:<20} {:<18} {:<12} {:<9} {:<24} {:<15} {:>8}\n",
        "TIME", "USER", "SERVER", "ACTION", "TARGET", "RESULT", "MS"
    );
    for e in entries {
        out.push_str(&format!(
            "{:<20} {:<18} {:<12} {:<9} {:<24} {:<15} {:>8}\n",
            e.time.format("%Y-%m-%d %H:%M:%S"),
            plain(&e.user),
            plain(&e.server),
            plain(&e.action),
            plain(&e.target),
            plain(&e.result_text()),
            e.duration_ms
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            time: DateTime::parse_from_rfc3339("2026-11-24T03:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            user: "ana@laptop".into(),
            server: "prod".into(),
            environment: Some("production".into()),
            action: "rollback".into(),
            target: "shop/web".into(),
            parameters: serde_json::json!({"to": "v1"}),
            images_before: vec!["sha256:b".into()],
            images_after: vec!["sha256:a".into()],
            result: "ok".into(),
            message: String::new(),
            duration_ms: n,
            ssh_user: None,
        }
    }

    #[test]
    fn appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path().join("sub").join(FILE_NAME));
        assert!(log.read_last(10).unwrap().is_empty());
        for n in 0..5 {
            log.append(&entry(n)).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log.path)
            .unwrap()
            .write_all(b"garbage\n")
            .unwrap();
        let last = log.read_last(2).unwrap();
        assert_eq!(
            last.iter().map(|e| e.duration_ms).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(last[0], entry(3));
        let text = std::fs::read_to_string(&log.path).unwrap();
        assert_eq!(text.lines().count(), 6);
        assert!(format_table(&last).contains("shop/web"));
    }

    #[test]
    fn a_shell_sessions_result_carries_its_exit_code() {
        let target = Target::local();
        let now = entry(0).time;
        let took = std::time::Duration::from_secs(2);
        let ended =
            |code| AuditEntry::shell(&target, "web-1", ShellPhase::Ended(code), "", took, now);
        let table = format_table(&[ended(Some(3)), ended(Some(0)), ended(None)]);
        let rows: Vec<&str> = table.lines().skip(1).collect();
        assert!(rows[0].contains("failed · exit 3"), "{table}");
        assert!(rows[1].contains("ok · exit 0"), "{table}");
        assert!(
            rows[2].contains("failed ") && !rows[2].contains("exit"),
            "{table}"
        );
        let started = AuditEntry::shell(&target, "web-1", ShellPhase::Started, "", took, now);
        assert_eq!(started.result_text(), "started");
    }

    #[test]
    fn a_huge_audit_file_is_read_from_its_end_within_the_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path().join(FILE_NAME));
        log.append(&entry(0)).unwrap();
        // 1 GiB (sparse: no disk used) of a line that never ends, then three entries.
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log.path)
            .unwrap();
        f.set_len(1 << 30).unwrap();
        (&f).write_all(b"\n").unwrap();
        drop(f);
        for n in 1..=3 {
            log.append(&entry(n)).unwrap();
        }
        let last = log.read_last(500).unwrap();
        // The first line (1 GiB of zeros and then an entry) is beyond the bound: only the three.
        assert_eq!(
            last.iter().map(|e| e.duration_ms).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // Entries across the pieces' borders are read whole.
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path().join(FILE_NAME));
        for n in 0..3000 {
            log.append(&entry(n)).unwrap();
        }
        let all = log.read_last(5000).unwrap();
        assert_eq!(all.len(), 3000);
        assert!(
            all.iter()
                .enumerate()
                .all(|(i, e)| e.duration_ms == i as u64)
        );
    }
}
