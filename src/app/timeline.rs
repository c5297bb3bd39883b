//! The timeline view's state: the lines of the last timeline built, its scroll, and the keys
//! that move it. Building it is the runner's (`Command::LoadTimeline`).

use super::panels::{PanelCtx, scroll};
use super::{App, Command, Level, View};
use crate::keymap::Intent;
use crate::timeline::Timeline;
use crate::timeline::render::{self, Line};

#[derive(Debug, Clone, Default)]
pub struct TimelinePanel {
    /// The timeline as text lines, oldest first (a postmortem reads forward in time).
    pub lines: Vec<Line>,
    /// The names it was built for (empty: the whole server).
    pub names: Vec<String>,
    pub scroll: usize,
    /// Asked for and not answered yet.
    pub loading: bool,
}

impl TimelinePanel {
    pub fn handle(&mut self, intent: Intent, ctx: &PanelCtx) -> Vec<Command> {
        scroll(&mut self.scroll, intent, self.lines.len(), ctx.page);
        vec![]
    }
}

impl App {
    /// `I` or `:timeline [NAME…]`: build it (the view opens when it arrives).
    pub(super) fn open_timeline(&mut self, names: Vec<String>) -> Vec<Command> {
        self.timeline.loading = true;
        self.timeline.names = names.clone();
        self.notify(Level::Info, "building the timeline …");
        vec![Command::LoadTimeline(names)]
    }

    /// `Action::Timeline`: show it from its end, where the latest happened.
    pub(super) fn on_timeline(
        &mut self,
        session: u64,
        result: Result<Box<Timeline>, String>,
    ) -> Vec<Command> {
        if session != self.session {
            return vec![];
        }
        self.timeline.loading = false;
        match result {
            Ok(t) => {
                self.timeline.lines = render::lines(&t);
                let page = self.areas().list_rows.max(1);
                self.timeline.scroll = self.timeline.lines.len().saturating_sub(page);
                self.view = View::Timeline;
                self.status = None;
            }
            Err(e) => self.notify(Level::Error, format!("timeline: {e}")),
        }
        vec![]
    }
}
