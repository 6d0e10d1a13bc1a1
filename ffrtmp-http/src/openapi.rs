//! The OpenAPI 3 document of the master's API, served at `GET /openapi.json` without a key:
//! it tells only what the published document in the repository tells, and a client needs
//! it before it has a key.
//!
//! The document is kept by hand in `ffrtmp-http/openapi.json` and compiled in. Its tests
//! check it against the routing table both ways, so a route added without documenting it
//! (or documented and not served) fails them.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use crate::body::text;

/// The OpenAPI 3 document (JSON), as kept in the repository at `ffrtmp-http/openapi.json`.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The answer of `GET /openapi.json`.
pub(crate) fn response() -> Response<Full<Bytes>> {
    text("application/json", DOCUMENT.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::routes::Route;

    /// One path per served route, ids filled in. Add a line here with every new route: the
    /// tests below then require the route in the document, with the methods it answers.
    const SERVED: &[&str] = &[
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/scenarios",
        "/jobs",
        "/jobs/00000000-0000-0000-0000-000000000001",
        "/jobs/00000000-0000-0000-0000-000000000001/cancel",
        "/jobs/00000000-0000-0000-0000-000000000001/retry",
        "/jobs/00000000-0000-0000-0000-000000000001/report",
        "/nodes",
        "/nodes/register",
        "/nodes/00000000-0000-0000-0000-000000000001/heartbeat",
        "/nodes/00000000-0000-0000-0000-000000000001/claim",
        "/ui/app.js",
        "/dashboard/history",
        "/dashboard/bench",
        "/sla",
        "/events",
        "/nodes/00000000-0000-0000-0000-000000000001/progress",
        "/nodes/efficiency",
    ];

    /// Fails to compile when a route is added, as a reminder to list it in [`SERVED`].
    fn listed(route: &Route) -> bool {
        match route {
            Route::Health
            | Route::Ready
            | Route::Metrics
            | Route::OpenApi
            | Route::Scenarios
            | Route::Jobs
            | Route::Job(_)
            | Route::JobCancel(_)
            | Route::JobRetry(_)
            | Route::JobReport(_)
            | Route::Nodes
            | Route::NodeRegister
            | Route::NodeHeartbeat(_)
            | Route::NodeClaim(_)
            | Route::UiAsset(_)
            | Route::DashboardHistory
            | Route::DashboardBench
            | Route::Sla
            | Route::Events
            | Route::NodeProgress(_)
            | Route::NodesEfficiency => true,
        }
    }

    /// Path template → upper-case methods, as the document lists them.
    fn documented() -> BTreeMap<String, Vec<String>> {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "an OpenAPI 3 document"
        );
        let paths = doc["paths"].as_object().expect("the document has paths");
        paths
            .iter()
            .map(|(path, item)| {
                let mut methods: Vec<String> = item
                    .as_object()
                    .expect("a path item is an object")
                    .keys()
                    .filter(|k| ["get", "put", "post", "delete", "patch", "head", "options"].contains(&k.as_str()))
                    .map(|k| k.to_uppercase())
                    .collect();
                methods.sort();
                (path.clone(), methods)
            })
            .collect()
    }

    fn sorted(methods: &[&str]) -> Vec<String> {
        let mut m: Vec<String> = methods.iter().map(|s| s.to_string()).collect();
        m.sort();
        m
    }

    #[test]
    fn every_served_route_is_documented_with_its_methods() {
        let doc = documented();
        for path in SERVED {
            let route = Route::parse(path).unwrap_or_else(|| panic!("{path} is not served"));
            assert!(listed(&route));
            let methods = doc
                .get(route.template())
                .unwrap_or_else(|| panic!("{} is served but not in openapi.json", route.template()));
            assert_eq!(methods, &sorted(route.methods()), "methods of {}", route.template());
        }
    }

    #[test]
    fn every_documented_path_is_served_with_the_documented_methods() {
        let templates: Vec<&str> = SERVED.iter().map(|p| Route::parse(p).unwrap().template()).collect();
        for (template, methods) in documented() {
            let path = template.replace("{id}", "00000000-0000-0000-0000-000000000002");
            let route = Route::parse(&path).unwrap_or_else(|| panic!("{template} is documented but not served"));
            assert_eq!(
                route.template(),
                template,
                "{template} is served under another template"
            );
            assert_eq!(methods, sorted(route.methods()), "methods of {template}");
            assert!(templates.contains(&template.as_str()), "{template}: add it to SERVED");
        }
    }

    #[test]
    fn the_document_is_public_only_where_the_server_is() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        for (template, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let public = operation["security"].as_array().is_some_and(|s| s.is_empty());
                let path = template.replace("{id}", "00000000-0000-0000-0000-000000000003");
                let method = http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let needs_key = Route::parse(&path).unwrap().role(&method).is_some();
                assert_eq!(public, !needs_key, "{method} {template}: security in the document");
            }
        }
    }
}
