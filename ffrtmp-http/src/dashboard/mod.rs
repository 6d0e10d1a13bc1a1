//! The built-in web dashboard: a page under `/ui/` whose HTML, script and style are compiled
//! into the binary (no CDN, works offline), plus the two data routes only it needs.
//!
//! The page itself holds no data and needs no key; it asks for a read-only or user key, keeps
//! it in the browser's `sessionStorage` only, and sends it as `Authorization: Bearer` on every
//! data call (`/jobs`, `/nodes`, `/events` when the master has it, and the routes here).
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /ui/`, `GET /ui/{asset}` (no key) | the page, `app.js`, `app.css` |
//! | `GET /dashboard/history` | 200 [`HistoryView`]: farm fps and watts over the last hour |
//! | `GET /dashboard/bench` | 200 the [`BenchSource`]'s JSON; 404 `not_found` without one |

pub mod history;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::body::json;
use crate::error::ApiError;

pub use history::{History, HistoryPoint, HistoryView};

/// Results of `ffrtmp bench` the dashboard shows (baseline against test, with verdicts).
/// The HTTP crate does not know the bench file formats; `ffrtmp_bench::dashboard` implements it.
pub trait BenchSource: Send + Sync + 'static {
    /// The results as JSON, or why they could not be read.
    fn load(&self) -> Result<serde_json::Value, String>;
}

/// The dashboard's settings in [`ServerConfig`](crate::ServerConfig).
#[derive(Clone)]
pub struct DashboardConfig {
    /// Serve the page and its routes. Default `true`.
    pub enabled: bool,
    /// Where `GET /dashboard/bench` reads from; `None`: that route answers 404.
    pub bench: Option<Arc<dyn BenchSource>>,
    /// How often the farm's fps and watts are sampled for the charts. Default 10 s.
    pub sample_interval: Duration,
    /// How much history is kept (bounded by [`history::MAX_POINTS`] samples). Default 1 h.
    pub keep: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            bench: None,
            sample_interval: Duration::from_secs(10),
            keep: Duration::from_secs(3600),
        }
    }
}

impl fmt::Debug for DashboardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardConfig")
            .field("enabled", &self.enabled)
            .field("bench", &self.bench.is_some())
            .field("sample_interval", &self.sample_interval)
            .field("keep", &self.keep)
            .finish()
    }
}

/// The dashboard's state in a running server.
pub(crate) struct DashboardState {
    pub enabled: bool,
    pub bench: Option<Arc<dyn BenchSource>>,
    pub history: History,
}

impl DashboardState {
    pub(crate) fn new(config: &DashboardConfig) -> DashboardState {
        DashboardState {
            enabled: config.enabled,
            bench: config.bench.clone(),
            history: History::new(config.sample_interval, config.keep),
        }
    }
}

/// The compiled-in files: name, content type, bytes.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
];

/// Only this server's own files and calls; no inline script, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn disabled() -> ApiError {
    ApiError::not_found("the dashboard is disabled on this master")
}

/// `GET /ui/{name}` (`index.html` for `/ui/`).
pub(crate) fn asset(state: &DashboardState, name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    if !state.enabled {
        return Err(disabled());
    }
    let name = if name.is_empty() { "index.html" } else { name };
    let Some((_, content_type, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::not_found(format!("no dashboard file {name}")));
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// `GET /dashboard/history`.
pub(crate) fn history(state: &DashboardState) -> Result<Response<Full<Bytes>>, ApiError> {
    if !state.enabled {
        return Err(disabled());
    }
    json(StatusCode::OK, &state.history.view())
}

/// `GET /dashboard/bench`: read on each call, so new results show without a restart.
pub(crate) async fn bench(state: &DashboardState) -> Result<Response<Full<Bytes>>, ApiError> {
    if !state.enabled {
        return Err(disabled());
    }
    let Some(source) = state.bench.clone() else {
        return Err(ApiError::not_found(
            "no bench results on this master (start it with --bench-results DIR)",
        ));
    };
    let loaded = tokio::task::spawn_blocking(move || source.load())
        .await
        .map_err(|e| ApiError::internal(format!("reading bench results: {e}")))?;
    match loaded {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => Err(ApiError::internal(format!("reading bench results: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_compiled_in_with_their_types_and_unknown_names_are_404() {
        let state = DashboardState::new(&DashboardConfig::default());
        let page = asset(&state, "").unwrap();
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let js = asset(&state, "app.js").unwrap();
        assert!(js.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        for bad in ["../Cargo.toml", "nope.js", "app.js/x"] {
            assert_eq!(asset(&state, bad).unwrap_err().status(), StatusCode::NOT_FOUND, "{bad}");
        }
        for (name, _, body) in ASSETS {
            // The SVG namespace is a name, not a load.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "{name} loads nothing from elsewhere"
            );
        }
    }

    #[test]
    fn a_disabled_dashboard_serves_nothing() {
        let state = DashboardState::new(&DashboardConfig {
            enabled: false,
            ..DashboardConfig::default()
        });
        assert_eq!(asset(&state, "").unwrap_err().status(), StatusCode::NOT_FOUND);
        assert_eq!(history(&state).unwrap_err().status(), StatusCode::NOT_FOUND);
    }
}
