//! The runner's timeline command: the current server's timeline built off the loop.

use super::runner::Runner;
use crate::action::Action;
use crate::runbook::AuditLog;
use crate::timeline::{collect, history::History};

/// The console's window: the last day.
const CONSOLE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

impl Runner {
    /// `Command::LoadTimeline`.
    pub(super) fn load_timeline(&mut self, session: u64, names: Vec<String>) {
        let Some(engine) = self.engine_or_say("not connected") else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let request = collect::Request {
                since: Some(chrono::Utc::now() - CONSOLE_WINDOW),
                names,
            };
            let history = History::for_server(&engine.target.name);
            let result = collect::timeline(&engine, &AuditLog::from_env(), &history, &request)
                .await
                .map(Box::new);
            let _ = tx.send(Action::Timeline { session, result }).await;
        });
    }
}
