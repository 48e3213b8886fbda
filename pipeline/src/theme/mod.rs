//! A theme (稽查主题) is one SQL file: a header of `-- key: value` lines
//! and one SELECT in the Arroyo dialect (`tumble`/`hop`/`cumulate` in
//! `GROUP BY`, bounds read as `window.start`/`window.end`). This module reads
//! the header; [`rewrite`] substitutes parameters and replaces the window
//! call on the syntax tree, so that DataFusion can run the query over rows
//! the engine has already assigned to windows. Which table and columns a
//! theme reads is not guessed here: the engine takes it from the plan
//! ([`crate::engine::Theme`]).

pub mod rewrite;

pub use rewrite::{WINDOW_END_COL, WINDOW_START_COL};

use crate::closed_set::closed_set;
use crate::window::WindowSpec;
use datafusion::sql::sqlparser::ast::Statement;
use std::collections::BTreeMap;

closed_set!(
    /// How serious a finding is, lowest first: a sink's minimum severity
    /// compares in this order.
    Severity {
        Info => "info",
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub default: String,
    pub doc: String,
}

impl Severity {
    /// The Chinese name people read on the wallboard and in pushes.
    pub fn label_zh(self) -> &'static str {
        match self {
            Severity::Info => "提示",
            Severity::Low => "低",
            Severity::Medium => "中",
            Severity::High => "高",
            Severity::Critical => "严重",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ThemeDef {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub params: Vec<Param>,
    /// The file as written.
    pub source: String,
    /// Parameters substituted, window call rewritten: what DataFusion plans.
    pub statement: Statement,
    /// `statement` as SQL text, for messages and as the plan cache's key.
    pub sql: String,
    pub window: Option<WindowSpec>,
}

#[derive(Debug, thiserror::Error)]
#[error("theme {theme}: {message}")]
pub struct ThemeError {
    pub theme: String,
    pub message: String,
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
        let mut statement = rewrite::parse_query(file_text).map_err(&err)?;
        rewrite::substitute_params(&mut statement, &values).map_err(&err)?;
        let window = rewrite::rewrite_windows(&mut statement).map_err(&err)?;
        if let Some(w) = &window {
            w.validate().map_err(&err)?;
        }
        let severity = match header.get("severity") {
            None => Severity::Medium,
            Some(s) => Severity::parse(s).ok_or_else(|| {
                err(format!(
                    "severity {s:?} is not one of {}",
                    Severity::ALL.join(", ")
                ))
            })?,
        };
        Ok(ThemeDef {
            title: header.get("title").cloned().unwrap_or_else(|| id.clone()),
            severity,
            description: description.join(" "),
            id,
            params,
            source: file_text.to_string(),
            sql: statement.to_string(),
            statement,
            window,
        })
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
        assert!(
            t.sql.contains("named_struct('start', __window_start"),
            "{}",
            t.sql
        );
        assert!(t.sql.contains("kw > 1.2 * 10"));
        assert!(
            !t.sql.contains("a comment"),
            "comments are not part of the tree"
        );
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
        assert!(ThemeDef::parse("SELECT 1", &BTreeMap::new()).is_err());
        let two = format!("{SRC};\nSELECT 2");
        assert!(ThemeDef::parse(&two, &BTreeMap::new())
            .unwrap_err()
            .message
            .contains("one query"));
    }
}
