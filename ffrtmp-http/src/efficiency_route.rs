//! `GET /nodes/efficiency?window=24h`: median J/frame, fps and quality per (node, encoder,
//! scenario) from the store's job history ([`ffrtmp_core::efficiency`]).

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::body::json;
use crate::error::ApiError;
use crate::routes::AppState;

/// The window of a `/nodes/efficiency` query: `window=<24h|7d|90m|seconds>`, nothing else.
fn parse_query(raw: &str) -> Result<Duration, ApiError> {
    let mut window = crate::sla_route::DEFAULT_WINDOW;
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "window" => {
                window = ffrtmp_core::sla::parse_window(value).map_err(|e| ApiError::bad_request("invalid_query", e))?
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown parameter {other:?}: /nodes/efficiency takes window (e.g. window=24h)"),
                ))
            }
        }
    }
    Ok(window)
}

pub(crate) async fn efficiency(state: &AppState, query: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let window = parse_query(query)?;
    let table = ffrtmp_core::efficiency::collect(state.store.as_ref(), window, ffrtmp_core::now_ms()).await?;
    json(StatusCode::OK, &table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_query("").unwrap(), crate::sla_route::DEFAULT_WINDOW);
        assert_eq!(parse_query("window=90m").unwrap(), Duration::from_secs(5_400));
        for bad in ["window=soon", "window=", "node=a", "window=400d"] {
            let e = parse_query(bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
