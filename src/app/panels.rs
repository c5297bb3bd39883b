//! The panel views (engine events, the audit log, the run view): each owns its lines and its
//! scroll and handles the keys that move it; switching views is the app's.

use std::collections::VecDeque;

use super::Command;
use super::runbook::RunState;
use crate::action::EventRecord;
use crate::keymap::Intent;
use crate::runbook::AuditEntry;

/// Engine events kept for the events view.
pub const EVENTS_KEPT: usize = 1000;

/// What a panel may read while it handles a key.
pub struct PanelCtx {
    /// Rows a page holds.
    pub page: usize,
}

/// Moves `offset` over `len` lines for a scrolling key; false for any other key.
pub(super) fn scroll(offset: &mut usize, intent: Intent, len: usize, page: usize) -> bool {
    let max = len.saturating_sub(1);
    *offset = match intent {
        Intent::Up => offset.saturating_sub(1),
        Intent::Down => (*offset + 1).min(max),
        Intent::PageUp => offset.saturating_sub(page),
        Intent::PageDown => (*offset + page).min(max),
        Intent::Top => 0,
        Intent::Bottom => max,
        _ => return false,
    };
    true
}

/// The engine's events, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventsPanel {
    /// Newest first, bounded by [`EVENTS_KEPT`].
    pub records: VecDeque<EventRecord>,
    pub scroll: usize,
    /// Older events pushed out by the bound, for the view to say so.
    pub dropped: u64,
}

impl EventsPanel {
    /// Keeps `record`; while the panel is read (`showing`), the rows on screen stay still.
    pub fn push(&mut self, record: EventRecord, showing: bool) {
        if self.records.len() == EVENTS_KEPT {
            self.records.pop_back();
            self.dropped += 1;
        }
        self.records.push_front(record);
        if showing && self.scroll > 0 {
            // Keep the rows the user is reading still while new ones arrive on top.
            self.scroll += 1;
        }
    }

    pub fn handle(&mut self, intent: Intent, ctx: &PanelCtx) -> Vec<Command> {
        scroll(&mut self.scroll, intent, self.records.len(), ctx.page);
        vec![]
    }
}

/// The audit log as last read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditPanel {
    pub entries: Vec<AuditEntry>,
    pub scroll: usize,
    /// The log holds older entries than the view keeps (`berth audit -n N` prints them).
    pub older: bool,
}

/// Audit entries the console shows, the newest; the runner reads one more to know of older ones.
pub const AUDIT_SHOWN: usize = 500;

impl AuditPanel {
    pub fn handle(&mut self, intent: Intent, ctx: &PanelCtx) -> Vec<Command> {
        scroll(&mut self.scroll, intent, self.entries.len(), ctx.page);
        vec![]
    }
}

impl RunState {
    /// The run's output grows at the bottom: up goes back in time, as in a log.
    pub fn handle(&mut self, intent: Intent, ctx: &PanelCtx) -> Vec<Command> {
        let back_in_time = match intent {
            Intent::Up => Intent::Down,
            Intent::Down => Intent::Up,
            Intent::PageUp => Intent::PageDown,
            Intent::PageDown => Intent::PageUp,
            Intent::Top => Intent::Bottom,
            Intent::Bottom => Intent::Top,
            other => other,
        };
        scroll(&mut self.scroll, back_in_time, self.output.len(), ctx.page);
        vec![]
    }
}
