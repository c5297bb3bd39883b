//! The container list: its rows (grouped, sorted, filtered, folded), the selection, the details
//! pane beside it, and the keys and clicks that move them.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::layout::{self, Areas, Screen};
use super::{App, Command, Overlay, is_ctrl_c};
use crate::action::Level;
use crate::engine::model::{Container, Health, State, mask_env};
use crate::grouping::{Filter, SortKey, group_key, grouped};
use crate::keymap::{Intent, Keymap};
use crate::theme::Theme;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Group {
        key: String,
        total: usize,
        running: usize,
        unhealthy: usize,
        collapsed: bool,
    },
    Container {
        id: String,
    },
}

impl Row {
    fn key(&self) -> RowKey {
        match self {
            Row::Group { key, .. } => RowKey::Group(key.clone()),
            Row::Container { id } => RowKey::Container(id.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RowKey {
    Group(String),
    Container(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Details,
}

/// What the list may read of the rest of the app while it handles a key.
pub struct ListCtx<'a> {
    pub containers: &'a BTreeMap<String, Container>,
    /// The compose files read so far: the details pane's drift line.
    pub compose: &'a super::drift::ComposeFiles,
    pub now: DateTime<Utc>,
    pub theme: &'a Theme,
    pub keymap: &'a Keymap,
    /// The screen and what else takes rows of it: the list's page and the details pane follow.
    pub screen: Screen,
}

/// A footer message the list wants shown; `App` shows it after the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: Level,
    pub text: String,
    /// The container it is about: it goes when another row is selected.
    pub about: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ListView {
    pub rows: Vec<Row>,
    pub selected: usize,
    pub offset: usize,
    pub show_all: bool,
    pub sort: SortKey,
    pub filter: Option<Filter>,
    pub collapsed: HashSet<String>,
    pub details_open: bool,
    pub details_scroll: u16,
    /// The one container whose secret environment values are shown.
    pub revealed: Option<String>,
    pub focus: Focus,
    /// Footer messages of the last call, taken by `App`.
    pub(super) notices: Vec<Notice>,
    /// The container selected after each change of selection in the last call (a footer message
    /// about another one goes), taken by `App`.
    pub(super) reselected: Vec<Option<String>>,
}

impl Default for ListView {
    fn default() -> Self {
        ListView {
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            show_all: true,
            sort: SortKey::Name,
            filter: None,
            collapsed: HashSet::new(),
            details_open: false,
            details_scroll: 0,
            revealed: None,
            focus: Focus::List,
            notices: Vec::new(),
            reselected: Vec::new(),
        }
    }
}

impl ListView {
    pub fn selected_container<'c>(
        &self,
        containers: &'c BTreeMap<String, Container>,
    ) -> Option<&'c Container> {
        match self.rows.get(self.selected)? {
            Row::Container { id } => containers.get(id),
            Row::Group { .. } => None,
        }
    }

    /// Where things are on screen with the list as it is now.
    pub fn areas(&self, ctx: &ListCtx) -> Areas {
        let details = self.details_open && self.selected_container(ctx.containers).is_some();
        layout::arrange(ctx.screen, details)
    }

    fn in_details(&self) -> bool {
        self.focus == Focus::Details && self.details_open
    }

    fn notify(&mut self, level: Level, text: impl Into<String>, about: Option<&str>) {
        self.notices.push(Notice {
            level,
            text: text.into(),
            about: about.map(str::to_string),
        });
    }

    /// The list's own keys: moving, folding, sorting, the details pane and its secrets.
    pub fn handle(&mut self, intent: Intent, ctx: &ListCtx) -> Vec<Command> {
        let page = self.areas(ctx).list_rows.max(1);
        let in_details = self.in_details();
        match intent {
            Intent::Back => {
                if in_details || self.details_open {
                    self.details_open = false;
                    self.focus = Focus::List;
                } else if self.filter.is_some() {
                    self.filter = None;
                    self.rebuild(ctx);
                }
            }
            Intent::Up if in_details => self.details_scroll = self.details_scroll.saturating_sub(1),
            Intent::Down if in_details => self.scroll_details(1, ctx),
            Intent::PageUp if in_details => {
                self.details_scroll = self.details_scroll.saturating_sub(page as u16)
            }
            Intent::PageDown if in_details => self.scroll_details(page as i32, ctx),
            Intent::Top if in_details => self.details_scroll = 0,
            Intent::Bottom if in_details => self.details_scroll = self.details_max(ctx),
            Intent::Up => self.move_selection(-1, ctx),
            Intent::Down => self.move_selection(1, ctx),
            Intent::PageUp => self.move_selection(-(page as isize), ctx),
            Intent::PageDown => self.move_selection(page as isize, ctx),
            Intent::Top => self.select_index(0, ctx),
            Intent::Bottom => self.select_index(self.rows.len().saturating_sub(1), ctx),
            Intent::ToggleAll => {
                self.show_all = !self.show_all;
                self.rebuild(ctx);
                let said = if self.show_all {
                    "showing all containers"
                } else {
                    "hiding stopped containers"
                };
                self.notify(Level::Info, said, None);
            }
            Intent::Sort => {
                self.sort = self.sort.next();
                self.rebuild(ctx);
                let said = format!("sorted by {}", self.sort.label());
                self.notify(Level::Info, said, None);
            }
            Intent::Collapse => self.fold_selected(ctx),
            Intent::Details => {
                if let Some(Row::Group { .. }) = self.rows.get(self.selected) {
                    self.fold_selected(ctx);
                } else if self.selected_container(ctx.containers).is_some() {
                    if self.details_open {
                        self.focus = Focus::Details;
                    } else {
                        self.details_open = true;
                        self.details_scroll = 0;
                    }
                }
            }
            Intent::CloseDetails => {
                self.focus = Focus::List;
                if !in_details {
                    self.details_open = false;
                }
            }
            Intent::Reveal => self.toggle_reveal(ctx),
            _ => {}
        }
        vec![]
    }

    /// A click selects a row (a second one on a group folds it) or focuses the details; the wheel
    /// scrolls what is under it.
    pub fn mouse(&mut self, m: MouseEvent, ctx: &ListCtx) -> Vec<Command> {
        let areas = self.areas(ctx);
        let pos = Position::new(m.column, m.row);
        let on_details = areas.details.is_some_and(|d| d.contains(pos));
        match m.kind {
            MouseEventKind::ScrollDown if on_details => self.scroll_details(3, ctx),
            MouseEventKind::ScrollUp if on_details => {
                self.details_scroll = self.details_scroll.saturating_sub(3)
            }
            MouseEventKind::ScrollDown => self.move_selection(3, ctx),
            MouseEventKind::ScrollUp => self.move_selection(-3, ctx),
            MouseEventKind::Down(MouseButton::Left) => {
                if areas.list_body.contains(pos) {
                    let index = self.offset + (m.row - areas.list_body.y) as usize;
                    if index < self.rows.len() {
                        if index == self.selected && matches!(self.rows[index], Row::Group { .. }) {
                            return self.handle(Intent::Collapse, ctx);
                        }
                        self.focus = Focus::List;
                        self.select_index(index, ctx);
                    }
                } else if on_details {
                    self.focus = Focus::Details;
                }
            }
            _ => {}
        }
        vec![]
    }

    /// Folds or unfolds the selected group (or the selected container's), keeping it selected.
    fn fold_selected(&mut self, ctx: &ListCtx) {
        let group = match self.rows.get(self.selected) {
            Some(Row::Group { key, .. }) => Some(key.clone()),
            Some(Row::Container { id }) => ctx.containers.get(id).map(group_key),
            None => None,
        };
        let Some(g) = group else {
            return;
        };
        if !self.collapsed.remove(&g) {
            self.collapsed.insert(g.clone());
        }
        self.rebuild(ctx);
        if let Some(i) = self
            .rows
            .iter()
            .position(|r| r.key() == RowKey::Group(g.clone()))
        {
            self.select_index(i, ctx);
        }
    }

    fn toggle_reveal(&mut self, ctx: &ListCtx) {
        let Some(c) = self.selected_container(ctx.containers) else {
            self.notify(
                Level::Info,
                "select a container to reveal its secrets",
                None,
            );
            return;
        };
        let (id, name) = (c.id.clone(), c.display_name());
        let secrets = c.env.iter().any(|e| mask_env(e) != *e);
        if self.revealed.as_deref() == Some(id.as_str()) {
            self.revealed = None;
            self.notify(Level::Info, format!("{name}: secrets masked"), Some(&id));
        } else if !secrets {
            self.notify(
                Level::Info,
                format!("{name}: no secret values to reveal (nothing is masked)"),
                Some(&id),
            );
        } else {
            self.revealed = Some(id.clone());
            // From the list too: open the pane, or the key would seem to do nothing.
            if !self.details_open {
                self.details_open = true;
                self.details_scroll = 0;
            }
            let hint = ctx.keymap.hint(Intent::Reveal);
            self.notify(
                Level::Warn,
                format!("{name}: secrets revealed ({hint} masks them)"),
                Some(&id),
            );
        }
    }

    /// The furthest the details pane scrolls now (its rows as drawn, wrapped at its width).
    fn details_max(&self, ctx: &ListCtx) -> u16 {
        let (Some(area), Some(c)) = (
            self.areas(ctx).details,
            self.selected_container(ctx.containers),
        ) else {
            return 0;
        };
        let revealed = self.revealed.as_deref() == Some(c.id.as_str());
        super::details::max_scroll(c, ctx.compose.drift(c), ctx.theme, ctx.now, revealed, area)
    }

    /// Scrolls the details pane down, never past its last row.
    fn scroll_details(&mut self, rows: i32, ctx: &ListCtx) {
        let max = self.details_max(ctx);
        self.details_scroll = (self.details_scroll as i32 + rows).clamp(0, max as i32) as u16;
    }

    fn move_selection(&mut self, delta: isize, ctx: &ListCtx) {
        if self.rows.is_empty() {
            return;
        }
        let max = self.rows.len() as isize - 1;
        let next = (self.selected as isize + delta).clamp(0, max) as usize;
        self.select_index(next, ctx);
    }

    pub fn select_index(&mut self, index: usize, ctx: &ListCtx) {
        let id = |list: &ListView| {
            list.selected_container(ctx.containers)
                .map(|c| c.id.clone())
        };
        let before = id(self);
        self.selected = index.min(self.rows.len().saturating_sub(1));
        let after = id(self);
        if before != after {
            self.details_scroll = 0;
            self.reselected.push(after);
        }
        self.clamp(ctx);
    }

    /// Shows and selects a container: unfolds its group, and drops a filter or the running-only
    /// view that hides it.
    pub fn select_container(&mut self, id: &str, ctx: &ListCtx) {
        if let Some(c) = ctx.containers.get(id) {
            self.collapsed.remove(&group_key(c));
            if self.filter.as_ref().is_some_and(|f| !f.matches(c)) {
                self.filter = None;
            }
            if !c.state.is_up() {
                self.show_all = true;
            }
        }
        self.rebuild(ctx);
        if let Some(i) = self
            .rows
            .iter()
            .position(|r| matches!(r, Row::Container { id: rid } if rid == id))
        {
            self.select_index(i, ctx);
        }
    }

    /// Keeps the selection on screen.
    pub fn clamp(&mut self, ctx: &ListCtx) {
        let visible = self.areas(ctx).list_rows.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + visible {
            self.offset = self.selected + 1 - visible;
        }
        let max_offset = self.rows.len().saturating_sub(visible);
        self.offset = self.offset.min(max_offset);
    }

    /// Recomputes the rows from the containers, keeping the selection on the same row when it still exists.
    pub fn rebuild(&mut self, ctx: &ListCtx) {
        let keep = self.rows.get(self.selected).map(Row::key);
        let shown = ctx.containers.values().filter(|c| {
            (self.show_all || c.state.is_up()) && self.filter.as_ref().is_none_or(|f| f.matches(c))
        });
        let mut rows = Vec::new();
        for (key, members) in grouped(shown, self.sort, ctx.now) {
            let collapsed = self.collapsed.contains(&key);
            rows.push(Row::Group {
                key: key.clone(),
                total: members.len(),
                running: members.iter().filter(|c| c.state == State::Running).count(),
                unhealthy: members
                    .iter()
                    .filter(|c| c.current_health() == Health::Unhealthy)
                    .count(),
                collapsed,
            });
            if !collapsed {
                rows.extend(members.iter().map(|c| Row::Container { id: c.id.clone() }));
            }
        }
        self.rows = rows;
        let found = keep.and_then(|k| self.rows.iter().position(|r| r.key() == k));
        match found {
            Some(i) => self.selected = i,
            None => {
                self.selected = self.selected.min(self.rows.len().saturating_sub(1));
                // Land on a container rather than a header when the old one went away.
                if matches!(self.rows.get(self.selected), Some(Row::Group { .. }))
                    && matches!(
                        self.rows.get(self.selected + 1),
                        Some(Row::Container { .. })
                    )
                {
                    self.selected += 1;
                }
            }
        }
        self.clamp(ctx);
    }

    /// Container ids whose rows are on screen, plus the selection: what stats are collected for.
    pub fn visible_ids(&self, ctx: &ListCtx) -> Vec<String> {
        let rows = self.areas(ctx).list_rows;
        let mut ids: Vec<String> = self
            .rows
            .iter()
            .skip(self.offset)
            .take(rows)
            .filter_map(|r| match r {
                Row::Container { id } => Some(id.clone()),
                Row::Group { .. } => None,
            })
            .collect();
        if let Some(c) = self.selected_container(ctx.containers)
            && !ids.contains(&c.id)
        {
            ids.push(c.id.clone());
        }
        ids
    }
}

// The app's side: the filter line, and running the list with what it may read.
impl App {
    pub(super) fn on_filter_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Filter(input) = &mut self.overlay else {
            return vec![];
        };
        match key.code {
            KeyCode::Esc => {
                self.overlay = Overlay::None;
                self.list.filter = None;
                self.rebuild_rows();
            }
            KeyCode::Enter => {
                self.overlay = Overlay::None;
            }
            _ => {
                if is_ctrl_c(&key) {
                    self.should_quit = true;
                    return vec![];
                }
                input.input(key);
                self.apply_live_filter();
            }
        }
        vec![]
    }

    pub(super) fn apply_live_filter(&mut self) {
        let Overlay::Filter(input) = &self.overlay else {
            return;
        };
        let text = input.lines().join("");
        match Filter::parse(&text) {
            Ok(f) => {
                self.list.filter = f;
                if matches!(&self.status, Some(s) if s.text.starts_with("bad regex")) {
                    self.status = None;
                }
                self.rebuild_rows();
            }
            // Keep the last good filter while a regex is half typed.
            Err(e) => self.notify(Level::Warn, e),
        }
    }

    /// Runs `f` on the list with what it may read, then shows what it said and drops a footer
    /// message about a container that is no longer selected.
    pub(super) fn with_list<R>(&mut self, f: impl FnOnce(&mut ListView, &ListCtx) -> R) -> R {
        // The list is taken out for the call: its context reads everything but the list.
        let mut list = std::mem::take(&mut self.list);
        let out = f(&mut list, &self.list_ctx());
        self.list = list;
        for after in std::mem::take(&mut self.list.reselected) {
            if self
                .status
                .as_ref()
                .is_some_and(|s| s.about.is_some() && s.about != after)
            {
                self.status = None;
            }
        }
        for n in std::mem::take(&mut self.list.notices) {
            match n.about {
                Some(id) => self.notify_about(n.level, n.text, &id),
                None => self.notify(n.level, n.text),
            }
        }
        out
    }

    pub(super) fn select_container(&mut self, id: &str) {
        self.with_list(|list, ctx| list.select_container(id, ctx));
    }

    /// Keeps the selection on screen.
    pub(super) fn clamp_selection(&mut self) {
        self.with_list(|list, ctx| list.clamp(ctx));
    }

    /// Recomputes the rows from the containers, keeping the selection on the same row when it still exists.
    pub fn rebuild_rows(&mut self) {
        self.with_list(|list, ctx| list.rebuild(ctx));
    }

    /// Container ids whose rows are on screen, plus the selection: what stats are collected for.
    pub fn visible_ids(&self) -> Vec<String> {
        self.list.visible_ids(&self.list_ctx())
    }

    /// What the list may read of the rest of the app.
    fn list_ctx(&self) -> ListCtx<'_> {
        ListCtx {
            containers: &self.containers,
            compose: &self.compose,
            now: self.now,
            theme: &self.theme,
            keymap: &self.keymap,
            screen: Screen::of(self),
        }
    }
}
