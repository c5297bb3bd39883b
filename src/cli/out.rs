//! Writing a run's report to the terminal: a closed pipe (`berth rollback … | head -1`) or a
//! terminal that hung up must not end berth while a run goes on. `println!` panics on EPIPE and
//! EIO, and release builds abort on a panic; these write and let an error pass.

use std::io::Write;

/// One line on stdout; a stdout that is gone is ignored.
pub fn out(args: std::fmt::Arguments) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_fmt(args).and_then(|()| o.write_all(b"\n"));
}

/// One line on stderr; a stderr that is gone is ignored.
pub fn err(args: std::fmt::Arguments) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.write_all(b"\n"));
}

/// `println!` that outlives its reader.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out::out(format_args!($($t)*)) };
}

/// `eprintln!` that outlives its reader.
macro_rules! errln {
    ($($t:tt)*) => { $crate::cli::out::err(format_args!($($t)*)) };
}

pub(crate) use {errln, outln};

/// Watches the signals that reach berth while a run goes on, for the CLI: a hung-up terminal
/// (SIGHUP) is no reason to stop, a first SIGTERM is said and waited out, and Ctrl-C or a second
/// SIGTERM cancels at the next safe point (a rollback then restores).
pub async fn watch_signals(cancel: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let mut asked = false;
    loop {
        let interrupt = tokio::select! {
            _ = hup.recv() => {
                errln!("berth: the terminal hung up: the run goes on to its end (audited, notices sent)");
                continue;
            }
            _ = term.recv() => false,
            _ = int.recv() => true,
        };
        if interrupt || asked {
            errln!("berth: cancelling…");
            cancel.cancel();
        } else {
            asked = true;
            errln!(
                "berth: SIGTERM: the run goes on to its end; send it again (or Ctrl-C) to stop at the next safe point and restore"
            );
        }
    }
}
