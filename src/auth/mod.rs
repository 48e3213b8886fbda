//! Access control of the HTTP API (`jicha run --auth FILE`): bearer tokens
//! from a TOML file ([`tokens`]), each with a name, a role and an org unit.
//! [`authenticate`] runs before every route: `/healthz` and the wallboard
//! page (which holds no data) are open, `/metrics` is open only with
//! `metrics_public = true`, everything else needs a valid token (401).
//! Each route then requires a [`Right`] of the caller's role (403, see
//! `api::router`), and the runtime shows the caller only its unit's subtree
//! ([`Scope`]), answering 404 for an order outside it.
//!
//! Without `--auth` every request is served as an unnamed admin of the
//! whole province; `jicha run` then listens on loopback only
//! ([`check_listen`]).

pub mod tokens;

use anyhow::{bail, Result};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jicha_pipeline::org::Scope;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
pub use tokens::{Right, Role, Tokens};
use tokio::sync::watch;

/// The token file and how `/metrics` is served; the tokens are swapped in
/// place when the file is read again (SIGHUP).
pub struct Auth {
    file: Option<PathBuf>,
    tokens: RwLock<Option<Arc<Tokens>>>,
    metrics_public: bool,
}

impl Auth {
    /// Reads the token file, if one is given; a bad file stops the start.
    pub fn open(file: Option<&Path>, metrics_public: bool) -> Result<Arc<Auth>> {
        let tokens = file.map(Tokens::load).transpose()?.map(Arc::new);
        Ok(Arc::new(Auth {
            file: file.map(Path::to_path_buf),
            tokens: RwLock::new(tokens),
            metrics_public,
        }))
    }

    /// No access control: loopback use, tests, `jicha demo`.
    pub fn off() -> Arc<Auth> {
        Arc::new(Auth {
            file: None,
            tokens: RwLock::new(None),
            metrics_public: true,
        })
    }

    /// Whether a token file is in force.
    pub fn is_on(&self) -> bool {
        self.file.is_some()
    }

    fn tokens(&self) -> Option<Arc<Tokens>> {
        // A poisoned lock still holds the last tokens: never fall open.
        match self.tokens.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the file again; a file that no longer reads keeps the tokens
    /// in force, and says why.
    pub fn reload(&self) {
        let Some(path) = &self.file else { return };
        match Tokens::load(path) {
            Ok(t) => {
                let mut slot = match self.tokens.write() {
                    Ok(slot) => slot,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *slot = Some(Arc::new(t));
                tracing::info!(file = %path.display(), "token file read again");
            }
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "token file not reloaded; the previous tokens stay in force until it is fixed"
            ),
        }
    }

    /// Reads the file again on every SIGHUP until `shutdown` flips.
    pub fn reload_on_sighup(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        let auth = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    Some(()) = hup.recv() => auth.reload(),
                }
            }
        });
        Ok(())
    }
}

/// Who is asking, as the routes see it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name; `None` without access control.
    pub name: Option<String>,
    pub role: Role,
    pub scope: Scope,
}

impl Caller {
    /// 403 unless the caller's role has `right`.
    pub fn require(&self, right: Right) -> Result<(), Forbidden> {
        if self.role.may(right) {
            return Ok(());
        }
        Err(Forbidden(format!(
            "role {} may not do this ({right:?} is needed); ask an administrator for a token with that right",
            self.role.as_str()
        )))
    }
}

/// A caller's role lacks the right: 403 with the reason.
#[derive(Debug)]
pub struct Forbidden(String);

impl IntoResponse for Forbidden {
    fn into_response(self) -> Response {
        refuse(StatusCode::FORBIDDEN, self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "route served without authentication".into(),
            )
        })
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn refuse(status: StatusCode, error: String) -> Response {
    let mut r = (status, Json(ErrorBody { error })).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// Whether `path` is served without a token.
fn open_path(auth: &Auth, path: &str) -> bool {
    path == "/healthz" || path == "/" || (path == "/metrics" && auth.metrics_public)
}

/// Finds the caller of every request (401 without a valid token where one
/// is needed) and hands it to the route as a [`Caller`].
pub async fn authenticate(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let caller = match auth.tokens() {
        None => Caller {
            name: None,
            role: Role::Admin,
            scope: Scope::All,
        },
        Some(tokens) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match presented.and_then(|t| tokens.find(t)) {
                Some(g) => Caller {
                    name: Some(g.name.clone()),
                    role: g.role,
                    scope: Scope::Unit(g.org.clone()),
                },
                None if open_path(&auth, req.uri().path()) => return next.run(req).await,
                None => {
                    let why = if presented.is_some() {
                        "the bearer token is not valid"
                    } else {
                        "no bearer token"
                    };
                    return refuse(
                        StatusCode::UNAUTHORIZED,
                        format!("{why}; send Authorization: Bearer TOKEN with a token from the --auth file"),
                    );
                }
            }
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Without access control the API must not be reachable from elsewhere:
/// refuses an address that is not loopback.
pub fn check_listen(addr: &str, auth_on: bool) -> Result<()> {
    if auth_on {
        return Ok(());
    }
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "refusing to serve the API on {addr} without access control: anyone who reaches it could change the archive, billing, work orders and themes; \
             give a token file with --auth FILE (see deploy/auth.example.toml), or listen on 127.0.0.1"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_listen;

    #[test]
    fn only_loopback_without_auth() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:80",
            "[::1]:8080",
            "127.0.0.2:1",
        ] {
            assert!(check_listen(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0:8080",
            "10.1.2.3:8080",
            "[::]:8080",
            "jicha.example:80",
        ] {
            let e = check_listen(bad, false).unwrap_err().to_string();
            assert!(e.contains("--auth"), "{bad}: {e}");
            assert!(check_listen(bad, true).is_ok());
        }
    }
}
