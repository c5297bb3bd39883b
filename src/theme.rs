//! Themes: `themes/*.toml` resolved once into semantic styles. Views ask for a meaning
//! (`theme.health(h)`, `theme.border(focused)`), never for a colour.

use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::engine::model::{Health, State};

pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../themes/dark.toml")),
    ("light", include_str!("../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    background: String,
    foreground: String,
    dim: String,
    accent: String,
    border: String,
    border_focused: String,
    title: String,
    selected_bg: String,
    selected_fg: String,
    header_bg: String,
    header_fg: String,
    group: String,
    healthy: String,
    unhealthy: String,
    starting: String,
    running: String,
    stopped: String,
    paused: String,
    error: String,
    warning: String,
    info: String,
    production_bg: String,
    production_fg: String,
    staging_bg: String,
    staging_fg: String,
    match_bg: String,
    match_fg: String,
    stderr: String,
    /// Data no longer fresh (the link or engine is lost); older theme files without it use `dim`.
    #[serde(default)]
    stale: Option<String>,
    palette: Vec<String>,
    #[serde(default)]
    bold: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    bg: Color,
    fg: Color,
    dim: Color,
    accent: Color,
    border: Color,
    border_focused: Color,
    title: Color,
    selected_bg: Color,
    selected_fg: Color,
    header_bg: Color,
    header_fg: Color,
    group: Color,
    healthy: Color,
    unhealthy: Color,
    starting: Color,
    running: Color,
    stopped: Color,
    paused: Color,
    error: Color,
    warning: Color,
    info: Color,
    production_bg: Color,
    production_fg: Color,
    staging_bg: Color,
    staging_fg: Color,
    match_bg: Color,
    match_fg: Color,
    stderr: Color,
    stale: Color,
    palette: Vec<Color>,
    bold: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error(
        "unknown theme '{0}': use dark, light, high-contrast, or the path of a theme TOML file"
    )]
    Unknown(String),
    #[error("theme {0}: {1}")]
    Invalid(String, String),
}

impl Default for Theme {
    fn default() -> Self {
        Theme::builtin("dark").expect("the dark theme ships with berth")
    }
}

impl Theme {
    pub fn names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    pub fn builtin(name: &str) -> Option<Theme> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Theme::parse(text, n).expect("built-in themes are valid"))
    }

    /// Whether a theme name is a path to a file (reading it is IO) rather than a built-in name.
    pub fn is_file(name_or_path: &str) -> bool {
        name_or_path.ends_with(".toml") || Path::new(name_or_path).components().count() > 1
    }

    /// A built-in name or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
        if let Some(t) = Theme::builtin(name_or_path) {
            return Ok(t);
        }
        let path = Path::new(name_or_path);
        if Theme::is_file(name_or_path) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ThemeError::Invalid(name_or_path.into(), e.to_string()))?;
            return Theme::parse(&text, name_or_path);
        }
        Err(ThemeError::Unknown(name_or_path.into()))
    }

    pub fn parse(text: &str, origin: &str) -> Result<Theme, ThemeError> {
        let f: ThemeFile = toml::from_str(text)
            .map_err(|e| ThemeError::Invalid(origin.into(), e.message().to_string()))?;
        let c = |field: &str, s: &str| {
            Color::from_str(s).map_err(|_| {
                ThemeError::Invalid(origin.into(), format!("{field} = \"{s}\" is not a colour"))
            })
        };
        let palette = f
            .palette
            .iter()
            .map(|s| c("palette", s))
            .collect::<Result<Vec<_>, _>>()?;
        if palette.is_empty() {
            return Err(ThemeError::Invalid(
                origin.into(),
                "palette needs at least one colour".into(),
            ));
        }
        Ok(Theme {
            name: f.name,
            bg: c("background", &f.background)?,
            fg: c("foreground", &f.foreground)?,
            dim: c("dim", &f.dim)?,
            accent: c("accent", &f.accent)?,
            border: c("border", &f.border)?,
            border_focused: c("border_focused", &f.border_focused)?,
            title: c("title", &f.title)?,
            selected_bg: c("selected_bg", &f.selected_bg)?,
            selected_fg: c("selected_fg", &f.selected_fg)?,
            header_bg: c("header_bg", &f.header_bg)?,
            header_fg: c("header_fg", &f.header_fg)?,
            group: c("group", &f.group)?,
            healthy: c("healthy", &f.healthy)?,
            unhealthy: c("unhealthy", &f.unhealthy)?,
            starting: c("starting", &f.starting)?,
            running: c("running", &f.running)?,
            stopped: c("stopped", &f.stopped)?,
            paused: c("paused", &f.paused)?,
            error: c("error", &f.error)?,
            warning: c("warning", &f.warning)?,
            info: c("info", &f.info)?,
            production_bg: c("production_bg", &f.production_bg)?,
            production_fg: c("production_fg", &f.production_fg)?,
            staging_bg: c("staging_bg", &f.staging_bg)?,
            staging_fg: c("staging_fg", &f.staging_fg)?,
            match_bg: c("match_bg", &f.match_bg)?,
            match_fg: c("match_fg", &f.match_fg)?,
            stderr: c("stderr", &f.stderr)?,
            stale: c("stale", f.stale.as_deref().unwrap_or(&f.dim))?,
            palette,
            bold: f.bold,
        })
    }

    fn emphasis(&self, s: Style) -> Style {
        if self.bold {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    pub fn base(&self) -> Style {
        Style::default().fg(self.fg).bg(self.bg)
    }
    pub fn text(&self) -> Style {
        Style::default().fg(self.fg)
    }
    pub fn dim(&self) -> Style {
        Style::default().fg(self.dim)
    }
    pub fn accent(&self) -> Style {
        self.emphasis(Style::default().fg(self.accent))
    }
    pub fn key(&self) -> Style {
        Style::default()
            .fg(self.accent)
            .add_modifier(Modifier::BOLD)
    }
    pub fn border(&self, focused: bool) -> Style {
        Style::default().fg(if focused {
            self.border_focused
        } else {
            self.border
        })
    }
    pub fn title(&self, focused: bool) -> Style {
        let s = Style::default().fg(self.title);
        if focused {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }
    pub fn selected(&self) -> Style {
        Style::default()
            .fg(self.selected_fg)
            .bg(self.selected_bg)
            .add_modifier(Modifier::BOLD)
    }
    pub fn header(&self) -> Style {
        Style::default().fg(self.header_fg).bg(self.header_bg)
    }
    pub fn column_header(&self) -> Style {
        Style::default().fg(self.dim).add_modifier(Modifier::BOLD)
    }
    pub fn group(&self) -> Style {
        Style::default().fg(self.group).add_modifier(Modifier::BOLD)
    }
    pub fn health(&self, h: Health) -> Style {
        let c = match h {
            Health::Healthy => self.healthy,
            Health::Unhealthy => self.unhealthy,
            Health::Starting => self.starting,
            Health::None => self.dim,
        };
        let s = Style::default().fg(c);
        if h == Health::Unhealthy {
            s.add_modifier(Modifier::BOLD)
        } else {
            self.emphasis(s)
        }
    }
    pub fn state(&self, s: State) -> Style {
        let c = match s {
            State::Running => self.running,
            State::Restarting | State::Created => self.starting,
            State::Paused => self.paused,
            State::Dead => self.error,
            State::Exited | State::Removing | State::Unknown => self.stopped,
        };
        Style::default().fg(c)
    }
    pub fn error(&self) -> Style {
        Style::default().fg(self.error).add_modifier(Modifier::BOLD)
    }
    pub fn warning(&self) -> Style {
        Style::default().fg(self.warning)
    }
    pub fn info(&self) -> Style {
        Style::default().fg(self.info)
    }
    pub fn success(&self) -> Style {
        self.emphasis(Style::default().fg(self.healthy))
    }
    /// The banner for an environment label: production is loud, staging is amber, others plain.
    pub fn environment(&self, label: &str) -> Style {
        let l = label.to_ascii_lowercase();
        if l == "production" || l == "prod" {
            Style::default()
                .fg(self.production_fg)
                .bg(self.production_bg)
                .add_modifier(Modifier::BOLD)
        } else if l == "staging" || l == "stage" {
            Style::default()
                .fg(self.staging_fg)
                .bg(self.staging_bg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
                .fg(self.header_fg)
                .bg(self.border)
                .add_modifier(Modifier::BOLD)
        }
    }
    pub fn search_match(&self) -> Style {
        Style::default().fg(self.match_fg).bg(self.match_bg)
    }
    /// Rows, figures and the header once what they show is no longer fresh: its own colour, in
    /// italics, so it reads as old at a glance and never as a live green.
    pub fn stale(&self) -> Style {
        Style::default()
            .fg(self.stale)
            .add_modifier(Modifier::ITALIC)
    }

    pub fn stderr(&self) -> Style {
        Style::default().fg(self.stderr)
    }
    /// A stable colour for a name (log prefixes, chart series).
    pub fn series(&self, index: usize) -> Style {
        Style::default().fg(self.palette[index % self.palette.len()])
    }
    pub fn series_for(&self, name: &str) -> Style {
        let h = name
            .bytes()
            .fold(5381usize, |h, b| h.wrapping_mul(33) ^ b as usize);
        self.series(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for n in Theme::names() {
            assert_eq!(Theme::load(n).unwrap().name, n);
        }
        assert!(matches!(Theme::load("neon"), Err(ThemeError::Unknown(_))));
    }

    #[test]
    fn bad_colour_is_named() {
        let text = BUILTIN[0]
            .1
            .replace("healthy = \"#98c379\"", "healthy = \"greenish\"");
        let e = Theme::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("healthy = \"greenish\""), "{e}");
    }

    #[test]
    fn health_styles_differ() {
        let t = Theme::default();
        assert_ne!(t.health(Health::Healthy), t.health(Health::Unhealthy));
    }
}
