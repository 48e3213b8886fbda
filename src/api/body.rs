//! Request bodies as typed values. Each document format of interfaces.md
//! (archive, billing, whitelist entry, work-order action, theme) is parsed here, at
//! the edge, by the format's parser (shared with the files `jicha replay`
//! reads), so handlers and the runtime receive typed values and a bad body
//! answers 400 naming the field and, in a list, the entry.

use super::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use jicha_pipeline::archive::{Archive, Customer};
use jicha_pipeline::billing::{parse_billing, BillingPeriod};
use jicha_pipeline::whitelist::WhitelistEntry;
use jicha_pipeline::workorder::Action;
use jicha_pipeline::MonitorError;
use serde::Deserialize;

/// A document format a request body can carry.
pub trait Format: Sized {
    fn parse(text: &str) -> Result<Self, String>;
}

/// The body of a request, parsed as `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: Format> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        // Too large, or cut off: axum's own answer (413, 400).
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bad = |m: String| ApiError(MonitorError::BadRequest(m)).into_response();
        let text =
            std::str::from_utf8(&bytes).map_err(|e| bad(format!("body is not UTF-8: {e}")))?;
        T::parse(text).map(Body).map_err(bad)
    }
}

/// `{"customers": [...]}`.
pub struct ArchiveDocument(pub Vec<Customer>);

impl Format for ArchiveDocument {
    fn parse(text: &str) -> Result<Self, String> {
        Archive::parse_document(text)
            .map(ArchiveDocument)
            .map_err(|e| e.to_string())
    }
}

impl Format for BillingPeriod {
    fn parse(text: &str) -> Result<Self, String> {
        parse_billing(text).map_err(|e| e.to_string())
    }
}

impl Format for WhitelistEntry {
    fn parse(text: &str) -> Result<Self, String> {
        WhitelistEntry::parse(text).map_err(|e| e.to_string())
    }
}

/// A work-order action and who took it.
pub struct ActionRequest {
    pub action: Action,
    pub actor: Option<String>,
}

impl Format for ActionRequest {
    fn parse(text: &str) -> Result<Self, String> {
        Action::parse(text)
            .map(|(action, actor)| ActionRequest { action, actor })
            .map_err(|e| e.to_string())
    }
}

/// A theme's SQL file, or `{"sql": "…"}` holding it.
pub struct ThemeSource(pub String);

impl Format for ThemeSource {
    fn parse(text: &str) -> Result<Self, String> {
        if !text.trim_start().starts_with('{') {
            return Ok(ThemeSource(text.to_string()));
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wrapped {
            sql: String,
        }
        serde_json::from_str::<Wrapped>(text)
            .map(|w| ThemeSource(w.sql))
            .map_err(|e| format!("expected {{\"sql\": \"…\"}} or the SQL file itself: {e}"))
    }
}
