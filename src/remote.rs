//! SSH-backed implementations of hooks that engine-side modules define without knowing about SSH.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::runbook::RemoteAppend;
use crate::ssh::SshSession;

/// Appends audit lines to a file on the server with one read-free exec per line.
pub struct SshAppend(pub Arc<SshSession>);

impl SshAppend {
    /// How a plan runs against `engine`, for the CLI and the console alike: over SSH the audit line
    /// also goes to the server's `remote_audit` file.
    pub fn run_options(engine: &crate::engine::Engine) -> crate::runbook::RunOptions {
        crate::runbook::RunOptions {
            audit: None,
            remote: engine
                .ssh
                .clone()
                .map(|s| Arc::new(SshAppend(s)) as Arc<dyn RemoteAppend>),
            notify: None,
            ended: None,
        }
    }
}

impl RemoteAppend for SshAppend {
    fn append<'a>(
        &'a self,
        path: &'a str,
        line: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let quote = |s: &str| {
                shlex::try_quote(s)
                    .map(|q| q.into_owned())
                    .map_err(|e| e.to_string())
            };
            let cmd = format!(
                "printf '%s\\n' {} >> {}",
                quote(line.trim_end())?,
                quote(path)?
            );
            let out = self.0.exec(&cmd).await.map_err(|e| e.to_string())?;
            match out.exit_code {
                Some(0) => Ok(()),
                code => Err(format!(
                    "appending to {path} on the server failed ({}): {}",
                    code.map(|c| format!("exit {c}"))
                        .unwrap_or_else(|| "killed".into()),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            }
        })
    }
}

/// The stats collector's and the host monitor's read-only commands, run by one `sh` kept open on
/// the server: one session and one login (with the user's shell startup files, which can be
/// heavy: `pyenv init` in a `.bashrc` costs more than the read itself) for the whole connection,
/// instead of one per interval. A broken or stuck shell is dropped and the next call opens another.
pub struct SshShell {
    session: Arc<SshSession>,
    shell: tokio::sync::Mutex<Option<tokio::io::BufReader<crate::ssh::SshStream>>>,
}

/// A command's output larger than this is refused (the shell is dropped with it).
const SHELL_MAX_OUTPUT: usize = 16 << 20;
/// A command that has not finished after this long is given up on.
const SHELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl SshShell {
    pub fn new(session: Arc<SshSession>) -> SshShell {
        SshShell {
            session,
            shell: tokio::sync::Mutex::new(None),
        }
    }

    /// The kept shell for an engine reached over SSH; none for a local or tcp engine.
    pub fn for_engine(engine: &crate::engine::Engine) -> Option<Arc<dyn crate::stats::RemoteExec>> {
        engine
            .ssh
            .clone()
            .map(|s| Arc::new(SshShell::new(s)) as Arc<dyn crate::stats::RemoteExec>)
    }
}

impl crate::stats::RemoteExec for SshShell {
    fn exec<'a>(
        &'a self,
        cmd: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        Box::pin(async move {
            let mut guard = self.shell.lock().await;
            if guard.is_none() {
                let stream = self
                    .session
                    .exec_stream("exec sh")
                    .await
                    .map_err(|e| e.to_string())?;
                *guard = Some(tokio::io::BufReader::new(stream));
            }
            let Some(shell) = guard.as_mut() else {
                return Err("no shell".into());
            };
            // Markers around the output: whatever the login printed before is skipped, and the
            // end is known without closing the shell.
            let begin = "--berth-begin--";
            let end = "--berth-end--";
            let run = async {
                let script = format!("echo {begin}\n{cmd}\necho {end}\n");
                shell.get_mut().write_all(script.as_bytes()).await?;
                shell.get_mut().flush().await?;
                let mut out = String::new();
                let mut started = false;
                let mut line = String::new();
                loop {
                    line.clear();
                    if shell.read_line(&mut line).await? == 0 {
                        return Err(std::io::Error::other("the shell on the server exited"));
                    }
                    match line.trim_end() {
                        l if l == begin => started = true,
                        l if l == end && started => return Ok(out),
                        _ if started => {
                            out.push_str(&line);
                            if out.len() > SHELL_MAX_OUTPUT {
                                return Err(std::io::Error::other("output too large"));
                            }
                        }
                        _ => {}
                    }
                }
            };
            let result = match tokio::time::timeout(SHELL_TIMEOUT, run).await {
                Ok(Ok(out)) => Ok(out),
                Ok(Err(e)) => Err(format!("stats shell on the server: {e}")),
                Err(_) => Err(format!(
                    "stats shell on the server: no answer within {} s",
                    SHELL_TIMEOUT.as_secs()
                )),
            };
            if result.is_err() {
                *guard = None;
            }
            result
        })
    }
}

/// A compose project's files on the server, read with one exec each (`head -c`, so a huge file
/// costs no more than the cap).
pub struct SshFiles(pub Arc<SshSession>);

impl SshFiles {
    /// How berth reads an engine's project files: over SSH for an SSH target, on this machine
    /// for a local socket, not at all for a TCP engine.
    pub fn for_engine(
        engine: &crate::engine::Engine,
    ) -> Option<Arc<dyn crate::compose::ProjectFiles>> {
        match &engine.ssh {
            Some(s) => Some(Arc::new(SshFiles(s.clone())) as Arc<dyn crate::compose::ProjectFiles>),
            None => crate::compose::local_files(engine),
        }
    }
}

impl crate::compose::ProjectFiles for SshFiles {
    fn read<'a>(
        &'a self,
        path: &'a str,
        max: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, String>> + Send + 'a>> {
        Box::pin(async move {
            let quoted = shlex::try_quote(path).map_err(|e| e.to_string())?;
            // Exit 3 tells "no such file" from "cannot read it" without parsing stderr.
            let cmd = format!(
                "if [ ! -e {quoted} ]; then exit 3; fi; head -c {} -- {quoted}",
                max + 1
            );
            let out = self.0.exec(&cmd).await.map_err(|e| e.to_string())?;
            match out.exit_code {
                Some(0) if out.stdout.len() > max => Err(format!("larger than {} KiB", max >> 10)),
                Some(0) => Ok(Some(out.stdout)),
                Some(3) => Ok(None),
                code => Err(exec_failure(&out.stderr, code)),
            }
        })
    }

    fn replace<'a>(
        &'a self,
        path: &'a str,
        backup: Option<&'a str>,
        expected: &'a [u8],
        bytes: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<(), crate::compose::ReplaceError>> + Send + 'a>> {
        use crate::compose::ReplaceError;
        Box::pin(async move {
            let cmd = replace_command(path, backup, &sha1_hex(expected), bytes.len())
                .map_err(ReplaceError::Failed)?;
            let out = self
                .0
                .exec_with_input(&cmd, bytes)
                .await
                .map_err(|e| ReplaceError::Failed(e.to_string()))?;
            match out.exit_code {
                Some(0) => Ok(()),
                Some(CHANGED_EXIT) => Err(ReplaceError::Changed),
                code => Err(ReplaceError::Failed(exec_failure(&out.stderr, code))),
            }
        })
    }
}

/// The replace command's exit status when the file no longer holds the expected bytes.
const CHANGED_EXIT: u32 = 5;

/// The file's bytes as `sha1sum` prints them, to compare on the server without sending the file.
fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The shell command that replaces `path` with `len` bytes read from stdin, only while the file
/// holds the bytes whose SHA-1 is `expected` (else exit [`CHANGED_EXIT`], stdin read and
/// dropped, nothing written), after copying it to `backup`. A symlink is resolved first, so
/// its target is replaced and the link stays. A directory berth cannot write (a read-only
/// filesystem) is said before anything is tried. The temp file starts as a copy (the
/// original's mode), is checked against `expected`, takes the new bytes, then replaces the
/// file in one rename after a last check. A link that drops mid-input ends cat's stdin early,
/// and cat succeeds on a short file: only the whole length is renamed, else the temp file goes.
fn replace_command(
    path: &str,
    backup: Option<&str>,
    expected: &str,
    len: usize,
) -> Result<String, String> {
    let q = |s: &str| {
        shlex::try_quote(s)
            .map(|q| q.into_owned())
            .map_err(|e| e.to_string())
    };
    let holds = |file: &str| format!("[ \"$(sha1sum < {file} | cut -c1-40)\" = {expected} ]");
    let copy = match backup {
        Some(b) => {
            let part = q(&format!("{b}.berth-tmp"))?;
            format!("cp -p -- \"$t\" {part} && mv -f -- {part} {} && ", q(b)?)
        }
        None => String::new(),
    };
    let changed = format!("{{ rm -f -- \"$t\"; cat > /dev/null; exit {CHANGED_EXIT}; }}");
    Ok(format!(
        "p=$(readlink -f -- {path}) && [ -f \"$p\" ] || {{ echo {missing} >&2; cat > /dev/null; exit 1; }}; \
         d=$(dirname -- \"$p\"); t=\"$p.berth-tmp\"; \
         [ -w \"$d\" ] || {{ echo \"$d is read-only (a read-only filesystem or no write permission): berth cannot write $p\" >&2; cat > /dev/null; exit 1; }}; \
         cp -p -- \"$p\" \"$t\" || {{ cat > /dev/null; exit 1; }}; \
         {held_t} || {changed}; \
         {copy}cat > \"$t\" && [ \"$(wc -c < \"$t\" | tr -d ' ')\" = {len} ] || {{ rm -f -- \"$t\"; exit 1; }}; \
         {held_p} || {changed}; \
         mv -f -- \"$t\" \"$p\" || {{ rm -f -- \"$t\"; exit 1; }}",
        path = q(path)?,
        missing = q(&format!("{path}: no such file"))?,
        held_t = holds("\"$t\""),
        held_p = holds("\"$p\""),
    ))
}

fn exec_failure(stderr: &[u8], code: Option<u32>) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let how = code
        .map(|c| format!("exit {c}"))
        .unwrap_or_else(|| "no exit status: the SSH link dropped or the command was killed".into());
    match stderr.trim() {
        "" => how,
        text => format!("{text} ({how})"),
    }
}

/// A shell on the server for the backups: one exec per script (`sh -c`, whatever the account's
/// login shell), so a dump's bytes go from the container to a file on the server and never here.
pub struct SshServerShell(pub Arc<SshSession>);

impl SshServerShell {
    /// The SSH server shell of an engine reached over SSH.
    pub fn for_engine(
        engine: &crate::engine::Engine,
    ) -> Option<Arc<dyn crate::backup::shell::ServerShell>> {
        engine
            .ssh
            .clone()
            .map(|s| Arc::new(SshServerShell(s)) as Arc<dyn crate::backup::shell::ServerShell>)
    }
}

/// What the runbook's planning reads through the SSH session (or this machine, for a local
/// engine): the compose files and the server's shell.
pub fn plan_hooks(engine: &crate::engine::Engine) -> crate::runbook::Hooks {
    crate::runbook::Hooks {
        files: SshFiles::for_engine(engine),
        shell: SshServerShell::for_engine(engine),
    }
}

impl crate::backup::shell::ServerShell for SshServerShell {
    fn run<'a>(
        &'a self,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<crate::backup::shell::ShellOutput, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let cmd = format!("sh -c {}", crate::backup::kind::quote(script));
            let out = self.0.exec(&cmd).await.map_err(|e| e.to_string())?;
            Ok(crate::backup::shell::ShellOutput {
                code: out.exit_code.map(|c| c as i32),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        })
    }

    /// `cat` on the server, its stdout the stream (the caller checks what arrived by its sha256:
    /// this stream carries no exit status).
    fn read<'a>(
        &'a self,
        path: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<crate::backup::shell::FileReader, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let cmd = format!("cat -- {}", crate::backup::kind::quote(path));
            let stream = self.0.exec_stream(&cmd).await.map_err(|e| e.to_string())?;
            Ok(Box::pin(stream) as crate::backup::shell::FileReader)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Runs the replace command in a real `sh`, feeding it `input` on stdin: its exit code.
    fn run(cmd: &str, input: &[u8]) -> Option<i32> {
        let mut child = Command::new("sh")
            .args(["-c", cmd])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The command may refuse before it reads: a closed pipe is its answer, not a failure.
        let _ = child.stdin.take().unwrap().write_all(input);
        child.wait().unwrap().code()
    }

    const BEFORE: &str = "WEB_TAG=v2\nDB=postgres://a:b@db/app\n";
    const PINNED: &[u8] = b"WEB_TAG=v1\nDB=postgres://a:b@db/app\n";

    #[test]
    fn a_short_input_leaves_the_file_as_it_was_and_a_whole_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let backup = dir.path().join(".env.berth-1");
        std::fs::write(&env, BEFORE).unwrap();
        let (env_s, backup_s) = (env.to_str().unwrap(), backup.to_str().unwrap());

        // The link dropped after 8 bytes: cat ends early and succeeds, the rename must not.
        let cmd = replace_command(
            env_s,
            Some(backup_s),
            &sha1_hex(BEFORE.as_bytes()),
            PINNED.len(),
        )
        .unwrap();
        assert_eq!(run(&cmd, &PINNED[..8]), Some(1));
        assert_eq!(std::fs::read_to_string(&env).unwrap(), BEFORE);
        assert!(
            !dir.path().join(".env.berth-tmp").exists(),
            "no temp file left"
        );

        assert_eq!(run(&cmd, PINNED), Some(0));
        assert_eq!(std::fs::read(&env).unwrap(), PINNED);
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            BEFORE,
            "the copy is the file from before"
        );
    }

    #[test]
    fn a_file_edited_since_it_was_read_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let backup = dir.path().join(".env.berth-1");
        let edited = "WEB_TAG=v3\nDB=postgres://a:b@db/app\n";
        std::fs::write(&env, edited).unwrap();
        let cmd = replace_command(
            env.to_str().unwrap(),
            Some(backup.to_str().unwrap()),
            &sha1_hex(BEFORE.as_bytes()),
            PINNED.len(),
        )
        .unwrap();
        assert_eq!(run(&cmd, PINNED), Some(CHANGED_EXIT as i32));
        assert_eq!(std::fs::read_to_string(&env).unwrap(), edited);
        assert!(!backup.exists(), "no copy of a file berth did not write");
        assert!(!dir.path().join(".env.berth-tmp").exists());
    }

    #[test]
    fn a_symlinked_env_is_written_through_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        let target = dir.path().join("shared").join("app.env");
        std::fs::write(&target, BEFORE).unwrap();
        let env = dir.path().join(".env");
        std::os::unix::fs::symlink(&target, &env).unwrap();
        let cmd = replace_command(
            env.to_str().unwrap(),
            None,
            &sha1_hex(BEFORE.as_bytes()),
            PINNED.len(),
        )
        .unwrap();
        assert_eq!(run(&cmd, PINNED), Some(0));
        assert!(
            std::fs::symlink_metadata(&env)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link stays a link"
        );
        assert_eq!(std::fs::read(&target).unwrap(), PINNED);
    }
}
