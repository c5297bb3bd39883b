//! What the header says of the link to the server ([`LinkStatus`]), and one keepalive's round
//! trip. The session's supervisor (`session.rs`, `supervise`) keeps it true: a link that stops
//! answering is reported within the keepalive interval, dropped after `ServerAliveCountMax` of
//! them, and re-established in the background.

use std::time::{Duration, Instant};

use super::SshError;
use super::hostkey::ClientHandle;

/// A keepalive unanswered this long marks the link `Unanswered` even when the interval is longer:
/// a healthy answer takes milliseconds.
pub(super) const UNANSWERED_AFTER: Duration = Duration::from_secs(2);

/// The state of the link to the server, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    Connecting,
    Connected {
        rtt: Duration,
    },
    Reconnecting {
        attempt: u32,
        last_error: String,
    },
    /// A keepalive is out and the server has not answered for `silent`: the link may be frozen
    /// (TCP open, peer stopped). What was read over it is no longer known to be true.
    Unanswered {
        silent: Duration,
    },
    /// Given up: the host key changed, authentication fails, … Only a new `connect` helps.
    Failed {
        error: String,
    },
}

pub(super) async fn ping_handle(h: &ClientHandle, limit: Duration) -> Result<Duration, SshError> {
    let start = Instant::now();
    match tokio::time::timeout(limit, h.send_ping()).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(SshError::Other(format!("keepalive failed: {e}"))),
        Err(_) => Err(SshError::Timeout {
            what: "keepalive".into(),
            secs: limit.as_secs(),
        }),
    }
}

impl LinkStatus {
    /// Whether what was read over the link can still be taken as current.
    pub fn is_fresh(&self) -> bool {
        matches!(self, LinkStatus::Connected { .. })
    }
}
