//! Log lines as text: the prefix of each source when several are merged, the timestamp if asked.
//! The CLI prints with it and the console saves a log view with it.

use std::io::{self, Write};

use super::line::format_ts;
use super::sanitize::plain;
use super::{LogLine, LogSource};

/// Formats lines as `docker compose logs` does: `web-1  | text`, timestamps on request.
pub struct LineWriter {
    prefixes: Vec<String>,
    timestamps: bool,
}

impl LineWriter {
    pub fn new(sources: &[LogSource], timestamps: bool) -> LineWriter {
        let width = sources
            .iter()
            .map(|s| plain(&s.prefix).chars().count())
            .max()
            .unwrap_or(0);
        let prefixes = if sources.len() > 1 {
            sources
                .iter()
                // Labels from the server: the prefix is cleaned like the line after it.
                .map(|s| format!("{:<width$} | ", plain(&s.prefix)))
                .collect()
        } else {
            vec![String::new(); sources.len()]
        };
        LineWriter {
            prefixes,
            timestamps,
        }
    }

    pub fn write(&mut self, w: &mut impl Write, line: &LogLine) -> io::Result<()> {
        if let Some(p) = self.prefixes.get(line.source as usize) {
            w.write_all(p.as_bytes())?;
        }
        if self.timestamps {
            w.write_all(format_ts(line.ts).as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(line.text.as_bytes())?;
        w.write_all(b"\n")
    }
}

/// The lines as a saved log: prefixes when several sources, timestamps if asked.
pub fn format_lines(sources: &[LogSource], timestamps: bool, lines: &[LogLine]) -> Vec<u8> {
    let mut writer = LineWriter::new(sources, timestamps);
    let mut text = Vec::with_capacity(lines.len() * 80);
    for l in lines {
        // Writing to a Vec cannot fail.
        let _ = writer.write(&mut text, l);
    }
    text
}
