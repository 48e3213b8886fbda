//! The wallboard's live feed: `GET /api/v1/wallboard` (the figures once)
//! and `GET /api/v1/wallboard/stream` (server-sent events, one `summary`
//! event whenever committed work orders changed, at most once a second).
//!
//! One hub task builds the [`Board`] for everyone — after commits, and on a
//! slow tick so "today" and the ages move on an idle day — and each stream
//! only cuts it down to its caller's unit ([`super::wallboard_view`]). The
//! hub builds nothing while no wallboard is open, and it ends with the
//! server, which closes every stream so a graceful shutdown is not held up.

use super::wallboard_view::WallboardView;
use super::App;
use crate::auth::Caller;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures::stream::{self, Stream};
use jicha_pipeline::runtime::Board;
use jicha_pipeline::Monitor;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};
use tokio::time::Instant;

/// Boards are built at most this often, however fast commits come.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// And at least this often while a wallboard is open.
const TICK: Duration = Duration::from_secs(15);

/// What the hub offers the streams.
#[derive(Clone)]
enum Feed {
    /// No board built yet.
    Waiting,
    Ready(Arc<Board>),
    /// The server is stopping: streams end.
    Closed,
}

#[derive(Clone)]
pub struct LiveHub {
    /// Held here and by the hub task; each open stream subscribes, so the
    /// receiver count is the number of open wallboards.
    feed: Arc<watch::Sender<Feed>>,
    /// Asks the hub for a board now (a wallboard just connected).
    wake: Arc<Notify>,
}

impl LiveHub {
    /// Starts the hub task; it ends when `shutdown` flips.
    pub fn start(m: Arc<Monitor>, mut shutdown: watch::Receiver<bool>) -> LiveHub {
        let hub = LiveHub {
            feed: Arc::new(watch::channel(Feed::Waiting).0),
            wake: Arc::new(Notify::new()),
        };
        let (feed, wake) = (hub.feed.clone(), hub.wake.clone());
        tokio::spawn(async move {
            let mut committed = m.subscribe_committed();
            let mut last_build: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = wake.notified() => {}
                    r = committed.recv() => match r {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tokio::time::sleep(TICK) => {}
                }
                if feed.receiver_count() == 0 {
                    continue;
                }
                if let Some(t) = last_build {
                    tokio::time::sleep_until(t + MIN_INTERVAL).await;
                }
                // Commits that arrived while waiting are in this build.
                while committed.try_recv().is_ok() {}
                last_build = Some(Instant::now());
                feed.send_replace(Feed::Ready(Arc::new(m.board().await)));
            }
            feed.send_replace(Feed::Closed);
        });
        hub
    }
}

/// The wallboard's figures for the caller's unit, once.
pub async fn summary(State(m): App, caller: Caller) -> Json<WallboardView> {
    Json(WallboardView::new(
        &m.board().await,
        &caller.scope,
        m.clock(),
    ))
}

/// The same figures as a stream of `summary` events.
pub async fn stream(
    State(m): App,
    Extension(hub): Extension<LiveHub>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut feed = hub.feed.subscribe();
    // The board held now may be minutes old: send it at once, and let the
    // hub build a fresh one right behind it.
    feed.mark_changed();
    hub.wake.notify_one();
    let scope = caller.scope;
    let events = stream::unfold(feed, move |mut feed| {
        let scope = scope.clone();
        let m = m.clone();
        async move {
            loop {
                feed.changed().await.ok()?;
                let current = feed.borrow_and_update().clone();
                let board = match current {
                    Feed::Waiting => continue,
                    Feed::Closed => return None,
                    Feed::Ready(b) => b,
                };
                let view = WallboardView::new(&board, &scope, m.clock());
                match Event::default().event("summary").json_data(&view) {
                    Ok(e) => return Some((Ok(e), feed)),
                    Err(e) => tracing::error!(error = %e, "wallboard summary not serialisable"),
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
