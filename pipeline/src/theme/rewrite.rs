//! Theme SQL as a syntax tree: parsed once with sqlparser (the parser
//! DataFusion itself uses), parameters substituted and window calls replaced
//! on the tree, then handed to the planner as a statement. Nothing here
//! edits text, so a `$name` or a `hop(` inside a comment or a quoted
//! identifier is never touched.

use crate::window::{parse_span, Span, WindowSpec};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// Columns the engine adds to a windowed source table.
pub const WINDOW_START_COL: &str = "__window_start";
pub const WINDOW_END_COL: &str = "__window_end";

/// The dialect DataFusion plans with by default (`sql_parser.dialect`).
const DIALECT: GenericDialect = GenericDialect {};

/// Parses `sql` as exactly one query.
pub fn parse_query(sql: &str) -> Result<Statement, String> {
    let mut statements = Parser::parse_sql(&DIALECT, sql).map_err(|e| e.to_string())?;
    match (statements.pop(), statements.is_empty()) {
        (Some(s @ Statement::Query(_)), true) => Ok(s),
        (None, _) => Err("the file holds no SQL after its header; write one SELECT".into()),
        (Some(_), true) => Err("a theme is one SELECT (or WITH … SELECT) query".into()),
        (Some(_), false) => {
            Err("a theme is one query; remove the other statements and the `;` between them".into())
        }
    }
}

fn parse_expr(text: &str) -> Result<Expr, String> {
    Parser::new(&DIALECT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("`{text}`: {e}"))
}

/// Replaces each placeholder `$name` with its parameter's value, and
/// `$name` inside string literals with the value's text (so
/// `interval '$zero_days days'` follows the parameter too).
pub fn substitute_params(
    stmt: &mut Statement,
    values: &BTreeMap<String, String>,
) -> Result<(), String> {
    let lookup = |name: &str| {
        values.get(name).ok_or_else(|| {
            format!("${name} is used but not declared; add `-- param: {name} = <default>`")
        })
    };
    let flow = datafusion::sql::sqlparser::ast::visit_expressions_mut(stmt, |e| {
        let Expr::Value(ValueWithSpan { value, .. }) = e else {
            return ControlFlow::Continue(());
        };
        let done = match value {
            Value::Placeholder(p) => match p.strip_prefix('$').map(lookup) {
                Some(Ok(v)) => parse_expr(v).map(|new| *e = new),
                Some(Err(msg)) => Err(msg),
                None => Err(format!("placeholder {p} is not a parameter; write `$name`")),
            },
            Value::SingleQuotedString(s) if s.contains('$') => {
                splice_in_string(s, &lookup).map(|new| *s = new)
            }
            _ => Ok(()),
        };
        match done {
            Ok(()) => ControlFlow::Continue(()),
            Err(msg) => ControlFlow::Break(msg),
        }
    });
    match flow {
        ControlFlow::Break(msg) => Err(msg),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn splice_in_string<'v>(
    s: &str,
    lookup: &impl Fn(&str) -> Result<&'v String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        out.push_str(lookup(&after[..len])?.trim_matches('\''));
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The span of an `interval '…'` window argument.
fn interval_arg(arg: &FunctionArg) -> Result<Span, String> {
    let bad = || "window arguments must be interval literals, e.g. interval '15 minutes'";
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Interval(i))) = arg else {
        return Err(bad().into());
    };
    let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(text),
        ..
    }) = i.value.as_ref()
    else {
        return Err(bad().into());
    };
    match (&i.leading_field, &i.last_field) {
        (None, None) => parse_span(text),
        (Some(unit), None) => parse_span(&format!("{text} {unit}")),
        _ => Err(bad().into()),
    }
}

fn window_of(name: &str, args: &FunctionArguments) -> Result<WindowSpec, String> {
    let FunctionArguments::List(list) = args else {
        return Err(format!(
            "{name} needs interval arguments, e.g. {name}(interval '1 day')"
        ));
    };
    let spans: Vec<Span> = list
        .args
        .iter()
        .map(interval_arg)
        .collect::<Result<_, _>>()?;
    match (name, spans.as_slice()) {
        ("tumble", [size]) => Ok(WindowSpec::Tumble(*size)),
        ("hop", [Span::Fixed(slide), Span::Fixed(size)]) => Ok(WindowSpec::Hop {
            slide: *slide,
            size: *size,
        }),
        ("cumulate", [Span::Fixed(step), max]) => Ok(WindowSpec::Cumulate {
            step: *step,
            max: *max,
        }),
        _ => Err(format!(
            "{name}({}) is not a window this engine knows: use tumble(size), hop(slide, size) or cumulate(step, max)",
            spans.len()
        )),
    }
}

/// Replaces each `tumble(…)`, `hop(…)` or `cumulate(…)` call with a struct
/// of the engine-provided window bounds, and returns the window.
pub fn rewrite_windows(stmt: &mut Statement) -> Result<Option<WindowSpec>, String> {
    let bounds = parse_expr(&format!(
        "named_struct('start', {WINDOW_START_COL}, 'end', {WINDOW_END_COL})"
    ))?;
    let mut spec: Option<WindowSpec> = None;
    let flow = datafusion::sql::sqlparser::ast::visit_expressions_mut(stmt, |e| {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let name = match f.name.0.as_slice() {
            [one] => one.to_string().to_ascii_lowercase(),
            _ => return ControlFlow::Continue(()),
        };
        if !matches!(name.as_str(), "tumble" | "hop" | "cumulate") {
            return ControlFlow::Continue(());
        }
        let this = match window_of(&name, &f.args) {
            Ok(w) => w,
            Err(msg) => return ControlFlow::Break(msg),
        };
        if spec.is_some_and(|s| s != this) {
            return ControlFlow::Break(
                "a theme has one window; all window calls must be the same".into(),
            );
        }
        spec = Some(this);
        *e = bounds.clone();
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(msg) => Err(msg),
        ControlFlow::Continue(()) => Ok(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{DAY_MS, MINUTE_MS};

    fn rewrite(sql: &str, params: &[(&str, &str)]) -> Result<(String, Option<WindowSpec>), String> {
        let values = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut stmt = parse_query(sql)?;
        substitute_params(&mut stmt, &values)?;
        let w = rewrite_windows(&mut stmt)?;
        Ok((stmt.to_string(), w))
    }

    #[test]
    fn parameters_replace_placeholders_and_text_in_strings_only() {
        let (sql, w) = rewrite(
            "SELECT hop(interval '1 day', interval '$n days') AS window, \"$n\" FROM t -- $gone\n\
             WHERE x > $ratio AND y = $name",
            &[("n", "7"), ("ratio", "1.2"), ("name", "'a b'")],
        )
        .unwrap();
        assert!(sql.contains("x > 1.2 AND y = 'a b'"), "{sql}");
        assert!(sql.contains("\"$n\""), "quoted identifiers stay: {sql}");
        assert_eq!(
            w,
            Some(WindowSpec::Hop {
                slide: DAY_MS,
                size: 7 * DAY_MS
            })
        );
        let e = rewrite("SELECT a FROM t WHERE a > $nope", &[]).unwrap_err();
        assert!(e.contains("$nope is used but not declared"), "{e}");
    }

    #[test]
    fn windows_become_the_bound_columns() {
        let (sql, w) = rewrite(
            "SELECT TUMBLE(INTERVAL '15' MINUTE) AS window, c FROM t GROUP BY window, c",
            &[],
        )
        .unwrap();
        assert_eq!(w, Some(WindowSpec::Tumble(Span::Fixed(15 * MINUTE_MS))));
        assert!(
            sql.contains("named_struct('start', __window_start, 'end', __window_end)"),
            "{sql}"
        );
        let mixed = "SELECT tumble(interval '1 day') AS a, tumble(interval '2 days') AS b FROM t";
        assert!(rewrite(mixed, &[]).unwrap_err().contains("one window"));
        let bad = rewrite("SELECT hop(interval '1 day') FROM t", &[]).unwrap_err();
        assert!(bad.contains("hop(1) is not a window"), "{bad}");
        let not_interval = rewrite("SELECT tumble(15) FROM t", &[]).unwrap_err();
        assert!(not_interval.contains("interval literals"), "{not_interval}");
    }

    #[test]
    fn only_one_query_is_accepted() {
        assert!(parse_query("SELECT 1; SELECT 2")
            .unwrap_err()
            .contains("one query"));
        assert!(parse_query("DROP TABLE customers")
            .unwrap_err()
            .contains("SELECT"));
        assert!(parse_query("-- nothing\n").unwrap_err().contains("no SQL"));
        assert!(parse_query("SELECT FROM WHERE (").is_err());
    }
}
