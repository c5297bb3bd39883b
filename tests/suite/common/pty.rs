//! The real `berth` binary in a pseudo-terminal: keys typed, the screen read back through a VT100 parser.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

use super::wait_until;

pub struct Session {
    /// The screen as a terminal that honours synchronized updates shows it: berth draws each frame
    /// between `ESC[?2026h` and `ESC[?2026l`, and a frame read half-way (a read of the pty ends
    /// anywhere) is never seen; the screen taken at the end of the last whole frame is.
    shown: Arc<Mutex<vt100::Screen>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
    /// The reader has read the last byte: the pty closed after berth exited.
    drained: Arc<std::sync::atomic::AtomicBool>,
    /// While set, nobody reads the pty: berth's writes fill it and then wait, as with a
    /// terminal stopped by XOFF or a frozen SSH to a bastion.
    paused: Arc<std::sync::atomic::AtomicBool>,
    /// Set by [`Session::hang_up`]: the reader drops its end of the pty and ends.
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// `None` once the terminal is closed.
    writer: Option<Box<dyn Write + Send>>,
    child: Box<dyn Child + Send + Sync>,
    master: Option<Box<dyn MasterPty + Send>>,
}

impl Session {
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Session {
        Session::sized(40, 160, args, envs)
    }

    pub fn sized(rows: u16, cols: u16, args: &[&str], envs: &[(&str, &str)]) -> Session {
        let size = PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        };
        let pair = native_pty_system().openpty(size).expect("a pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args);
        let home = super::fresh_home();
        // The machine's /etc/ssh/ssh_config is not the test's.
        cmd.env("BERTH_SSH_SYSTEM_CONFIG", home.join("etc_ssh_config"));
        cmd.env("HOME", home);
        cmd.env("TERM", "xterm-256color");
        for v in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_CONFIG",
            "BERTH_CONFIG",
            "BERTH_DATA_DIR",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "SSH_AUTH_SOCK",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("RUST_BACKTRACE", "0");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("berth starts");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let mut parser = vt100::Parser::new(rows, cols, 0);
        let shown = Arc::new(Mutex::new(parser.screen().clone()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let drained = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, r, d, p, c) = (
            shown.clone(),
            raw.clone(),
            drained.clone(),
            paused.clone(),
            closed.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut frames = SyncMarks::default();
            // Ends when the pty closes (the child exited and the master is dropped).
            loop {
                // Bounded by the test that paused it: it resumes or drops the session.
                while p.load(std::sync::atomic::Ordering::SeqCst)
                    && !c.load(std::sync::atomic::Ordering::SeqCst)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(n) = reader.read(&mut buf) else {
                    break;
                };
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                let mut from = 0;
                for (at, begins) in frames.scan(chunk) {
                    parser.process(&chunk[from..at]);
                    from = at;
                    if !begins {
                        *s.lock().unwrap() = parser.screen().clone();
                    }
                }
                parser.process(&chunk[from..]);
                if !frames.inside {
                    *s.lock().unwrap() = parser.screen().clone();
                }
                r.lock().unwrap().extend_from_slice(chunk);
            }
            // The reader's descriptor of the pty closes here, before the news that it did.
            drop(reader);
            d.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Session {
            shown,
            raw,
            drained,
            paused,
            closed,
            writer: Some(writer),
            child,
            master: Some(pair.master),
        }
    }

    /// Closes the terminal as a closed window or a dropped SSH to a bastion does: every
    /// descriptor of the pty's master side is closed, so the kernel hangs the terminal up (SIGHUP
    /// to berth, its session leader; its reads and writes fail). berth itself is not touched.
    /// The reader lets go of its descriptor after its next read returns (berth draws every
    /// second); true once it has (bounded: 10 s).
    pub fn hang_up(&mut self) -> bool {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        // The writer, dropped, types a newline and the EOF character for the child (portable_pty
        // does so to end a shell's input): a terminal that goes away types nothing.
        if let Some(fd) = self.master.as_ref().and_then(|m| m.as_raw_fd()) {
            // SAFETY: termios of a descriptor this session owns, read then written whole.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut t) == 0 {
                    t.c_cc[libc::VEOF] = 0;
                    libc::tcsetattr(fd, libc::TCSANOW, &t);
                }
            }
        }
        self.writer = None;
        self.master = None;
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            self.drained.load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// Stops reading the pty (see `paused`) until [`Session::resume_reading`].
    pub fn pause_reading(&self) {
        self.paused.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn resume_reading(&self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn text(&self) -> String {
        self.shown.lock().unwrap().contents()
    }

    pub fn wait_for(&self, needle: &str, within: Duration) -> bool {
        wait_until(within, Duration::from_millis(50), || {
            self.text().contains(needle)
        })
    }

    /// Fails the test, showing the screen, unless `needle` is on it within `within`.
    #[track_caller]
    pub fn expect(&self, needle: &str, within: Duration) {
        assert!(self.wait_for(needle, within), "{}", self.text());
    }

    /// Types `q` and fails the test unless berth exits with success within 10 s.
    #[track_caller]
    pub fn quit_ok(&mut self) {
        self.type_keys("q");
        assert!(
            self.wait_exit(Duration::from_secs(10))
                .is_some_and(|st| st.success())
        );
    }

    /// Everything berth wrote to the terminal, once it has exited and the reader has read the
    /// last byte (bounded: 5 s). Read right after the exit, the last writes (leaving the
    /// alternate screen) may still be in the pty.
    pub fn raw_after_exit(&self) -> String {
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            self.drained.load(std::sync::atomic::Ordering::SeqCst)
        });
        String::from_utf8_lossy(&self.raw.lock().unwrap()).to_string()
    }

    pub fn type_keys(&mut self, keys: &str) {
        let writer = self.writer.as_mut().expect("the terminal is open");
        writer.write_all(keys.as_bytes()).unwrap();
        writer.flush().unwrap();
    }

    /// The berth process's id, for measuring it from outside.
    pub fn pid(&self) -> Option<u32> {
        self.child.process_id()
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<portable_pty::ExitStatus> {
        let mut status = None;
        wait_until(within, Duration::from_millis(50), || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.resume_reading();
        let _ = self.child.kill();
    }
}

/// Finds the synchronized-update marks (`ESC[?2026h` begins a frame, `ESC[?2026l` ends it) in the
/// pty's bytes, also when a mark is split between two reads.
#[derive(Default)]
struct SyncMarks {
    /// How many bytes of `ESC[?2026` the last bytes matched.
    matched: usize,
    /// Inside a frame: between a begin and its end.
    inside: bool,
}

impl SyncMarks {
    const PREFIX: &'static [u8] = b"\x1b[?2026";

    /// Each mark that ends in `chunk`: the offset just after it, and whether it begins a frame.
    fn scan(&mut self, chunk: &[u8]) -> Vec<(usize, bool)> {
        let mut marks = Vec::new();
        for (i, &b) in chunk.iter().enumerate() {
            if self.matched == Self::PREFIX.len() {
                self.matched = 0;
                if b == b'h' || b == b'l' {
                    self.inside = b == b'h';
                    marks.push((i + 1, self.inside));
                    continue;
                }
            }
            if b == Self::PREFIX[self.matched] {
                self.matched += 1;
            } else {
                self.matched = usize::from(b == Self::PREFIX[0]);
            }
        }
        marks
    }
}

#[test]
fn sync_marks_are_found_across_reads() {
    let mut m = SyncMarks::default();
    assert_eq!(m.scan(b"ab\x1b[?2026hxy\x1b[?20"), vec![(10, true)]);
    assert!(m.inside);
    assert_eq!(m.scan(b"26lz\x1b[?2026"), vec![(3, false)]);
    assert!(!m.inside);
    assert_eq!(m.scan(b"h"), vec![(1, true)]);
    assert_eq!(m.scan(b"\x1b\x1b[?2026l"), vec![(9, false)]);
    assert_eq!(m.scan(b"\x1b[?2025l\x1b[?2026x"), vec![]);
    assert!(!m.inside);
}
