//! Everything that can change the app's state: input from the terminal, data from the engine tasks,
//! and the clock. `App::update` is the only consumer.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

use crate::engine::EngineVersion;
use crate::engine::model::Container;

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    /// The clock moved on (uptimes, ages, message expiry).
    Tick(DateTime<Utc>),
    /// Something a background task learnt; `session` tells stale news from an old server apart.
    Engine {
        session: u64,
        event: EngineEvent,
    },
    /// A message for the status line.
    Notify(Level, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    Connected {
        transport: String,
        version: EngineVersion,
    },
    ConnectFailed(String),
    /// The full list, after connecting and at every resync.
    Snapshot(Vec<Container>),
    Changed(Box<Container>),
    Gone(String),
    /// The link or the events stream broke; the shown state may be out of date until it heals.
    Stale(String),
    /// The events stream is flowing again.
    Live,
    /// One engine event, for the events view.
    Event(EventRecord),
}

/// A container event as the events view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub time: DateTime<Utc>,
    pub action: String,
    pub id: String,
    pub name: String,
    /// `exitCode` for die events.
    pub exit_code: Option<String>,
}
