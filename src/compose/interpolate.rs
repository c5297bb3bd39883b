//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$`, from a map of variables.

use std::collections::BTreeMap;

/// A string after interpolation, and the variables it looked up (set or not), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    pub vars: Vec<String>,
}

fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = if i == 0 {
            c.is_ascii_alphabetic() || c == '_'
        } else {
            c.is_ascii_alphanumeric() || c == '_'
        };
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

/// Interpolates `s` as compose does. An unset variable without a default is empty (compose warns);
/// `${VAR?msg}` on an unset variable is the error compose would stop with.
pub fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> Result<Interpolated, String> {
    let mut out = Interpolated {
        value: String::new(),
        vars: Vec::new(),
    };
    expand(s, vars, &mut out, 0)?;
    Ok(out)
}

fn expand(
    s: &str,
    vars: &BTreeMap<String, String>,
    out: &mut Interpolated,
    depth: usize,
) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("{s:?}: defaults nested too deep"));
    }
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.value.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.value.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = matching_brace(inner)
                .ok_or_else(|| format!("{s:?}: a ${{ without its closing }}"))?;
            substitute(&inner[..close], vars, out, depth)?;
            rest = &inner[close + 1..];
        } else {
            let n = name_len(after);
            if n == 0 {
                return Err(format!(
                    "{s:?}: a $ that starts no variable (write $$ for a dollar sign)"
                ));
            }
            let name = &after[..n];
            out.vars.push(name.to_string());
            out.value
                .push_str(vars.get(name).map(String::as_str).unwrap_or(""));
            rest = &after[n..];
        }
    }
    out.value.push_str(rest);
    Ok(())
}

/// Where the `}` that closes a `${` is, counting nested `${…}` in a default.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn substitute(
    body: &str,
    vars: &BTreeMap<String, String>,
    out: &mut Interpolated,
    depth: usize,
) -> Result<(), String> {
    let n = name_len(body);
    if n == 0 {
        return Err(format!("${{{body}}}: not a variable name"));
    }
    let name = &body[..n];
    let op = &body[n..];
    out.vars.push(name.to_string());
    let value = vars.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let (word, use_word) = if op.is_empty() {
        (None, false)
    } else if let Some(w) = op.strip_prefix(":-") {
        (Some(w), !set_nonempty)
    } else if let Some(w) = op.strip_prefix(":?") {
        if !set_nonempty {
            return Err(format!("{name} is required: {w}"));
        }
        (None, false)
    } else if let Some(w) = op.strip_prefix(":+") {
        (Some(w), set_nonempty)
    } else if let Some(w) = op.strip_prefix('-') {
        (Some(w), value.is_none())
    } else if let Some(w) = op.strip_prefix('?') {
        if value.is_none() {
            return Err(format!("{name} is required: {w}"));
        }
        (None, false)
    } else if let Some(w) = op.strip_prefix('+') {
        (Some(w), value.is_some())
    } else {
        return Err(format!("${{{body}}}: unknown substitution {op:?}"));
    };
    match (word, use_word) {
        (Some(w), true) => expand(w, vars, out, depth + 1),
        // `:+`/`+` with the variable unset (or empty) is empty.
        (Some(_), false) if op.starts_with(":+") || op.starts_with('+') => Ok(()),
        _ => {
            out.value.push_str(value.map(String::as_str).unwrap_or(""));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("TAG", "v2"), ("EMPTY", ""), ("REPO", "shop/web")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn i(s: &str) -> String {
        interpolate(s, &vars()).unwrap().value
    }

    #[test]
    fn every_form_compose_knows() {
        assert_eq!(i("app:${TAG}"), "app:v2");
        assert_eq!(i("app:$TAG"), "app:v2");
        assert_eq!(i("$REPO:$TAG"), "shop/web:v2");
        assert_eq!(i("app:${NOPE:-v1}"), "app:v1");
        assert_eq!(
            i("app:${EMPTY:-v1}"),
            "app:v1",
            ":- replaces an empty value"
        );
        assert_eq!(i("app:${EMPTY-v1}"), "app:", "- replaces only an unset one");
        assert_eq!(i("app:${NOPE-v1}"), "app:v1");
        assert_eq!(i("app:${TAG:-v1}"), "app:v2");
        assert_eq!(i("${TAG:+set}|${NOPE:+set}|${EMPTY+set}"), "set||set");
        assert_eq!(i("cost $$5 ${NOPE}"), "cost $5 ");
        assert_eq!(
            i("app:${NOPE:-${TAG}}"),
            "app:v2",
            "a default may hold a variable"
        );
        assert_eq!(i("no variables"), "no variables");
    }

    #[test]
    fn records_what_it_looked_up() {
        let r = interpolate("${REPO}:${NOPE:-$TAG}", &vars()).unwrap();
        assert_eq!(r.vars, ["REPO", "NOPE", "TAG"]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            interpolate("${NOPE:?set NOPE in .env}", &vars())
                .unwrap_err()
                .contains("NOPE is required: set NOPE in .env")
        );
        assert!(interpolate("${EMPTY?x}", &vars()).is_ok());
        assert!(
            interpolate("app:${TAG", &vars())
                .unwrap_err()
                .contains("closing")
        );
        assert!(interpolate("app:$ x", &vars()).unwrap_err().contains("$$"));
        assert!(interpolate("${TAG%%x}", &vars()).is_err());
    }
}
