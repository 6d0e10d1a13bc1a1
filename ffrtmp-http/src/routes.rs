//! The routing table: which paths exist, their templates (metric labels), allowed methods,
//! the role each needs, and authentication in front of every route but `GET /health` and
//! `GET /openapi.json`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ffrtmp_core::JobStore;
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use hyper::body::Body;
use tokio::sync::{watch, Notify};

use crate::auth::{Keyring, Role, Roles};
use crate::error::ApiError;
use crate::handlers;
use crate::listen::PeerInfo;
use crate::metrics::{method_label, Metrics};

/// Everything a request handler may touch.
pub(crate) struct AppState {
    pub store: Arc<dyn JobStore>,
    pub keys: Keyring,
    /// Agent routes need a client certificate verified against the configured CA.
    pub agent_cert_required: bool,
    pub metrics: Arc<Metrics>,
    /// Notified after every change that may let a waiting claim succeed.
    pub work: Arc<Notify>,
    /// Becomes `true` when the server shuts down; long polls end early.
    pub shutdown: watch::Receiver<bool>,
    pub body_limit: usize,
    /// A whole request body must arrive within this time.
    pub body_timeout: std::time::Duration,
    /// The web dashboard's history ring and bench source.
    pub dashboard: crate::dashboard::DashboardState,
    /// The store as `store`, publishing to the event bus and keeping live progress.
    pub evented: Arc<crate::events::EventedStore>,
}

/// A matched route; `String`s are the raw path parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    Ready,
    Metrics,
    OpenApi,
    Scenarios,
    Jobs,
    Job(String),
    JobCancel(String),
    JobRetry(String),
    JobReport(String),
    Nodes,
    NodeRegister,
    NodeHeartbeat(String),
    NodeClaim(String),
    /// A compiled-in dashboard file (`""` for the page).
    UiAsset(String),
    DashboardHistory,
    DashboardBench,
    Sla,
    /// `GET /events` (server-sent events).
    Events,
    /// `POST /nodes/{id}/progress` (agent ticks).
    NodeProgress(String),
    /// `GET /nodes/efficiency`.
    NodesEfficiency,
}

impl Route {
    /// Matches a path (without query), ignoring one trailing slash.
    pub(crate) fn parse(path: &str) -> Option<Route> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let id = |s: &str| s.to_string();
        Some(match segments.as_slice() {
            ["health"] => Route::Health,
            ["ready"] => Route::Ready,
            ["metrics"] => Route::Metrics,
            ["openapi.json"] => Route::OpenApi,
            ["scenarios"] => Route::Scenarios,
            ["jobs"] => Route::Jobs,
            ["jobs", j] => Route::Job(id(j)),
            ["jobs", j, "cancel"] => Route::JobCancel(id(j)),
            ["jobs", j, "retry"] => Route::JobRetry(id(j)),
            ["jobs", j, "report"] => Route::JobReport(id(j)),
            ["nodes"] => Route::Nodes,
            ["nodes", "register"] => Route::NodeRegister,
            ["nodes", n, "heartbeat"] => Route::NodeHeartbeat(id(n)),
            ["nodes", n, "claim"] => Route::NodeClaim(id(n)),
            ["ui"] => Route::UiAsset(String::new()),
            ["ui", asset] => Route::UiAsset(id(asset)),
            ["dashboard", "history"] => Route::DashboardHistory,
            ["dashboard", "bench"] => Route::DashboardBench,
            ["sla"] => Route::Sla,
            ["events"] => Route::Events,
            ["nodes", n, "progress"] => Route::NodeProgress(id(n)),
            ["nodes", "efficiency"] => Route::NodesEfficiency,
            _ => return None,
        })
    }

    /// The route template, used as the `route` metric label.
    pub(crate) fn template(&self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::Ready => "/ready",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::Scenarios => "/scenarios",
            Route::Jobs => "/jobs",
            Route::Job(_) => "/jobs/{id}",
            Route::JobCancel(_) => "/jobs/{id}/cancel",
            Route::JobRetry(_) => "/jobs/{id}/retry",
            Route::JobReport(_) => "/jobs/{id}/report",
            Route::Nodes => "/nodes",
            Route::NodeRegister => "/nodes/register",
            Route::NodeHeartbeat(_) => "/nodes/{id}/heartbeat",
            Route::NodeClaim(_) => "/nodes/{id}/claim",
            Route::UiAsset(_) => "/ui/{asset}",
            Route::DashboardHistory => "/dashboard/history",
            Route::DashboardBench => "/dashboard/bench",
            Route::Sla => "/sla",
            Route::Events => "/events",
            Route::NodeProgress(_) => "/nodes/{id}/progress",
            Route::NodesEfficiency => "/nodes/efficiency",
        }
    }

    /// The role a request needs; `None` for the public `GET /health`. Reads need
    /// [`Role::ReadOnly`], which user keys also satisfy (see [`grants`]).
    pub(crate) fn role(&self, method: &Method) -> Option<Role> {
        match self {
            Route::Health if method == Method::GET => None,
            // The published document; clients read it before they have a key.
            Route::OpenApi if method == Method::GET => None,
            // The page holds no data; every call it makes needs a key.
            Route::UiAsset(_) if method == Method::GET || method == Method::HEAD => None,
            Route::JobReport(_)
            | Route::NodeRegister
            | Route::NodeHeartbeat(_)
            | Route::NodeClaim(_)
            | Route::NodeProgress(_) => Some(Role::Agent),
            _ if method == Method::GET || method == Method::HEAD => Some(Role::ReadOnly),
            _ => Some(Role::User),
        }
    }

    /// The methods the route answers.
    pub(crate) fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Jobs => &["GET", "POST"],
            Route::Health | Route::Ready | Route::Metrics | Route::Scenarios | Route::Job(_) | Route::Nodes => &["GET"],
            Route::OpenApi => &["GET"],
            Route::UiAsset(_) | Route::DashboardHistory | Route::DashboardBench => &["GET"],
            Route::Sla => &["GET"],
            Route::NodesEfficiency => &["GET"],
            Route::Events => &["GET"],
            _ => &["POST"],
        }
    }
}

/// Any response body: a whole JSON or text body, or a stream.
pub(crate) type AnyBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// Answers one request, streams (`GET /events`) included.
pub(crate) async fn handle_any<B>(state: &AppState, request: Request<B>) -> Response<AnyBody>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    if Route::parse(request.uri().path()) != Some(Route::Events) || request.method() != Method::GET {
        return handle(state, request).await.map(|b| b.boxed());
    }
    let started = Instant::now();
    let opened = authorize(state, &request, Role::ReadOnly)
        .and_then(|()| crate::events::sse::parse_filter(request.uri().query().unwrap_or("")));
    let response = match opened {
        Ok(filter) => {
            let abort = request.extensions().get::<crate::listen::ConnAbort>().cloned();
            crate::events::sse::open(&state.evented.events().bus, filter, state.shutdown.clone(), abort)
        }
        Err(err) => err.into_response().map(|b| b.boxed()),
    };
    let status = response.status().as_u16();
    state.metrics.observe("/events", "GET", status, started.elapsed());
    response
}

/// Metric label for paths that match no route.
const UNMATCHED: &str = "unmatched";

/// Answers one request; never fails, never panics on input.
pub(crate) async fn handle<B>(state: &AppState, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let route = Route::parse(request.uri().path());
    let template = route.as_ref().map_or(UNMATCHED, Route::template);
    let allowed = route.as_ref().map(Route::methods);
    let mut response = match dispatch(state, route, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if let (http::StatusCode::METHOD_NOT_ALLOWED, Some(allowed)) = (response.status(), allowed) {
        if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
            response.headers_mut().insert(header::ALLOW, value);
        }
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe(template, method_label(&method), status, elapsed);
    tracing::debug!(route = template, method = %method, status, elapsed_ms = elapsed.as_millis() as u64, "request");
    response
}

async fn dispatch<B>(
    state: &AppState,
    route: Option<Route>,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(route) = route else {
        // Any valid key learns that a path does not exist; no key learns nothing.
        state.keys.roles(request.headers()).ok_or_else(ApiError::unauthorized)?;
        return Err(ApiError::not_found(format!("no route {}", request.uri().path())));
    };
    if let Some(needed) = route.role(request.method()) {
        authorize(state, &request, needed)?;
    }
    if !route.methods().contains(&request.method().as_str()) {
        return Err(ApiError::method_not_allowed(route.methods()));
    }
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let query = parts.uri.query().unwrap_or("");
    let read = || crate::body::read_within(body, &parts.headers, state.body_limit, state.body_timeout);
    match route {
        Route::Health => handlers::health(),
        Route::Ready => handlers::ready(state).await,
        Route::Metrics => Ok(handlers::metrics(state).await),
        Route::OpenApi => Ok(crate::openapi::response()),
        Route::Scenarios => handlers::scenarios(),
        Route::Jobs if method == Method::GET => handlers::list_jobs(state, query).await,
        Route::Jobs => handlers::submit(state, &read().await?).await,
        Route::Job(id) => handlers::get_job(state, &id).await,
        Route::JobCancel(id) => handlers::cancel(state, &id, &read().await?).await,
        Route::JobRetry(id) => handlers::retry(state, &id).await,
        Route::JobReport(id) => handlers::report(state, &id, &read().await?).await,
        Route::Nodes => handlers::list_nodes(state, query).await,
        Route::NodeRegister => handlers::register(state, &read().await?).await,
        Route::NodeHeartbeat(id) => handlers::heartbeat(state, &id, &read().await?).await,
        Route::NodeClaim(id) => handlers::claim(state, &id, &read().await?).await,
        Route::UiAsset(name) => crate::dashboard::asset(&state.dashboard, &name),
        Route::DashboardHistory => crate::dashboard::history(&state.dashboard),
        Route::DashboardBench => crate::dashboard::bench(&state.dashboard).await,
        Route::Sla => crate::sla_route::sla(state, query).await,
        Route::NodesEfficiency => crate::efficiency_route::efficiency(state, query).await,
        Route::NodeProgress(id) => crate::events::progress::handle(&state.evented, &id, &read().await?).await,
        // Streams are answered by `handle_any`; a request reaching here was not one.
        Route::Events => Err(ApiError::not_found("GET /events is a stream")),
    }
}

/// Whether a key with `roles` may do what needs `needed`: user keys may also read.
pub(crate) fn grants(roles: Roles, needed: Role) -> bool {
    roles.contains(needed) || (needed == Role::ReadOnly && roles.contains(Role::User))
}

/// 401 for a missing or unknown key, 403 for a known key without the role (or an agent
/// request without the client certificate the server requires).
fn authorize<B>(state: &AppState, request: &Request<B>, needed: Role) -> Result<(), ApiError> {
    let roles = state.keys.roles(request.headers()).ok_or_else(ApiError::unauthorized)?;
    if !grants(roles, needed) {
        return Err(ApiError::forbidden(format!(
            "this API key may not use {} {}: it needs the {} role",
            request.method(),
            request.uri().path(),
            needed.as_str()
        )));
    }
    if needed == Role::Agent && state.agent_cert_required {
        let verified = request.extensions().get::<PeerInfo>().is_some_and(|p| p.client_cert);
        if !verified {
            return Err(ApiError::forbidden(
                "agent routes need a TLS client certificate signed by the master's client CA",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        assert_eq!(Route::parse("/health"), Some(Route::Health));
        assert_eq!(Route::parse("/jobs/"), Some(Route::Jobs));
        assert_eq!(Route::parse("/jobs/abc"), Some(Route::Job("abc".into())));
        assert_eq!(Route::parse("/jobs/abc/cancel"), Some(Route::JobCancel("abc".into())));
        assert_eq!(Route::parse("/nodes/register"), Some(Route::NodeRegister));
        assert_eq!(Route::parse("/nodes/n1/claim"), Some(Route::NodeClaim("n1".into())));
        assert_eq!(Route::parse("/"), None);
        assert_eq!(Route::parse(""), None);
        assert_eq!(Route::parse("/jobs/a/b/c"), None);
        assert_eq!(Route::parse("//jobs"), None);
    }

    #[test]
    fn routes_need_their_role() {
        let role = |path: &str, method: Method| Route::parse(path).unwrap().role(&method);
        assert_eq!(role("/health", Method::GET), None);
        assert_eq!(role("/jobs", Method::GET), Some(Role::ReadOnly));
        assert_eq!(role("/metrics", Method::GET), Some(Role::ReadOnly));
        assert_eq!(role("/jobs", Method::POST), Some(Role::User));
        assert_eq!(role("/jobs/x/cancel", Method::POST), Some(Role::User));
        assert_eq!(role("/jobs/x/report", Method::POST), Some(Role::Agent));
        assert_eq!(role("/nodes/register", Method::POST), Some(Role::Agent));
        assert_eq!(role("/nodes/x/claim", Method::POST), Some(Role::Agent));
        assert!(grants(Roles::of(Role::User), Role::ReadOnly));
        assert!(!grants(Roles::of(Role::ReadOnly), Role::User));
        assert!(!grants(Roles::of(Role::Agent), Role::ReadOnly));
        assert!(grants(Roles::ALL, Role::Agent));
    }

    #[test]
    fn the_dashboard_page_is_public_and_its_data_needs_a_key() {
        let role = |path: &str| Route::parse(path).unwrap().role(&Method::GET);
        assert_eq!(Route::parse("/ui/"), Some(Route::UiAsset(String::new())));
        assert_eq!(Route::parse("/ui/app.js"), Some(Route::UiAsset("app.js".into())));
        assert_eq!(role("/ui/"), None);
        assert_eq!(role("/ui/app.js"), None);
        assert_eq!(role("/dashboard/history"), Some(Role::ReadOnly));
        assert_eq!(role("/dashboard/bench"), Some(Role::ReadOnly));
        assert_eq!(Route::parse("/ui/x").unwrap().role(&Method::POST), Some(Role::User));
    }

    #[test]
    fn templates_never_hold_ids() {
        let r = Route::parse("/jobs/0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11/report").unwrap();
        assert_eq!(r.template(), "/jobs/{id}/report");
    }
}
