//! What every command needs once the command line is parsed: the config, the resolved target, and a
//! connected engine on demand. Shared by the CLI commands and the TUI.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::GlobalArgs;
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
        let (config, config_path) = config::load(global.config.as_deref())?;
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

    pub async fn connect(&self, target: &Target) -> Result<Engine, EngineError> {
        engine::connect(target, &self.ssh_options()).await
    }
}
