//! What every command needs once the command line is parsed: the config, the resolved target, and a
//! connected engine on demand. Shared by the CLI commands and the TUI.

use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::config::{self, Config};
use crate::engine::{self, Engine, EngineError};
use crate::ssh::SshOptions;
use crate::target::{self, Environment, Target};

pub struct Context {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub global: GlobalArgs,
    pub env: Environment,
    /// stdin is a terminal: prompts are allowed.
    pub interactive: bool,
}

impl Context {
    /// Reads the config. Errors here are printed as one line before any terminal setup.
    pub fn load(global: GlobalArgs) -> color_eyre::Result<Context> {
        let (config, config_path) = config::file::load(global.config.as_deref())?;
        // `--theme` is checked here too, so `berth ps --theme neon` fails like the console does.
        if let Some(theme) = &global.theme {
            crate::theme::Theme::load(theme)?;
        }
        Ok(Context {
            config,
            config_path,
            global,
            env: Environment::from_process(),
            interactive: std::io::stdin().is_terminal(),
        })
    }

    /// The target named with `-s`, or the default one. `Ok(None)`: let the user pick (TUI only).
    pub fn target(&self) -> Result<Option<Target>, target::TargetError> {
        let mut t = target::resolve(self.global.server.as_deref(), &self.config, &self.env)?;
        if let Some(t) = t.as_mut() {
            t.read_only |= self.global.read_only || self.config.read_only;
        }
        Ok(t)
    }

    /// The target for a CLI command: like [`Context::target`], but the local engine stands in for the picker.
    pub fn cli_target(&self) -> Result<Target, target::TargetError> {
        Ok(self.target()?.unwrap_or_else(|| {
            let mut t = Target::local();
            t.read_only |= self.global.read_only || self.config.read_only;
            t
        }))
    }

    pub fn ssh_options(&self) -> SshOptions {
        SshOptions {
            batch: !self.interactive,
            ..Default::default()
        }
    }

    /// Connects for a CLI command; what berth cannot honour of the ssh config is named on stderr.
    pub async fn connect(&self, target: &Target) -> Result<Engine, EngineError> {
        let engine = engine::connect(target, &self.ssh_options()).await?;
        if let Some(line) = engine
            .ssh
            .as_ref()
            .and_then(|s| s.resolved().unhonoured_line())
        {
            eprintln!("berth: {}", crate::format::printable(&line));
        }
        Ok(engine)
    }
}

/// Flags every command takes (the server, the config file, the theme, read-only). Declared with
/// the context they build so the context needs nothing from the CLI definitions.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Server to use: a name from the config, an ~/.ssh/config alias, user@host[:port],
    /// ssh://user@host[:port][/socket], unix:///path, tcp://host:port, or context:NAME.
    #[arg(short = 's', long = "server", global = true, value_name = "TARGET")]
    pub server: Option<String>,

    /// Config file to read instead of the platform default.
    #[arg(long, global = true, value_name = "PATH", env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,

    /// Theme name (dark, light, high-contrast) or path to a theme TOML file.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,

    /// Disable every mutating action.
    #[arg(long, global = true)]
    pub read_only: bool,
}
