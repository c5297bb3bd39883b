//! Saving a log file: written once, never overwritten in place, readable by its owner only.

#[test]
fn a_saved_log_is_written_once_and_never_overwritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth-web-20261124-030000.log");
    let path = crate::logs::save::save_log_file(&file, b"line 1\nline 2\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"line 1\nline 2\n");
    assert!(path.is_absolute());
    // Logs hold secrets: the saved file is the user's alone, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}
