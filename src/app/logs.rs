//! The log view's state and how keys and stream events change it. The stream itself runs in a task
//! the runner starts for `Command::OpenLogs`; its events come back as `Action::Logs`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent};

use super::{App, Command, Input, Overlay, View, is_ctrl_c, new_input};
use crate::action::Level;
use crate::engine::model::Container;
use crate::format::printable;
use crate::keymap::Intent;
use crate::logs::sanitize::MAX_LINE_BYTES;
use crate::logs::stream::{LogOptions, Tail};
use crate::logs::{
    LineFilter, LogBuffer, LogEvent, LogSource, Pattern, SourceStatus, parse_since, sources_for,
};

/// Columns one sideways step moves (wrap off).
const H_STEP: usize = 8;

/// A log view: one container, a service's replicas, or a project.
#[derive(Debug, Clone)]
pub struct LogView {
    /// Tells this view's stream events from an earlier view's.
    pub id: u64,
    pub title: String,
    pub sources: Vec<LogSource>,
    pub buffer: LogBuffer,
    /// New lines scroll into view; off once the user scrolls up.
    pub follow: bool,
    /// While paused: the sequence number of the top line and of the selected line.
    pub top: u64,
    pub cursor: u64,
    /// Lines that arrived since the view paused.
    pub paused_at: u64,
    pub wrap: bool,
    /// Columns of every line scrolled out on the left (wrap off only).
    pub h_offset: usize,
    pub timestamps: bool,
    pub utc: bool,
    pub ignore_case: bool,
    pub search: Option<Pattern>,
    pub since: Option<DateTime<Utc>>,
    /// The last status of each source (streaming, reconnecting, removed …).
    pub statuses: Vec<SourceStatus>,
    pub ended: bool,
    /// The view Esc goes back to (the list, the swarm view, …).
    pub back_to: View,
}

impl LogView {
    /// Selected line: the newest while following.
    pub fn cursor_seq(&self) -> Option<u64> {
        if self.follow {
            self.buffer.seq_at(self.buffer.len().checked_sub(1)?)
        } else {
            Some(self.cursor)
        }
    }

    pub fn new_lines(&self) -> u64 {
        if self.follow {
            0
        } else {
            self.buffer.next_seq().saturating_sub(self.paused_at)
        }
    }

    /// What the sources are doing, when it is worth a line: reconnecting, stopped, removed.
    pub fn status_line(&self) -> Option<String> {
        let notes: Vec<String> = self
            .statuses
            .iter()
            .zip(&self.sources)
            .filter(|(s, _)| {
                !matches!(
                    s,
                    SourceStatus::Streaming | SourceStatus::Done | SourceStatus::Resumed { .. }
                )
            })
            .map(|(s, src)| {
                if self.sources.len() > 1 {
                    format!("{}: {s}", src.prefix)
                } else {
                    s.to_string()
                }
            })
            .collect();
        (!notes.is_empty()).then(|| notes.join(" · "))
    }

    /// The try of the stream that has been reconnecting longest (the highest), if one is.
    pub fn reconnect_try(&self) -> Option<u32> {
        self.statuses
            .iter()
            .filter_map(|s| match s {
                SourceStatus::Reconnecting { attempt, .. } => Some((*attempt).max(1)),
                _ => None,
            })
            .max()
    }

    /// Lines delivered after the last reconnect(s), while the title says so.
    pub fn resumed(&self) -> Option<u64> {
        let mut caught_up = None;
        for s in &self.statuses {
            if let SourceStatus::Resumed { caught_up: n } = s {
                *caught_up.get_or_insert(0) += n;
            }
        }
        caught_up
    }

    /// After a filter changes what is shown, a paused view moves to the nearest shown line at or
    /// before its selection and fills the screen from there, so the matches are on screen — never
    /// one match followed by empty rows.
    fn reanchor(&mut self, page: usize) {
        if self.follow || self.buffer.is_empty() {
            return;
        }
        let n = self.buffer.len();
        let at = self.buffer.index_of(self.cursor);
        // index_of finds the first shown line at or after the cursor; prefer the one before it.
        let ci = if self.buffer.seq_at(at) == Some(self.cursor) {
            at
        } else {
            at.saturating_sub(1)
        }
        .min(n - 1);
        self.cursor = self.buffer.seq_at(ci).unwrap_or(self.cursor);
        let page = page.max(1);
        let ti = ci.saturating_sub(page / 2).min(n.saturating_sub(page));
        self.top = self.buffer.seq_at(ti).unwrap_or(self.cursor);
    }

    fn pause(&mut self) {
        if self.follow {
            self.follow = false;
            self.paused_at = self.buffer.next_seq();
            let last = self.buffer.len().saturating_sub(1);
            self.cursor = self.buffer.seq_at(last).unwrap_or(0);
        }
    }

    fn cursor_index(&self) -> usize {
        self.buffer.index_of(self.cursor)
    }

    /// Moves the selection by `delta` shown lines and keeps it on a `page`-row screen.
    fn move_cursor(&mut self, delta: isize, page: usize) {
        if self.buffer.is_empty() {
            return;
        }
        self.pause();
        let max = self.buffer.len() - 1;
        let i = (self.cursor_index() as isize + delta).clamp(0, max as isize) as usize;
        self.cursor = self.buffer.seq_at(i).unwrap_or(self.cursor);
        self.keep_cursor_visible(page);
    }

    fn keep_cursor_visible(&mut self, page: usize) {
        let ci = self.cursor_index();
        let mut ti = self.buffer.index_of(self.top);
        if ci < ti {
            ti = ci;
        } else if ci >= ti + page.max(1) {
            ti = ci + 1 - page.max(1);
        }
        self.top = self.buffer.seq_at(ti).unwrap_or(self.cursor);
    }

    fn resume(&mut self) {
        self.follow = true;
    }

    fn pattern(&self, text: &str) -> Result<Pattern, String> {
        Pattern::new(text, self.ignore_case)
    }
}

/// What the one-line input at the bottom of a log view is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogInputKind {
    Search,
    Filter,
}

#[derive(Debug, Clone)]
pub struct LogInput {
    pub kind: LogInputKind,
    pub input: Input,
}

/// What a key did to a log view, for `App` to finish: a footer line to show, a line to copy, or
/// nothing of the view's own (`NotMine`: closing it, overlays, other views are the app's).
#[derive(Debug, Clone, PartialEq)]
pub enum LogStep {
    Done,
    Say(Level, String),
    Copy(String),
    NotMine,
}

impl LogView {
    /// The log view's own keys: moving, follow, wrap, sideways, timestamps, case, invert, the
    /// next/previous match, copy. `page` is the rows of lines on screen.
    pub fn handle(&mut self, intent: Intent, page: usize) -> LogStep {
        let say = |level, text: &str| LogStep::Say(level, text.to_string());
        match intent {
            Intent::Back if self.buffer.filter().is_some() => {
                self.buffer.set_filter(None);
                self.reanchor(page);
                return say(Level::Info, "filter cleared");
            }
            Intent::Back if self.search.is_some() => self.search = None,
            Intent::Up => self.move_cursor(-1, page),
            Intent::Down => self.move_cursor(1, page),
            Intent::PageUp => self.move_cursor(-(page as isize), page),
            Intent::PageDown => self.move_cursor(page as isize, page),
            Intent::Top => self.move_cursor(isize::MIN / 2, page),
            Intent::Bottom => self.resume(),
            Intent::LogFollow => {
                if self.follow {
                    self.pause();
                    self.keep_cursor_visible(page);
                } else {
                    self.resume();
                }
            }
            Intent::LogWrap => {
                self.wrap = !self.wrap;
                self.h_offset = 0;
            }
            Intent::LogLeft => self.h_offset = self.h_offset.saturating_sub(H_STEP),
            Intent::LogRight if self.wrap => {
                return say(
                    Level::Info,
                    "lines wrap: w turns wrap off to scroll sideways",
                );
            }
            // Bounded by the longest line a view keeps (64 KiB).
            Intent::LogRight => self.h_offset = (self.h_offset + H_STEP).min(MAX_LINE_BYTES),
            Intent::LogTimestamps => self.timestamps = !self.timestamps,
            Intent::LogUtc => {
                self.utc = !self.utc;
                self.timestamps = true;
                let zone = if self.utc { "UTC" } else { "local time" };
                return LogStep::Say(Level::Info, format!("timestamps in {zone}"));
            }
            Intent::LogCase => return self.toggle_case(page),
            Intent::LogInvert => match self.buffer.filter().cloned() {
                Some(mut f) => {
                    f.invert = !f.invert;
                    self.buffer.set_filter(Some(f));
                    self.reanchor(page);
                }
                None => return say(Level::Info, "no filter to invert (F sets one)"),
            },
            Intent::LogNext | Intent::LogPrev => {
                return self.jump_to_match(intent == Intent::LogNext, page);
            }
            Intent::LogCopy => {
                return match self.cursor_seq().and_then(|s| self.buffer.by_seq(s)) {
                    Some(l) => LogStep::Copy(l.text.to_string()),
                    None => say(Level::Info, "nothing to copy"),
                };
            }
            _ => return LogStep::NotMine,
        }
        LogStep::Done
    }

    /// Case-insensitive matching on or off, for the search and the filter alike.
    fn toggle_case(&mut self, page: usize) -> LogStep {
        self.ignore_case = !self.ignore_case;
        let mut err = None;
        if let Some(s) = &self.search {
            match self.pattern(&s.text.clone()) {
                Ok(p) => self.search = Some(p),
                Err(e) => err = Some(e),
            }
        }
        if let Some(f) = self.buffer.filter().cloned() {
            match self.pattern(&f.pattern.text) {
                Ok(p) => {
                    self.buffer.set_filter(Some(LineFilter {
                        pattern: p,
                        invert: f.invert,
                    }));
                    self.reanchor(page);
                }
                Err(e) => err = Some(e),
            }
        }
        match err {
            Some(e) => LogStep::Say(Level::Error, e),
            None if self.ignore_case => LogStep::Say(Level::Info, "ignoring case".into()),
            None => LogStep::Say(Level::Info, "matching case".into()),
        }
    }

    /// The next (or previous) line the search matches, going on from the other end past the last.
    fn jump_to_match(&mut self, forward: bool, page: usize) -> LogStep {
        let Some(p) = self.search.clone() else {
            return LogStep::Say(Level::Info, "no search (/ starts one)".into());
        };
        let from = match self.cursor_seq() {
            Some(seq) => self.buffer.index_of(seq),
            None => 0,
        };
        match self.buffer.find(&p, from, forward) {
            Some(i) => {
                self.pause();
                self.cursor = self.buffer.seq_at(i).unwrap_or(self.cursor);
                self.keep_cursor_visible(page);
                // Past the last match the search goes on from the other end: say so, or the jump
                // reads as a match that was not there.
                if (forward && i <= from) || (!forward && i >= from) {
                    return LogStep::Say(Level::Info, format!("search wrapped: /{}/", p.text));
                }
                LogStep::Done
            }
            None => LogStep::Say(Level::Warn, format!("no match for /{}/", p.text)),
        }
    }
}

/// An engine's error text reaches the terminal: control characters out, once, as it arrives.
fn printable_status(status: SourceStatus) -> SourceStatus {
    match status {
        SourceStatus::Reconnecting { attempt, error } => SourceStatus::Reconnecting {
            attempt,
            error: printable(&error),
        },
        SourceStatus::Failed(e) => SourceStatus::Failed(printable(&e)),
        s => s,
    }
}

impl App {
    /// Opens a log view of these containers and asks the runner to stream them.
    pub fn open_logs(&mut self, title: String, ids: Vec<String>) -> Vec<Command> {
        let chosen: Vec<&Container> = ids
            .iter()
            .filter_map(|id| self.containers.get(id))
            .collect();
        let mut sources = sources_for(&chosen);
        // Containers the list does not know yet still stream, under their id.
        for id in &ids {
            if !sources.iter().any(|s| &s.id == id) {
                sources.push(LogSource {
                    id: id.clone(),
                    name: id.clone(),
                    prefix: crate::engine::model::short_id(id).to_string(),
                });
            }
        }
        self.open_log_sources(title, sources)
    }

    /// Opens a log view on these sources (containers, or swarm tasks through the manager); Esc
    /// goes back to the view it was opened from.
    pub(super) fn open_log_sources(
        &mut self,
        title: String,
        mut sources: Vec<LogSource>,
    ) -> Vec<Command> {
        // Labels come from the engine and reach the terminal: cleaned once, here, not per frame.
        let title = printable(&title);
        for s in &mut sources {
            s.name = printable(&s.name);
            s.prefix = printable(&s.prefix);
        }
        let previous = self.logs.take();
        let back_to = match self.view {
            View::Logs => previous.as_ref().map_or(View::Containers, |p| p.back_to),
            other => other,
        };
        self.log_views += 1;
        let cfg = &self.config.logs;
        let mut view = LogView {
            id: self.log_views,
            title,
            statuses: vec![SourceStatus::Streaming; sources.len()],
            sources,
            buffer: LogBuffer::with_limits(cfg.max_lines, cfg.max_bytes),
            follow: true,
            top: 0,
            cursor: 0,
            paused_at: 0,
            wrap: cfg.wrap,
            h_offset: 0,
            timestamps: cfg.timestamps,
            utc: cfg.utc,
            ignore_case: true,
            search: None,
            since: None,
            ended: false,
            back_to,
        };
        // Reopening the same containers (`:since`) keeps the view's settings.
        if let Some(p) = previous
            && p.sources
                .iter()
                .map(|s| &s.id)
                .eq(view.sources.iter().map(|s| &s.id))
        {
            view.wrap = p.wrap;
            view.timestamps = p.timestamps;
            view.utc = p.utc;
            view.ignore_case = p.ignore_case;
            view.search = p.search;
            view.since = p.since;
            if let Some(f) = p.buffer.filter() {
                view.buffer.set_filter(Some(f.clone()));
            }
        }
        let options = LogOptions {
            follow: true,
            tail: if view.since.is_some() {
                Tail::All
            } else {
                Tail::Lines(cfg.tail)
            },
            since: view.since,
            ..LogOptions::default()
        };
        let command = Command::OpenLogs {
            ids: view.sources.iter().map(|s| s.id.clone()).collect(),
            view: view.id,
            options,
        };
        self.logs = Some(view);
        self.view = View::Logs;
        self.overlay = Overlay::None;
        vec![command]
    }

    pub(super) fn close_logs(&mut self) -> Vec<Command> {
        self.view = self.logs.take().map_or(View::Containers, |v| v.back_to);
        if matches!(self.overlay, Overlay::LogInput(_)) {
            self.overlay = Overlay::None;
        }
        vec![Command::CloseLogs]
    }

    pub(super) fn on_log_event(&mut self, view: u64, event: LogEvent) -> Vec<Command> {
        let Some(v) = self.logs.as_mut().filter(|v| v.id == view) else {
            return vec![];
        };
        match event {
            LogEvent::Lines(lines) => v.buffer.extend(lines),
            LogEvent::Status { source, status } => {
                if let Some(s) = v.statuses.get_mut(source as usize) {
                    *s = printable_status(status);
                }
            }
            LogEvent::Ended => v.ended = true,
        }
        vec![]
    }

    /// Rows of log lines on screen (the body less its border).
    pub fn log_page(&self) -> usize {
        (self.areas().body.height as usize).saturating_sub(3).max(1)
    }

    pub(super) fn on_logs_intent(&mut self, intent: Intent) -> Vec<Command> {
        let page = self.log_page();
        let Some(v) = self.logs.as_mut() else {
            return self.close_logs();
        };
        match v.handle(intent, page) {
            LogStep::Done => return vec![],
            LogStep::Say(level, text) => {
                self.notify(level, text);
                return vec![];
            }
            LogStep::Copy(text) => {
                self.notify(
                    Level::Info,
                    format!("copied {} characters (OSC 52)", text.chars().count()),
                );
                return vec![Command::Copy(text)];
            }
            LogStep::NotMine => {}
        }
        match intent {
            Intent::Back => return self.close_logs(),
            Intent::LogSearch | Intent::LogFilter => {
                let kind = if intent == Intent::LogSearch {
                    LogInputKind::Search
                } else {
                    LogInputKind::Filter
                };
                let mut input = new_input();
                let current = match kind {
                    LogInputKind::Search => v.search.as_ref().map(|p| p.text.clone()),
                    LogInputKind::Filter => v
                        .buffer
                        .filter()
                        .map(|f| format!("{}{}", if f.invert { "!" } else { "" }, f.pattern.text)),
                };
                if let Some(t) = current {
                    input.insert_str(t);
                }
                self.overlay = Overlay::LogInput(LogInput { kind, input });
            }
            Intent::LogSave => return self.save_logs(),
            Intent::LogSaveAll => return self.save_all_logs(),
            Intent::Quit => self.quit(),
            Intent::Help => self.overlay = Overlay::Help { scroll: 0 },
            Intent::Palette => self.open_palette(""),
            Intent::ServerPicker => return self.open_picker(),
            Intent::Events => {
                let cmds = self.close_logs();
                self.view = View::Events;
                self.events.scroll = 0;
                return cmds;
            }
            Intent::Audit => {
                let mut cmds = self.close_logs();
                cmds.push(Command::LoadAudit);
                return cmds;
            }
            Intent::RunView if self.run.is_some() => {
                let cmds = self.close_logs();
                self.view = View::Runbook;
                return cmds;
            }
            Intent::Refresh => return vec![Command::Resync],
            Intent::Host => {
                let mut cmds = self.close_logs();
                cmds.extend(self.open_host_view());
                return cmds;
            }
            _ => {}
        }
        vec![]
    }

    /// The wheel scrolls the log (up pauses, as a key would).
    pub(super) fn on_logs_mouse(&mut self, m: crossterm::event::MouseEvent) -> Vec<Command> {
        use crossterm::event::MouseEventKind;
        let page = self.log_page();
        if let Some(v) = self.logs.as_mut() {
            match m.kind {
                MouseEventKind::ScrollUp => v.move_cursor(-3, page),
                MouseEventKind::ScrollDown if !v.follow => v.move_cursor(3, page),
                _ => {}
            }
        }
        vec![]
    }

    /// Applies typed search or filter text. `Ok` text is kept; a bad regex is one line and the view
    /// stays as it was.
    pub(super) fn on_log_input_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let page = self.log_page();
        let Overlay::LogInput(li) = &mut self.overlay else {
            return vec![];
        };
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Enter => {
                let text = li.input.lines().join("");
                let kind = li.kind;
                self.overlay = Overlay::None;
                match kind {
                    LogInputKind::Search => return self.log_search(&text, page),
                    LogInputKind::Filter => self.log_filter(&text, page),
                }
            }
            _ => {
                if is_ctrl_c(&key) {
                    self.should_quit = true;
                    return vec![];
                }
                li.input.input(key);
            }
        }
        vec![]
    }

    fn log_search(&mut self, text: &str, page: usize) -> Vec<Command> {
        let Some(v) = self.logs.as_mut() else {
            return vec![];
        };
        if text.is_empty() {
            v.search = None;
            return vec![];
        }
        match v.pattern(text) {
            Ok(p) => {
                v.search = Some(p);
                // The first match at or before the selection, searching back as in a log.
                let from = v.cursor_seq().map(|s| v.buffer.index_of(s)).unwrap_or(0);
                let pattern = v.search.as_ref().expect("just set");
                let found = if v.buffer.get(from).is_some_and(|l| pattern.is_match(l)) {
                    Some(from)
                } else {
                    v.buffer.find(pattern, from, false)
                };
                match found {
                    Some(i) => {
                        v.pause();
                        v.cursor = v.buffer.seq_at(i).unwrap_or(v.cursor);
                        v.keep_cursor_visible(page);
                        if i > from {
                            self.notify(Level::Info, format!("search wrapped: /{text}/"));
                        }
                    }
                    None => self.notify(Level::Warn, format!("no match for /{text}/")),
                }
            }
            Err(e) => self.notify(Level::Error, e),
        }
        vec![]
    }

    /// `text` filters the view; `!text` shows the lines that do not match; empty clears.
    pub fn log_filter(&mut self, text: &str, page: usize) {
        let Some(v) = self.logs.as_mut() else {
            self.notify(Level::Warn, "open a log view first");
            return;
        };
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if pattern.is_empty() {
            v.buffer.set_filter(None);
            v.reanchor(page);
            return;
        }
        match v.pattern(pattern) {
            Ok(p) => {
                v.buffer.set_filter(Some(LineFilter { pattern: p, invert }));
                v.reanchor(page);
                let n = v.buffer.len();
                self.notify(Level::Info, format!("filter: {n} lines shown"));
            }
            Err(e) => self.notify(Level::Error, e),
        }
    }

    /// `:since VALUE` in a log view: reopen from that time. Bad input changes nothing.
    pub fn log_since(&mut self, text: &str) -> Vec<Command> {
        let Some(v) = &self.logs else {
            self.notify(Level::Warn, "open a log view first (L on a container)");
            return vec![];
        };
        let since = if text.trim().is_empty() || text.trim() == "all" {
            None
        } else {
            match parse_since(text, self.now) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.notify(Level::Error, e);
                    return vec![];
                }
            }
        };
        let (title, ids) = (
            v.title.clone(),
            v.sources.iter().map(|s| s.id.clone()).collect(),
        );
        if let Some(v) = self.logs.as_mut() {
            v.since = since;
        }
        let cmds = self.open_logs(title, ids);
        let msg = match since {
            Some(s) => format!("logs since {}", s.format("%Y-%m-%d %H:%M:%S UTC")),
            None => "logs from the last lines again".to_string(),
        };
        self.notify(Level::Info, msg);
        cmds
    }

    /// `:save-all`: the view's range read again into a file, every line, whatever the view kept.
    fn save_all_logs(&mut self) -> Vec<Command> {
        let Some(v) = &self.logs else {
            return vec![];
        };
        let options = LogOptions {
            follow: false,
            tail: if v.since.is_some() {
                Tail::All
            } else {
                Tail::Lines(self.config.logs.tail)
            },
            since: v.since,
            ..LogOptions::default()
        };
        let file = PathBuf::from(format!(
            "berth-{}-all-{}.log",
            file_safe(&v.title),
            self.now.format("%Y%m%d-%H%M%S")
        ));
        let command = Command::SaveAllLogs {
            file: file.clone(),
            ids: v.sources.iter().map(|s| s.id.clone()).collect(),
            sources: v.sources.clone(),
            options,
        };
        self.notify(
            Level::Info,
            format!("writing every line of the range to {} …", file.display()),
        );
        vec![command]
    }

    fn save_logs(&mut self) -> Vec<Command> {
        let Some(v) = &self.logs else {
            return vec![];
        };
        let safe: String = v
            .title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let file = format!("berth-{safe}-{}.log", self.now.format("%Y%m%d-%H%M%S"));
        vec![Command::SaveLogs {
            file: PathBuf::from(file),
            lines: v.buffer.all().cloned().collect(),
            sources: v.sources.clone(),
            timestamps: true,
        }]
    }
}

/// A view's title as part of a file name.
fn file_safe(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
