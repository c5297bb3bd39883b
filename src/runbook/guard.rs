//! Who may change what: read-only refusal, and the confirmation a mutating action needs (a yes, or
//! the service's name typed on production). Pure functions, shared by the TUI and the CLI.

use crate::target::Target;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error(
        "'{0}' is read-only (--read-only or read_only = true in the config): berth refuses to change anything there"
    )]
    ReadOnly(String),
    #[error("stdin is not a terminal, so berth cannot ask: add --yes to confirm {0}")]
    NeedsYes(String),
    #[error(
        "'{server}' is production: --yes alone is not enough; add --confirm {subject} to name what you change"
    )]
    NeedsConfirmName { server: String, subject: String },
    #[error("--confirm '{given}' does not match '{subject}': nothing was changed")]
    WrongName { given: String, subject: String },
}

/// What the user must give before a mutating action runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Reading only: nothing to confirm.
    None,
    /// A plain yes.
    YesNo,
    /// Type this name (production).
    TypeName(String),
}

impl Confirmation {
    /// Does the answer the user gave satisfy this confirmation?
    pub fn accepts(&self, answer: &str) -> bool {
        let a = answer.trim();
        match self {
            Confirmation::None => true,
            Confirmation::YesNo => a.eq_ignore_ascii_case("y") || a.eq_ignore_ascii_case("yes"),
            Confirmation::TypeName(n) => a == n,
        }
    }

    /// The prompt line, without trailing space.
    pub fn prompt(&self) -> String {
        match self {
            Confirmation::None => String::new(),
            Confirmation::YesNo => "Proceed? [y/N]".into(),
            Confirmation::TypeName(n) => format!("This is production. Type '{n}' to proceed:"),
        }
    }
}

/// What the CLI does after the guard looked at the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead without asking (read-only action, or confirmed by flags).
    Proceed,
    /// Ask on the terminal.
    Ask(Confirmation),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub server: String,
    pub read_only: bool,
    pub production: bool,
}

impl Guard {
    pub fn for_target(t: &Target) -> Guard {
        Guard {
            server: t.name.clone(),
            read_only: t.read_only,
            production: t.is_production(),
        }
    }

    /// May this action run at all? The TUI calls it to grey out a key and say why.
    pub fn allows(&self, mutating: bool) -> Result<(), GuardError> {
        if mutating && self.read_only {
            return Err(GuardError::ReadOnly(self.server.clone()));
        }
        Ok(())
    }

    /// The confirmation the TUI asks for before running an action on `subject`.
    pub fn confirmation(&self, mutating: bool, subject: &str) -> Result<Confirmation, GuardError> {
        self.allows(mutating)?;
        Ok(match (mutating, self.production) {
            (false, _) => Confirmation::None,
            (true, false) => Confirmation::YesNo,
            (true, true) => Confirmation::TypeName(subject.to_string()),
        })
    }

    /// The CLI's decision from `--yes`, `--confirm NAME` and whether stdin is a terminal.
    pub fn decide_cli(
        &self,
        mutating: bool,
        subject: &str,
        interactive: bool,
        yes: bool,
        confirm: Option<&str>,
    ) -> Result<Decision, GuardError> {
        let needed = self.confirmation(mutating, subject)?;
        if let Some(given) = confirm
            && mutating
            && given.trim() != subject
        {
            return Err(GuardError::WrongName {
                given: given.to_string(),
                subject: subject.to_string(),
            });
        }
        match needed {
            Confirmation::None => Ok(Decision::Proceed),
            Confirmation::YesNo if yes => Ok(Decision::Proceed),
            Confirmation::TypeName(_) if yes && confirm.is_some() => Ok(Decision::Proceed),
            Confirmation::TypeName(_) if !interactive && yes => Err(GuardError::NeedsConfirmName {
                server: self.server.clone(),
                subject: subject.to_string(),
            }),
            _ if !interactive => Err(GuardError::NeedsYes(subject.to_string())),
            c => Ok(Decision::Ask(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(read_only: bool, production: bool) -> Guard {
        Guard {
            server: "p".into(),
            read_only,
            production,
        }
    }

    #[test]
    fn read_only_refuses_mutations_only() {
        let ro = g(true, false);
        assert!(matches!(ro.allows(true), Err(GuardError::ReadOnly(_))));
        assert!(ro.allows(false).is_ok());
        assert!(ro.decide_cli(true, "web", true, true, Some("web")).is_err());
        assert_eq!(
            ro.decide_cli(false, "web", false, false, None),
            Ok(Decision::Proceed)
        );
        assert!(
            ro.confirmation(true, "web")
                .unwrap_err()
                .to_string()
                .contains("read-only")
        );
    }

    #[test]
    fn plain_server() {
        let s = g(false, false);
        assert_eq!(s.confirmation(true, "web"), Ok(Confirmation::YesNo));
        assert_eq!(
            s.decide_cli(true, "web", true, false, None),
            Ok(Decision::Ask(Confirmation::YesNo))
        );
        assert_eq!(
            s.decide_cli(true, "web", false, true, None),
            Ok(Decision::Proceed)
        );
        assert_eq!(
            s.decide_cli(true, "web", false, false, None),
            Err(GuardError::NeedsYes("web".into()))
        );
    }

    #[test]
    fn production_needs_the_name() {
        let p = g(false, true);
        assert_eq!(
            p.confirmation(true, "shop/web"),
            Ok(Confirmation::TypeName("shop/web".into()))
        );
        let e = p
            .decide_cli(true, "shop/web", false, true, None)
            .unwrap_err();
        assert!(matches!(e, GuardError::NeedsConfirmName { .. }));
        assert!(e.to_string().contains("--confirm shop/web"));
        assert_eq!(
            p.decide_cli(true, "shop/web", false, true, Some("shop/web")),
            Ok(Decision::Proceed)
        );
        assert!(matches!(
            p.decide_cli(true, "shop/web", false, true, Some("blog/web")),
            Err(GuardError::WrongName { .. })
        ));
        // On a terminal, --yes alone still asks for the name.
        assert_eq!(
            p.decide_cli(true, "shop/web", true, true, None),
            Ok(Decision::Ask(Confirmation::TypeName("shop/web".into())))
        );
        assert!(matches!(
            p.decide_cli(true, "shop/web", false, false, None),
            Err(GuardError::NeedsYes(_))
        ));
    }

    #[test]
    fn answers() {
        assert!(Confirmation::YesNo.accepts(" y"));
        assert!(Confirmation::YesNo.accepts("YES"));
        assert!(!Confirmation::YesNo.accepts(""));
        assert!(Confirmation::TypeName("web".into()).accepts("web\n"));
        assert!(!Confirmation::TypeName("web".into()).accepts("Web"));
        assert!(!Confirmation::TypeName("web".into()).accepts("y"));
    }
}
