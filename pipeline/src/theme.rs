//! A theme (稽查主题) is one SQL file: a header of `-- key: value` lines
//! and one SELECT in the Arroyo dialect (`tumble`/`hop`/`cumulate` in
//! `GROUP BY`, bounds read as `window.start`/`window.end`). This module reads
//! the file, substitutes parameters and rewrites the window call so that
//! DataFusion can run it over rows the engine has already assigned to windows.

use crate::window::{parse_span, Span, WindowSpec};
use std::collections::{BTreeMap, BTreeSet};

/// The event table a theme reads; exactly one per theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceTable {
    LoadPoint,
    MeterDay,
    MeterEvent,
    Bill,
}

impl SourceTable {
    pub const ALL: [SourceTable; 4] = [
        SourceTable::LoadPoint,
        SourceTable::MeterDay,
        SourceTable::MeterEvent,
        SourceTable::Bill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceTable::LoadPoint => "load_point",
            SourceTable::MeterDay => "meter_day",
            SourceTable::MeterEvent => "meter_event",
            SourceTable::Bill => "bill",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub default: String,
    pub doc: String,
}

#[derive(Debug, Clone)]
pub struct ThemeDef {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub description: String,
    pub params: Vec<Param>,
    /// The file as written.
    pub source: String,
    /// Parameters substituted, window call rewritten: what DataFusion runs.
    pub sql: String,
    pub window: Option<WindowSpec>,
    pub table: SourceTable,
    /// Every identifier in `sql`, lower-cased; None when it selects `*`.
    words: Option<BTreeSet<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("theme {theme}: {message}")]
pub struct ThemeError {
    pub theme: String,
    pub message: String,
}

/// Columns the engine adds to a windowed source table.
pub const WINDOW_START_COL: &str = "__window_start";
pub const WINDOW_END_COL: &str = "__window_end";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(usize, usize),
    Str(usize, usize),
    Other(usize),
}

/// Splits SQL into identifiers and string literals, skipping comments, so
/// that rewrites never touch text inside quotes or comments.
fn tokens(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'\'' {
            let s = i;
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s, i.min(b.len())));
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let s = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s, i));
        } else {
            out.push(Tok::Other(i));
            i += 1;
        }
    }
    out
}

impl ThemeDef {
    /// Reads a theme file. `overrides` replace parameter defaults
    /// (deployment config), by parameter name.
    pub fn parse(
        file_text: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<ThemeDef, ThemeError> {
        let mut header: BTreeMap<String, String> = BTreeMap::new();
        let mut params = Vec::new();
        let mut description = Vec::new();
        for line in file_text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("--") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let rest = rest.trim();
            match rest.split_once(':') {
                Some(("param", p)) => {
                    let (assign, doc) = p.split_once("--").unwrap_or((p, ""));
                    let (name, default) = assign.split_once('=').ok_or_else(|| ThemeError {
                        theme: header.get("theme").cloned().unwrap_or_default(),
                        message: format!("parameter line `{rest}` must read `-- param: name = value -- what it means`"),
                    })?;
                    params.push(Param {
                        name: name.trim().into(),
                        default: default.trim().into(),
                        doc: doc.trim().into(),
                    });
                }
                Some((k, v)) if !k.contains(' ') => {
                    header.insert(k.trim().to_string(), v.trim().to_string());
                }
                _ => description.push(rest.to_string()),
            }
        }
        let id = header.get("theme").cloned().ok_or_else(|| ThemeError {
            theme: "?".into(),
            message: "the file must start with a `-- theme: <id>` line".into(),
        })?;
        let err = |message: String| ThemeError {
            theme: id.clone(),
            message,
        };
        if id.is_empty()
            || !id
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(err(format!("id {id:?} must be lower_snake_case")));
        }
        let mut values: BTreeMap<String, String> = params
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect();
        for (k, v) in overrides {
            if let Some(slot) = values.get_mut(k) {
                *slot = v.clone();
            }
        }
        for (k, v) in &values {
            if v.parse::<rust_decimal::Decimal>().is_err()
                && !(v.starts_with('\'') && v.ends_with('\''))
            {
                return Err(err(format!(
                    "parameter {k} = {v:?} must be a number or a quoted string"
                )));
            }
        }
        let substituted = substitute_params(file_text, &values).map_err(&err)?;
        let (sql, window) = rewrite_windows(&substituted).map_err(&err)?;
        let table = source_table(&sql).map_err(&err)?;
        if let Some(w) = &window {
            w.validate().map_err(&err)?;
        }
        Ok(ThemeDef {
            title: header.get("title").cloned().unwrap_or_else(|| id.clone()),
            severity: header
                .get("severity")
                .cloned()
                .unwrap_or_else(|| "medium".into()),
            description: description.join(" "),
            id,
            params,
            source: file_text.to_string(),
            words: identifiers_unless_wildcard(&sql),
            sql: sql.trim().trim_end_matches(';').to_string(),
            window,
            table,
        })
    }

    /// Whether the query may read source column `column`: it names it
    /// somewhere (a superset: comments and strings count too) or selects `*`.
    pub fn reads(&self, column: &str) -> bool {
        self.words.as_ref().is_none_or(|w| w.contains(column))
    }

    pub fn is_billing(&self) -> bool {
        self.table == SourceTable::Bill
    }
}

/// The identifiers of `sql`, lower-cased as DataFusion folds unquoted ones,
/// or None if it has a wildcard `*` (after SELECT, DISTINCT, ALL, a comma or
/// a dot; not `count(*)` or a multiplication).
fn identifiers_unless_wildcard(sql: &str) -> Option<BTreeSet<String>> {
    let mut words = BTreeSet::new();
    let mut word = String::new();
    let mut prev = String::new();
    for ch in sql.chars().chain(std::iter::once(' ')) {
        if ch.is_alphanumeric() || ch == '_' {
            word.extend(ch.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            prev = std::mem::take(&mut word);
            words.insert(prev.clone());
        }
        if ch == '*' && matches!(prev.as_str(), "select" | "distinct" | "all" | "," | ".") {
            return None;
        }
        if !ch.is_whitespace() {
            prev = ch.to_string();
        }
    }
    Some(words)
}

/// Replaces `$name` with the parameter's value, in SQL and inside string
/// literals (so `interval '$zero_days days'` follows the parameter too), but
/// never inside comments.
fn substitute_params(sql: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let lookup = |name: &str| {
        values.get(name).cloned().ok_or_else(|| {
            format!("${name} is used but not declared; add `-- param: {name} = <default>`")
        })
    };
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for t in tokens(sql) {
        match t {
            Tok::Ident(s, e) if sql.as_bytes()[s] == b'$' => {
                out.push_str(&sql[last..s]);
                out.push_str(&lookup(&sql[s + 1..e])?);
                last = e;
            }
            Tok::Str(s, e) if sql[s..e].contains('$') => {
                out.push_str(&sql[last..s]);
                let lit = &sql[s..e];
                let mut rest = lit;
                while let Some(i) = rest.find('$') {
                    out.push_str(&rest[..i]);
                    let name_len = rest[i + 1..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len() - i - 1);
                    let value = lookup(&rest[i + 1..i + 1 + name_len])?;
                    out.push_str(value.trim_matches('\''));
                    rest = &rest[i + 1 + name_len..];
                }
                out.push_str(rest);
                last = e;
            }
            _ => {}
        }
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

fn interval_arg(sql: &str, toks: &[Tok]) -> Result<Span, String> {
    match toks {
        [Tok::Ident(s, e), Tok::Str(a, b)] if sql[*s..*e].eq_ignore_ascii_case("interval") => {
            parse_span(&sql[a + 1..b - 1])
        }
        _ => Err("window arguments must be interval literals, e.g. interval '15 minutes'".into()),
    }
}

/// Finds `tumble(...)`, `hop(...)` or `cumulate(...)` and replaces each with
/// a struct of the engine-provided window bounds.
fn rewrite_windows(sql: &str) -> Result<(String, Option<WindowSpec>), String> {
    let toks = tokens(sql);
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    let mut spec: Option<WindowSpec> = None;
    let mut i = 0;
    while i < toks.len() {
        let Tok::Ident(s, e) = toks[i] else {
            i += 1;
            continue;
        };
        let name = sql[s..e].to_ascii_lowercase();
        let is_call = matches!(toks.get(i + 1), Some(Tok::Other(p)) if sql.as_bytes()[*p] == b'(');
        if !is_call || !matches!(name.as_str(), "tumble" | "hop" | "cumulate") {
            i += 1;
            continue;
        }
        // collect top-level arguments up to the matching ')'
        let mut depth = 0;
        let mut args: Vec<Vec<Tok>> = vec![Vec::new()];
        let mut j = i + 2;
        let close = loop {
            let Some(t) = toks.get(j) else {
                return Err(format!("{name}( is not closed"));
            };
            match t {
                Tok::Other(p) if sql.as_bytes()[*p] == b'(' => depth += 1,
                Tok::Other(p) if sql.as_bytes()[*p] == b')' => {
                    if depth == 0 {
                        break *p;
                    }
                    depth -= 1;
                }
                Tok::Other(p) if sql.as_bytes()[*p] == b',' && depth == 0 => {
                    args.push(Vec::new());
                    j += 1;
                    continue;
                }
                Tok::Other(p) if sql.as_bytes()[*p].is_ascii_whitespace() => {
                    j += 1;
                    continue;
                }
                _ => {}
            }
            if let Some(a) = args.last_mut() {
                a.push(t.clone());
            }
            j += 1;
        };
        let spans: Vec<Span> = args
            .iter()
            .map(|a| interval_arg(sql, a))
            .collect::<Result<_, _>>()?;
        let this = match (name.as_str(), spans.as_slice()) {
            ("tumble", [size]) => WindowSpec::Tumble(*size),
            ("hop", [Span::Fixed(slide), Span::Fixed(size)]) => WindowSpec::Hop { slide: *slide, size: *size },
            ("cumulate", [Span::Fixed(step), max]) => WindowSpec::Cumulate { step: *step, max: *max },
            _ => {
                return Err(format!(
                    "{name}({}) is not a window this engine knows: use tumble(size), hop(slide, size) or cumulate(step, max)",
                    args.len()
                ))
            }
        };
        if spec.is_some_and(|s| s != this) {
            return Err("a theme has one window; all window calls must be the same".into());
        }
        spec = Some(this);
        out.push_str(&sql[last..s]);
        out.push_str(&format!(
            "named_struct('start', {WINDOW_START_COL}, 'end', {WINDOW_END_COL})"
        ));
        last = close + 1;
        i = j + 1;
    }
    out.push_str(&sql[last..]);
    Ok((out, spec))
}

fn source_table(sql: &str) -> Result<SourceTable, String> {
    let mut found: Vec<SourceTable> = Vec::new();
    for t in tokens(sql) {
        if let Tok::Ident(s, e) = t {
            let word = sql[s..e].to_ascii_lowercase();
            if let Some(st) = SourceTable::ALL.into_iter().find(|st| st.name() == word) {
                if !found.contains(&st) {
                    found.push(st);
                }
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err("reads no event table: use one of load_point, meter_day, meter_event, bill".into()),
        many => Err(format!(
            "reads {} event tables ({}); a theme reads exactly one (join reference tables such as customers freely)",
            many.len(),
            many.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MINUTE_MS;

    const SRC: &str = "-- theme: demo\n-- title: 演示\n-- param: ratio = 1.2 -- the factor\n\
        SELECT window.start AS window_start, customer_id FROM (\n\
          SELECT hop(interval '15 minutes', INTERVAL '30 minutes') AS window, customer_id, sum(p_kw) AS kw\n\
          FROM load_point -- 'hop(' in a comment stays\n GROUP BY window, customer_id) WHERE kw > $ratio * 10";

    /// Source columns a theme never names are left out of its table; a
    /// wildcard keeps them all. The engine validates themes against the
    /// projected table, so a miss here would show as a theme that fails to
    /// load, not as a wrong result.
    #[test]
    fn reads_only_named_columns_unless_wildcard() {
        let t = ThemeDef::parse(SRC, &BTreeMap::new()).unwrap();
        assert!(t.reads("p_kw") && t.reads("customer_id"));
        assert!(!t.reads("q_kvar") && !t.reads("meter_id"));
        let with = |sql: &str| {
            ThemeDef::parse(&format!("-- theme: t\n{sql}"), &BTreeMap::new())
                .unwrap()
                .reads("q_kvar")
        };
        assert!(with("SELECT * FROM load_point"));
        assert!(with("select distinct lp.* from load_point lp"));
        assert!(with("SELECT customer_id, * FROM load_point"));
        assert!(with("SELECT customer_id FROM load_point WHERE Q_KVAR > 0"));
        assert!(!with(
            "SELECT customer_id, count(*) AS n FROM load_point GROUP BY 1"
        ));
        assert!(!with("SELECT customer_id, p_kw * 2 AS x FROM load_point"));
    }

    #[test]
    fn parses_header_params_and_window() {
        let t = ThemeDef::parse(SRC, &BTreeMap::new()).unwrap();
        assert_eq!(t.id, "demo");
        assert_eq!(t.params[0].name, "ratio");
        assert_eq!(
            t.window,
            Some(WindowSpec::Hop {
                slide: 15 * MINUTE_MS,
                size: 30 * MINUTE_MS
            })
        );
        assert_eq!(t.table, SourceTable::LoadPoint);
        assert!(
            t.sql.contains("named_struct('start', __window_start"),
            "{}",
            t.sql
        );
        assert!(t.sql.contains("kw > 1.2 * 10"));
        assert!(t.sql.contains("'hop(' in a comment"));
    }

    #[test]
    fn overrides_and_errors() {
        let mut o = BTreeMap::new();
        o.insert("ratio".to_string(), "1.5".to_string());
        assert!(ThemeDef::parse(SRC, &o)
            .unwrap()
            .sql
            .contains("kw > 1.5 * 10"));
        let undeclared = SRC.replace("$ratio", "$nope");
        assert!(ThemeDef::parse(&undeclared, &BTreeMap::new())
            .unwrap_err()
            .message
            .contains("$nope"));
        let two = SRC.replace(
            "FROM load_point",
            "FROM load_point JOIN meter_day USING (meter_id)",
        );
        assert!(ThemeDef::parse(&two, &BTreeMap::new()).is_err());
        assert!(ThemeDef::parse("SELECT 1", &BTreeMap::new()).is_err());
    }
}
