//! `GET /sla?window=24h`: SLA compliance from the store's job history
//! ([`ffrtmp_core::sla`]).

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::body::json;
use crate::error::ApiError;
use crate::routes::AppState;

/// The window when the query gives none.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The window of a `/sla` query: `window=<24h|7d|90m|seconds>`, nothing else.
pub(crate) fn parse_query(raw: &str) -> Result<Duration, ApiError> {
    let mut window = DEFAULT_WINDOW;
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "window" => {
                window = ffrtmp_core::sla::parse_window(value).map_err(|e| ApiError::bad_request("invalid_query", e))?
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown parameter {other:?}: /sla takes window (e.g. window=24h)"),
                ))
            }
        }
    }
    Ok(window)
}

pub(crate) async fn sla(state: &AppState, query: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let window = parse_query(query)?;
    let report = ffrtmp_core::sla::collect(state.store.as_ref(), window, ffrtmp_core::now_ms()).await?;
    json(StatusCode::OK, &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_query("").unwrap(), DEFAULT_WINDOW);
        assert_eq!(parse_query("window=7d").unwrap(), Duration::from_secs(7 * 86_400));
        for bad in ["window=soon", "window=", "limit=3", "window=400d"] {
            let e = parse_query(bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
