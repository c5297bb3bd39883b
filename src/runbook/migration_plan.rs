//! The safety net of a migration, read from the migration tool's own words: which migrations a
//! run would apply (or undo), which of their operations cannot be undone, and which migrations the
//! tool reports applied. Pure parsing: `migrate.rs` runs the commands in the container.

use std::collections::BTreeSet;

/// How a status command reports what is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    /// `showmigrations`: [`parse_applied`].
    Django,
    /// `alembic current`: [`parse_alembic_current`].
    Alembic,
}

impl StatusFormat {
    /// What the status command's output says is applied.
    pub fn applied(self, text: &str) -> BTreeSet<String> {
        match self {
            StatusFormat::Django => parse_applied(text),
            StatusFormat::Alembic => parse_alembic_current(text),
        }
    }
}

/// One migration of a plan, in the order the tool would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `app.0003_drop_note` (Django), a revision id (alembic), or the configured plan's line.
    pub name: String,
    /// Its operations as the tool describes them.
    pub operations: Vec<String>,
    /// Why it cannot be undone, one entry per operation that cannot; empty: reversible.
    pub irreversible: Vec<String>,
}

impl Pending {
    /// `shop.0003_drop_note: Raw Python operation …; Remove field note from item`, with the
    /// irreversible ones said first.
    pub fn describe(&self) -> String {
        let ops = if self.operations.is_empty() {
            String::new()
        } else {
            format!(": {}", self.operations.join("; "))
        };
        if self.irreversible.is_empty() {
            format!("{}{ops}", self.name)
        } else {
            format!(
                "{} IRREVERSIBLE ({}){ops}",
                self.name,
                self.irreversible.join("; ")
            )
        }
    }
}

/// Django's `manage.py migrate --plan` (3.2 to 5.x): after `Planned operations:`, a line per
/// migration (`app.0002_name`, not indented) and its operations indented beneath it. Going
/// backwards Django prefixes an undone operation with `Undo ` and ends one it cannot undo (a
/// RunPython or RunSQL without a reverse) with `-> IRREVERSIBLE`. Going forwards Django does not
/// say whether a RunPython or RunSQL has a reverse: [`apply_django_ops`] tells from the probe.
pub fn parse_django_plan(text: &str) -> Vec<Pending> {
    let mut out: Vec<Pending> = Vec::new();
    let mut started = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if !started {
            started = trimmed == "Planned operations:";
            continue;
        }
        if trimmed.is_empty() || trimmed == "No planned migration operations." {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            out.push(Pending {
                name: trimmed.to_string(),
                operations: Vec::new(),
                irreversible: Vec::new(),
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        if let Some(why) = django_op_irreversible(trimmed) {
            m.irreversible.push(why);
        }
        m.operations.push(trimmed.to_string());
    }
    out
}

/// Why a Django `--plan` operation line cannot be undone, if it says so.
fn django_op_irreversible(op: &str) -> Option<String> {
    if let Some(what) = op.strip_suffix("-> IRREVERSIBLE") {
        return Some(format!("{} has no reverse", django_kind(what.trim())));
    }
    let forward = op.strip_prefix("Undo ").unwrap_or(op);
    if let Some(rest) = forward.strip_prefix("Remove field ") {
        return Some(format!("RemoveField {rest}: the column's data is dropped"));
    }
    if let Some(rest) = forward.strip_prefix("Delete model ") {
        return Some(format!("DeleteModel {rest}: the table's rows are dropped"));
    }
    None
}

fn django_kind(described: &str) -> &str {
    if described.starts_with("Raw Python operation") {
        "RunPython"
    } else if described.starts_with("Raw SQL operation") {
        "RunSQL"
    } else {
        described
    }
}

/// The Python the probe runs (`manage.py shell -c`): each operation of each migration the
/// forward plan would apply, with Django's own `reversible` (false: a RunPython or RunSQL without
/// a reverse).
pub const DJANGO_PROBE: &str = "from django.db import connections, DEFAULT_DB_ALIAS\n\
from django.db.migrations.executor import MigrationExecutor\n\
x = MigrationExecutor(connections[DEFAULT_DB_ALIAS])\n\
for m, back in x.migration_plan(x.loader.graph.leaf_nodes()):\n    \
for o in m.operations:\n        \
print('berth-op', '%s.%s' % (m.app_label, m.name), type(o).__name__, o.reversible, sep='\\t')\n";

/// The probe's lines: (migration, operation class, reversible).
pub fn parse_django_ops(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim_end().split('\t');
            (f.next()? == "berth-op").then_some(())?;
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()? == "True",
            ))
        })
        .collect()
}

/// Adds to a forward plan what only the probe knows: the RunPython and RunSQL operations
/// without a reverse. Without the probe's answer (`None`) a RunPython or RunSQL counts as
/// irreversible: berth cannot tell, and the safe answer is the backup's.
pub fn apply_django_ops(plan: &mut [Pending], ops: Option<&[(String, String, bool)]>) {
    for m in plan.iter_mut() {
        match ops {
            Some(ops) => {
                for (_, class, reversible) in ops.iter().filter(|(name, ..)| *name == m.name) {
                    if !reversible && (class == "RunPython" || class == "RunSQL") {
                        m.irreversible.push(format!("{class} without a reverse"));
                    }
                }
            }
            None => {
                let unknown: Vec<String> = m
                    .operations
                    .iter()
                    .map(|o| django_kind(o))
                    .filter(|k| *k == "RunPython" || *k == "RunSQL")
                    .map(|k| format!("{k} whose reverse could not be read"))
                    .collect();
                m.irreversible.extend(unknown);
            }
        }
    }
}

/// A configured plan command's output: each line that is not blank is shown; one that says
/// `IRREVERSIBLE` is flagged.
pub fn parse_generic_plan(text: &str) -> Vec<Pending> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Pending {
            name: l.to_string(),
            operations: Vec::new(),
            irreversible: if l.to_ascii_uppercase().contains("IRREVERSIBLE") {
                vec!["the plan says IRREVERSIBLE".into()]
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// The migrations a status command reports applied: Django's `showmigrations` (an app's name,
/// then ` [X] 0001_initial` beneath it) and `showmigrations --plan` (`[X]  app.0001_initial`).
pub fn parse_applied(text: &str) -> BTreeSet<String> {
    let mut applied = BTreeSet::new();
    let mut app = String::new();
    for line in text.lines() {
        let t = line.trim();
        let (mark, name) = match t.get(..3) {
            Some("[X]") => (true, t[3..].trim()),
            Some("[ ]") | Some("[-]") => (false, t[3..].trim()),
            _ => {
                if !line.starts_with(char::is_whitespace) && !t.is_empty() {
                    app = t.to_string();
                }
                continue;
            }
        };
        // A squashed migration's note: `[X] 0001_squashed (2 squashed migrations)`.
        let name = name.split(" (").next().unwrap_or(name);
        if mark {
            if name.contains('.') || app.is_empty() {
                applied.insert(name.to_string());
            } else {
                applied.insert(format!("{app}.{name}"));
            }
        }
    }
    applied
}

/// One revision of `alembic history --verbose`: its id, its script's path, its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub rev: String,
    pub path: Option<String>,
    pub message: String,
}

/// `alembic history -r A:B --verbose` (alembic 1.x): a block per revision, newest first, each
/// `Rev: a3 (head)`, `Parent: a2`, `Path: /app/migrations/versions/a3.py`, then its message
/// indented after a blank line.
pub fn parse_alembic_history(text: &str) -> Vec<Revision> {
    let mut out: Vec<Revision> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Rev: ") {
            let rev = rest.split_whitespace().next().unwrap_or_default();
            out.push(Revision {
                rev: rev.to_string(),
                path: None,
                message: String::new(),
            });
        } else if let Some(r) = out.last_mut() {
            if let Some(path) = line.strip_prefix("Path: ") {
                r.path = Some(path.trim().to_string());
            } else if line.starts_with(char::is_whitespace)
                && !line.trim().is_empty()
                && r.message.is_empty()
            {
                r.message = line.trim().to_string();
            }
        }
    }
    out
}

/// `alembic current`: the revision ids the database is at (`a3 (head)`, one line per head; the
/// log lines alembic may print are not ids).
pub fn parse_alembic_current(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let rev = words.next()?;
            let rest: Vec<&str> = words.collect();
            let only_marks = rest.iter().all(|w| w.starts_with('(') && w.ends_with(')'));
            (only_marks && rev.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| rev.to_string())
        })
        .collect()
}

/// Why an alembic script's `downgrade()` cannot undo its upgrade: a body that is only `pass` (or
/// a docstring, or nothing), or one that raises.
pub fn alembic_downgrade_irreversible(source: &str) -> Option<String> {
    let mut lines = source
        .lines()
        .skip_while(|l| !l.starts_with("def downgrade("));
    lines.next()?;
    let mut statements = Vec::new();
    let mut in_doc = false;
    for line in lines {
        let t = line.trim();
        if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            break;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if in_doc || t.starts_with("\"\"\"") || t.starts_with("'''") {
            let quotes = t.matches("\"\"\"").count() + t.matches("'''").count();
            // A docstring on one line has its two quotes; a longer one ends at its closing line.
            in_doc = if in_doc { quotes == 0 } else { quotes == 1 };
            continue;
        }
        statements.push(t);
    }
    if statements
        .iter()
        .any(|s| s.starts_with("raise ") || *s == "raise")
    {
        return Some("its downgrade raises".into());
    }
    if statements.iter().all(|s| *s == "pass" || *s == "...") {
        return Some("its downgrade is empty".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Debian's python3-django 3.2.25 prints for tests/fixtures/django, checked with the tool.
    const FORWARD: &str = "Planned operations:\n\
shop.0002_item_price\n    Add field price to item\n\
shop.0003_drop_note\n    Raw Python operation -> Price from the note's length\n    Remove field note from item\n";
    const BACKWARD: &str = "Planned operations:\n\
shop.0003_drop_note\n    Raw Python operation -> IRREVERSIBLE\n    Undo Remove field note from item\n\
shop.0002_item_price\n    Undo Add field price to item\n";

    #[test]
    fn a_forward_django_plan_lists_each_migration_and_flags_the_dropped_column() {
        let plan = parse_django_plan(FORWARD);
        assert_eq!(
            plan.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            vec!["shop.0002_item_price", "shop.0003_drop_note"]
        );
        assert!(plan[0].irreversible.is_empty());
        assert_eq!(
            plan[1].irreversible,
            vec!["RemoveField note from item: the column's data is dropped"]
        );
        assert!(
            parse_django_plan("Planned operations:\n  No planned migration operations.\n")
                .is_empty()
        );
    }

    #[test]
    fn the_probe_tells_a_runpython_without_a_reverse() {
        let probe = "berth-op\tshop.0002_item_price\tAddField\tTrue\n\
berth-op\tshop.0003_drop_note\tRunPython\tFalse\n\
berth-op\tshop.0003_drop_note\tRemoveField\tTrue\nnoise\n";
        let ops = parse_django_ops(probe);
        assert_eq!(ops.len(), 3);
        let mut plan = parse_django_plan(FORWARD);
        apply_django_ops(&mut plan, Some(&ops));
        assert!(plan[0].irreversible.is_empty());
        assert_eq!(plan[1].irreversible.len(), 2);
        assert_eq!(plan[1].irreversible[1], "RunPython without a reverse");
        // Without the probe the RunPython is not trusted.
        let mut plan = parse_django_plan(FORWARD);
        apply_django_ops(&mut plan, None);
        assert_eq!(
            plan[1].irreversible[1],
            "RunPython whose reverse could not be read"
        );
        assert!(
            plan[1]
                .describe()
                .starts_with("shop.0003_drop_note IRREVERSIBLE (")
        );
    }

    #[test]
    fn a_backward_django_plan_flags_what_django_cannot_undo() {
        let plan = parse_django_plan(BACKWARD);
        assert_eq!(plan[0].name, "shop.0003_drop_note");
        assert_eq!(
            plan[0].irreversible,
            vec![
                "RunPython has no reverse",
                "RemoveField note from item: the column's data is dropped"
            ]
        );
        assert!(plan[1].irreversible.is_empty());
    }

    #[test]
    fn applied_migrations_from_both_showmigrations_formats() {
        let list = "shop\n [X] 0001_initial\n [X] 0002_item_price\n [ ] 0003_drop_note\nauth\n [X] 0001_initial\n";
        let applied = parse_applied(list);
        assert_eq!(
            applied.into_iter().collect::<Vec<_>>(),
            vec![
                "auth.0001_initial",
                "shop.0001_initial",
                "shop.0002_item_price"
            ]
        );
        let plan = "[X]  shop.0001_initial\n[ ]  shop.0002_item_price\n";
        assert_eq!(
            parse_applied(plan).into_iter().collect::<Vec<_>>(),
            vec!["shop.0001_initial"]
        );
    }

    #[test]
    fn a_configured_plan_is_shown_line_by_line() {
        let plan = parse_generic_plan("001 add price\n\n002 drop note IRREVERSIBLE\n");
        assert_eq!(plan.len(), 2);
        assert!(plan[0].irreversible.is_empty());
        assert!(!plan[1].irreversible.is_empty());
    }

    /// What Debian's python3-alembic 1.8.1 prints for tests/fixtures/alembic, checked with the tool.
    #[test]
    fn alembic_history_current_and_downgrades() {
        let history = "Rev: a4 (head)\nParent: a3\nPath: /alembic/migrations/versions/a4_index.py\n\n    index on name\n\nRev: a3\nParent: a2\nPath: /alembic/migrations/versions/a3_drop_note.py\n\n    drop note: irreversible, the notes are gone\n\n";
        let revs = parse_alembic_history(history);
        assert_eq!(revs.len(), 2);
        assert_eq!(revs[0].rev, "a4");
        assert_eq!(
            revs[1].path.as_deref(),
            Some("/alembic/migrations/versions/a3_drop_note.py")
        );
        assert_eq!(
            revs[1].message,
            "drop note: irreversible, the notes are gone"
        );
        assert_eq!(
            parse_alembic_current(
                "INFO  [alembic.runtime.migration] Context impl SQLiteImpl.\na4 (head)\n"
            )
            .into_iter()
            .collect::<Vec<_>>(),
            vec!["a4"]
        );
        assert!(parse_alembic_current("").is_empty());
        let raises = "def upgrade():\n    op.x()\n\n\ndef downgrade():\n    raise NotImplementedError(\"gone\")\n";
        assert_eq!(
            alembic_downgrade_irreversible(raises).as_deref(),
            Some("its downgrade raises")
        );
        let empty = "def downgrade():\n    \"\"\"Nothing.\"\"\"\n    pass\n";
        assert_eq!(
            alembic_downgrade_irreversible(empty).as_deref(),
            Some("its downgrade is empty")
        );
        let fine = "def downgrade():\n    with op.batch_alter_table(\"items\") as batch:\n        batch.drop_column(\"price\")\n";
        assert_eq!(alembic_downgrade_irreversible(fine), None);
    }
}
