//! Log lines to files: a view's lines as they are, or its whole range read again from the engine
//! past the view's bounds. Files are the user's alone (`0600`) and never overwrite another.

use std::io::Write;

use tokio::sync::mpsc;

/// Batches between the stream and the file: the stream waits while the disk is slow.
const QUEUE: usize = 16;

/// Writes a saved log into the current directory, or the data directory when that fails. Never
/// overwrites: the name carries the time, and an existing file is an error.
pub fn save_log_file(file: &std::path::Path, text: &[u8]) -> Result<std::path::PathBuf, String> {
    let write = |path: &std::path::Path| -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        // Logs hold secrets: the saved copy is the user's alone.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text)
    };
    let first = match write(file) {
        Ok(()) => return Ok(std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())),
        Err(e) => e,
    };
    match crate::runbook::audit::data_dir() {
        Some(dir) => {
            let path = dir.join(file.file_name().unwrap_or(file.as_os_str()));
            std::fs::create_dir_all(&dir)
                .and_then(|_| write(&path))
                .map(|_| path)
                .map_err(|e| format!("{}: {first}; {}: {e}", file.display(), dir.display()))
        }
        None => Err(format!("{}: {first}", file.display())),
    }
}

/// The range of `options` on `ids` streamed once (no follow) straight into a new file beside
/// [`save_log_file`]'s: nothing is held in memory, so no bound drops a line. The path and how many
/// lines it holds.
pub async fn save_range(
    docker: &bollard::Docker,
    file: std::path::PathBuf,
    ids: Vec<String>,
    sources: Vec<super::LogSource>,
    options: super::LogOptions,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(std::path::PathBuf, u64), String> {
    use super::LogEvent;
    // Created empty first (0600, never over another file), then filled as the lines come.
    let path = tokio::task::spawn_blocking(move || save_log_file(&file, b""))
        .await
        .map_err(|e| e.to_string())??;
    let mut out = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?,
    );
    let (ev_tx, mut ev_rx) = mpsc::channel(QUEUE);
    let _stop = cancel.clone().drop_guard();
    super::stream::spawn(docker.clone(), ids, options, ev_tx, cancel);
    let mut writer = super::LineWriter::new(&sources, true);
    let mut count = 0u64;
    let mut failed = None;
    while let Some(ev) = ev_rx.recv().await {
        match ev {
            LogEvent::Lines(lines) => {
                for l in lines.iter() {
                    writer
                        .write(&mut out, l)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    count += 1;
                }
            }
            LogEvent::Status {
                status: super::SourceStatus::Failed(e),
                ..
            } => failed = Some(e),
            LogEvent::Status { .. } => {}
            LogEvent::Ended => break,
        }
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match failed {
        Some(e) => Err(format!(
            "{} has the {count} lines read before: {e}",
            path.display()
        )),
        None => Ok((path, count)),
    }
}
