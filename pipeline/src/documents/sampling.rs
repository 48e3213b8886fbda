//! The bodies of `POST /api/v1/sampling` (a draw) and
//! `POST /api/v1/sampling/{id}/verdicts` (a sampled order's verdict).

use super::{decimal, note_text, read, short_text, DocumentError};
use crate::report::Period;
use rust_decimal::Decimal;
use serde::Deserialize;

/// `{"org": "41/4107/410727", "month": "2026-11", "seed": 42, "share": "0.1"}`;
/// `share` is optional (the configured one).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawRequest {
    pub org: String,
    pub month: Period,
    pub seed: u64,
    pub share: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrawDoc {
    org: String,
    month: String,
    seed: u64,
    #[serde(default, deserialize_with = "decimal::optional")]
    share: Option<Decimal>,
}

impl DrawRequest {
    pub fn parse(text: &str) -> Result<DrawRequest, DocumentError> {
        let d: DrawDoc = read(text)?;
        short_text("org", &d.org)?;
        if d.org.trim().is_empty() {
            return Err(DocumentError::at(
                "org",
                "is empty; name the unit to sample",
            ));
        }
        let month = Period::parse(&d.month)
            .ok()
            .filter(Period::is_month)
            .ok_or_else(|| {
                DocumentError::at(
                    "month",
                    format!("{:?} is not a month; write 2026-11", d.month),
                )
            })?;
        if let Some(s) = d.share {
            if s <= Decimal::ZERO || s > Decimal::ONE {
                return Err(DocumentError::at(
                    "share",
                    format!("{s} is not a share; use more than 0 and at most 1 (0.05 for 5 %)"),
                ));
            }
        }
        Ok(DrawRequest {
            org: d.org,
            month,
            seed: d.seed,
            share: d.share,
        })
    }
}

/// `{"workorder_id": "WO…", "result": "pass" | "fail", "reason": "…"}`
/// (`reason` required for `fail`); may carry `"actor"` (with access
/// control the token's name is used).
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictRequest {
    pub workorder_id: String,
    pub passed: bool,
    pub reason: Option<String>,
    pub actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Pass,
    Fail,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictDoc {
    workorder_id: String,
    result: Outcome,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

impl VerdictRequest {
    pub fn parse(text: &str) -> Result<VerdictRequest, DocumentError> {
        let d: VerdictDoc = read(text)?;
        short_text("workorder_id", &d.workorder_id)?;
        short_text("actor", d.actor.as_deref().unwrap_or(""))?;
        note_text("reason", d.reason.as_deref().unwrap_or(""))?;
        Ok(VerdictRequest {
            workorder_id: d.workorder_id,
            passed: matches!(d.result, Outcome::Pass),
            reason: d.reason,
            actor: d.actor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_and_verdicts_are_checked_field_by_field() {
        let d =
            DrawRequest::parse(r#"{"org": "41/4107", "month": "2026-11", "seed": 42}"#).unwrap();
        assert_eq!(
            (d.month.to_string(), d.seed, d.share),
            ("2026-11".into(), 42, None)
        );
        let d =
            DrawRequest::parse(r#"{"org": "41", "month": "2026-11", "seed": 1, "share": "0.10"}"#);
        assert_eq!(d.unwrap().share, Some(Decimal::new(10, 2)));
        for (body, field) in [
            (
                r#"{"org": "41", "month": "2026-11-03", "seed": 1}"#,
                "`month`",
            ),
            (
                r#"{"org": "41", "month": "2026-11", "seed": 1, "share": 1.5}"#,
                "`share`",
            ),
            (r#"{"org": "41", "month": "2026-11", "seed": -1}"#, "`seed`"),
            (r#"{"org": "", "month": "2026-11", "seed": 1}"#, "`org`"),
        ] {
            let e = DrawRequest::parse(body).unwrap_err().to_string();
            assert!(e.starts_with(field), "{body}: {e}");
        }
        let v = VerdictRequest::parse(
            r#"{"workorder_id": "WO1", "result": "fail", "reason": "未整改"}"#,
        )
        .unwrap();
        assert_eq!((v.passed, v.reason.as_deref()), (false, Some("未整改")));
        let e = VerdictRequest::parse(r#"{"workorder_id": "WO1", "result": "ok"}"#).unwrap_err();
        assert!(e.to_string().starts_with("`result`"), "{e}");
    }
}
