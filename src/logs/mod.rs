//! Live logs of containers, services and projects: sanitizing, the bounded line buffer, streaming
//! with resume after a broken link, lines as text. Nothing here knows the terminal.

pub mod buffer;
pub mod frames;
pub mod line;
pub mod merge;
pub mod resolve;
pub mod sanitize;
pub mod save;
pub mod since;
pub mod stream;
pub mod write;

pub use buffer::{Cap, LineFilter, LogBuffer, Pattern};
pub use line::{LogLine, Severity, StreamKind};
pub use resolve::{
    LogSource, container_named, containers_named, containers_named_all, sources_for,
};
pub use since::parse_since;
pub use stream::{LogEvent, LogOptions, SourceStatus, Tail};
pub use write::{LineWriter, format_lines};
