//! What a cut-off rollback changed besides containers, and how its recovery settles it: the
//! `.env` pin (a restore writes the file back from the pin's copy; a finish keeps it) and the
//! image retag (a finish completes it; a restore points the tag back), so that after either the
//! next `docker compose up -d` starts what serves.

use std::sync::Arc;

use bollard::query_parameters::{RemoveImageOptions, TagImageOptions};

use super::super::{eng, short};
use super::journal::{PinRecord, RetagRecord};
use crate::compose::ProjectFiles;
use crate::engine::Engine;

/// The cut-off run's `.env` pin, from its journal. A restore writes the file back from the copy the
/// pin kept; a finish leaves the pin, which declares the image the run finishes with.
#[derive(Clone)]
pub(super) struct PinUndo {
    pub record: PinRecord,
    pub files: Option<Arc<dyn ProjectFiles>>,
}

impl std::fmt::Debug for PinUndo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinUndo")
            .field("record", &self.record)
            .field("files", &self.files.is_some())
            .finish()
    }
}

/// Why a pin was not undone, and whether trying again could change that.
#[derive(Debug)]
pub(super) struct PinNotUndone {
    pub message: String,
    /// Nothing more berth can do (the file changed since, is gone, is out of reach): a run keeps no
    /// journal for it. Otherwise the file could not be read or written, and a later try may.
    pub settled: bool,
}

fn settled(message: String) -> PinNotUndone {
    PinNotUndone {
        message,
        settled: true,
    }
}

fn unsettled(message: String) -> PinNotUndone {
    PinNotUndone {
        message,
        settled: false,
    }
}

/// Sets the pinned variable back to the value the pin's copy holds, touching only its line and
/// only while it still holds the pinned value: any other edit made since stays, and a variable
/// changed since is someone's edit, left alone with the way to undo the pin by hand.
pub(super) async fn undo_pin(u: &PinUndo) -> Result<String, PinNotUndone> {
    use crate::compose::{MAX_FILE_BYTES, ReplaceError, dotenv};
    let r = &u.record;
    let by_hand = |before: &str| {
        format!(
            "set {}={before} in {} by hand to undo the pin (the file before the pin: {})",
            r.var, r.env_path, r.backup
        )
    };
    let Some(files) = &u.files else {
        return Err(settled(format!(
            "{} is on the engine's host, which berth does not reach: {}",
            r.env_path,
            by_hand("its old value")
        )));
    };
    let read = |path: &str| {
        let path = path.to_string();
        async move {
            files
                .read(&path, MAX_FILE_BYTES)
                .await
                .map_err(|e| unsettled(format!("{path}: {e}")))
        }
    };
    // The pin copies the file before it writes: no copy, nothing was written.
    let Some(backup) = read(&r.backup).await? else {
        return Ok(format!(
            "{} was not pinned yet (no copy {}): it holds what it held before the pin",
            r.env_path, r.backup
        ));
    };
    let value_in = |bytes: &[u8]| {
        dotenv::parse(&String::from_utf8_lossy(bytes))
            .get(&r.var)
            .cloned()
    };
    let Some(before) = value_in(&backup) else {
        return Err(settled(format!(
            "the copy {} sets no {}: {}",
            r.backup,
            r.var,
            by_hand("its old value")
        )));
    };
    let Some(now) = read(&r.env_path).await? else {
        return Err(settled(format!(
            "{} is gone: {}",
            r.env_path,
            by_hand(&before)
        )));
    };
    match value_in(&now) {
        // Killed between the copy and the write, the file still holds the value it had.
        Some(v) if v == before => {
            return Ok(format!(
                "{} holds {}={before} as before the pin (the pin was not written): left as it is",
                r.env_path, r.var
            ));
        }
        Some(v) if v == r.value => {}
        other => {
            return Err(settled(format!(
                "{} {} now, not the pinned {}: changed since the pin, left as it is; {}",
                r.env_path,
                match other {
                    Some(v) => format!("sets {}={v}", r.var),
                    None => format!("sets no {}", r.var),
                },
                r.value,
                by_hand(&before)
            )));
        }
    }
    let restored = std::str::from_utf8(&now)
        .map_err(|_| format!("{} is not text", r.env_path))
        .and_then(|text| dotenv::rewrite(text, &r.var, &before))
        .map_err(|e| settled(format!("{e}: {}", by_hand(&before))))?;
    files
        .replace(&r.env_path, None, &now, restored.as_bytes())
        .await
        .map_err(|e| {
            // Changed while being written: a later try reads it again and decides again.
            unsettled(match e {
                ReplaceError::Changed => format!(
                    "{} changed while berth set {} back: {}",
                    r.env_path,
                    r.var,
                    by_hand(&before)
                ),
                ReplaceError::Failed(e) => format!(
                    "{} could not be written ({e}): {}",
                    r.env_path,
                    by_hand(&before)
                ),
            })
        })?;
    Ok(format!(
        "{}={before} set back in {} (only the pinned line: the rest of the file is as it is now)",
        r.var, r.env_path
    ))
}

/// Settles the run's retag: `finish` completes it, otherwise the tag is pointed back at the image
/// it named before the run, only while it names the image the run moved it to.
pub(super) async fn settle_retag(
    engine: &Engine,
    r: &RetagRecord,
    finish: bool,
) -> Result<String, String> {
    let d = &engine.docker;
    let reference = format!("{}:{}", r.repo, r.tag);
    let tag = |image: &str, tag: &str| {
        let (image, tag) = (image.to_string(), tag.to_string());
        async move {
            d.tag_image(
                &image,
                Some(TagImageOptions {
                    repo: Some(r.repo.clone()),
                    tag: Some(tag),
                }),
            )
            .await
            .map_err(|e| eng(engine, e))
        }
    };
    if finish {
        tag(&r.displaced, &r.keep_tag).await?;
        tag(&r.image_id, &r.tag).await?;
        return Ok(format!(
            "{reference} → {}; the previous image is {}:{}",
            short(&r.image_id),
            r.repo,
            r.keep_tag
        ));
    }
    let names = match d.inspect_image(&reference).await {
        Ok(i) => i.id,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(e) => return Err(eng(engine, e)),
    };
    let said = match names.as_deref() {
        Some(id) if id == r.displaced => format!(
            "{reference} still names {} (the run had not moved it)",
            short(&r.displaced)
        ),
        Some(id) if id == r.image_id => {
            tag(&r.displaced, &r.tag).await?;
            format!(
                "{reference} points back at {}, the image it named before the run",
                short(&r.displaced)
            )
        }
        other => {
            return Err(format!(
                "{reference} names {}, neither the image before the run nor the one it rolled back to: left as it is; `docker tag {} {reference}` points it back by hand",
                other.map(short).unwrap_or("nothing"),
                short(&r.displaced)
            ));
        }
    };
    // The keeping tag only untags: the image keeps `reference`.
    let keeping = format!("{}:{}", r.repo, r.keep_tag);
    match d
        .remove_image(
            &keeping,
            Some(RemoveImageOptions {
                force: false,
                noprune: true,
                platforms: None,
            }),
            None,
        )
        .await
    {
        Ok(_)
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(said),
        Err(e) => Err(format!("{said}; {keeping} stays: {}", eng(engine, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::rollback::journal::PinRecord;

    const BEFORE: &str = "# the app\nexport WEB_TAG=v2   # current\nDB_PASSWORD='s3cret'\r\n";

    fn undo_in(dir: &std::path::Path, env: &str, backup: Option<&str>) -> Result<String, String> {
        let env_path = dir.join(".env");
        let backup_path = dir.join(".env.berth-20261203T000000Z");
        std::fs::write(&env_path, env).unwrap();
        if let Some(b) = backup {
            std::fs::write(&backup_path, b).unwrap();
        }
        let u = PinUndo {
            record: PinRecord {
                env_path: env_path.display().to_string(),
                backup: backup_path.display().to_string(),
                var: "WEB_TAG".into(),
                value: "v1".into(),
            },
            files: Some(Arc::new(crate::compose::LocalFiles)),
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(undo_pin(&u))
            .map_err(|e| e.message)
    }

    #[test]
    fn a_pinned_env_is_written_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let pinned = crate::compose::dotenv::rewrite(BEFORE, "WEB_TAG", "v1").unwrap();
        let said = undo_in(dir.path(), &pinned, Some(BEFORE)).unwrap();
        assert!(said.contains("set back"), "{said}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".env")).unwrap(),
            BEFORE
        );
    }

    #[test]
    fn an_env_edited_since_the_pin_is_left_alone_with_the_way_back() {
        let dir = tempfile::tempdir().unwrap();
        let edited = "WEB_TAG=v3\n";
        let err = undo_in(dir.path(), edited, Some(BEFORE)).unwrap_err();
        assert!(err.contains("changed since the pin"), "{err}");
        assert!(err.contains("WEB_TAG=v3"), "{err}");
        assert!(err.contains("by hand"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".env")).unwrap(),
            edited
        );
    }

    #[test]
    fn a_copy_without_the_write_leaves_the_env_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Another line changed since the copy, the variable did not: the pin never wrote.
        let now = format!("{BEFORE}EXTRA=1\n");
        let said = undo_in(dir.path(), &now, Some(BEFORE)).unwrap();
        assert!(said.contains("as before the pin"), "{said}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".env")).unwrap(),
            now
        );
    }

    #[test]
    fn no_copy_means_the_pin_never_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let said = undo_in(dir.path(), BEFORE, None).unwrap();
        assert!(said.contains("not pinned yet"), "{said}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".env")).unwrap(),
            BEFORE
        );
    }

    #[test]
    fn only_the_pinned_line_goes_back_and_other_edits_stay() {
        let dir = tempfile::tempdir().unwrap();
        let pinned = crate::compose::dotenv::rewrite(BEFORE, "WEB_TAG", "v1").unwrap();
        // Someone added a variable and changed a comment after the pin.
        let edited = format!(
            "{}\nADDED_LATER=1\n",
            pinned.replace("# the app", "# the shop")
        );
        let said = undo_in(dir.path(), &edited, Some(BEFORE)).unwrap();
        assert!(said.contains("set back"), "{said}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".env")).unwrap(),
            format!(
                "{}\nADDED_LATER=1\n",
                BEFORE.replace("# the app", "# the shop")
            )
        );
    }
}
