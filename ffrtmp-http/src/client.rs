//! The HTTPS client: connection pooling, verified TLS, per-request timeouts and retries of
//! transient failures only.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use ffrtmp_core::{Backoff, TransportError};
use http::uri::Scheme;
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::HttpError;

mod stream;
use crate::tls;
use crate::wire::{ErrorBody, ErrorDetail};
pub use stream::{EventStream, SseMessage};

/// Largest response body the client reads.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How to reach a master.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://host:port` (a path prefix is allowed). `http://` only for a server that
    /// explicitly runs without TLS.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; when empty, no `Authorization` header is sent
    /// (enough for `GET /health`).
    pub api_key: String,
    /// PEM file with the certificates to trust (e.g. the master's `cert.pem`); `None`
    /// means the system bundle [`tls::SYSTEM_CA_BUNDLE`].
    pub ca_cert: Option<PathBuf>,
    /// Retries of connection failures, timeouts, 429 and 5xx.
    pub backoff: Backoff,
    /// Limit for one attempt of one request, response body included. Claims that wait for
    /// work get their wait on top.
    pub request_timeout: Duration,
    /// Allow sending the API key over an `http://` URL. Off by default: a mistyped URL must
    /// not leak the key.
    pub allow_plaintext: bool,
    /// Client certificate chain and private key (PEM) presented to a master that checks
    /// agents' certificates (mutual TLS); `None` presents none.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl ClientConfig {
    /// Default per-request timeout: 40 s, so that a 30 s long poll fits.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(40);

    /// A configuration with the system trust roots, [`Backoff::TRANSPORT`] and the default
    /// timeout.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            ca_cert: None,
            backoff: Backoff::TRANSPORT,
            request_timeout: Self::DEFAULT_TIMEOUT,
            allow_plaintext: false,
            client_cert: None,
        }
    }

    /// Presents the certificate `cert` (chain, PEM) with its private key `key` (PEM) to the
    /// master, for mutual TLS.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Allows an `http://` URL with an API key (a server explicitly running without TLS).
    pub fn with_plaintext_allowed(mut self) -> Self {
        self.allow_plaintext = true;
        self
    }

    /// Trusts the certificates in `path` instead of the system bundle.
    pub fn with_ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("ca_cert", &self.ca_cert)
            .field("backoff", &self.backoff)
            .field("request_timeout", &self.request_timeout)
            .field("client_cert", &self.client_cert.as_ref().map(|(cert, _)| cert))
            .finish()
    }
}

/// How one call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallOptions {
    /// Whether repeating the request is harmless. When `false`, only failures where the
    /// server certainly did nothing are retried: connection failures, 429 and 503.
    pub idempotent: bool,
    /// Overrides [`ClientConfig::request_timeout`] for this call.
    pub timeout: Option<Duration>,
    /// Whether a 409 is [`TransportError::Fenced`] (agent calls) or
    /// [`TransportError::Rejected`] (user calls).
    pub conflict_is_fenced: bool,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            idempotent: true,
            timeout: None,
            conflict_is_fenced: true,
        }
    }
}

/// A response as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

impl RawResponse {
    /// The `{"error":{...}}` detail of an error body, when it has one.
    pub fn error(&self) -> Option<ErrorDetail> {
        serde_json::from_slice::<ErrorBody>(&self.body).ok().map(|b| b.error)
    }
}

/// Why one attempt failed before a status was received.
enum Failure {
    /// The TLS handshake failed (untrusted certificate, wrong name): retrying cannot help.
    Tls(String),
    /// No connection: the request certainly did not reach the server.
    Connect(String),
    /// The connection broke or timed out after the request may have been sent.
    Other(String),
    /// The request could not be built (bad path).
    Invalid(String),
}

/// A client of the ffrtmp HTTP API. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    auth: Option<HeaderValue>,
    backoff: Backoff,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client: checks the URL and key, loads the trust roots.
    ///
    /// ```
    /// use ffrtmp_http::{ClientConfig, HttpClient};
    /// // Plain HTTP needs no trust roots, but sends the key in clear: it must be allowed.
    /// assert!(HttpClient::new(ClientConfig::new("http://127.0.0.1:8080/", "a-long-api-key")).is_err());
    /// let config = ClientConfig::new("http://127.0.0.1:8080/", "a-long-api-key").with_plaintext_allowed();
    /// let client = HttpClient::new(config).unwrap();
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
    /// assert!(HttpClient::new(ClientConfig::new("ftp://x", "a-long-api-key")).is_err());
    /// ```
    pub fn new(config: ClientConfig) -> Result<Self, HttpError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e| HttpError::Config(format!("invalid base URL {base:?}: {e}")))?;
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return Err(HttpError::Config(format!("base URL {base:?} must start with https://"))),
        };
        if !https && !config.api_key.is_empty() {
            if !config.allow_plaintext {
                return Err(HttpError::Config(format!(
                    "refusing to send the API key unencrypted to {base}: use https://, or allow plain HTTP \
                     explicitly (--insecure-plaintext)"
                )));
            }
            tracing::warn!(url = %base, "sending the API key over plain HTTP");
        }
        if uri.host().is_none() || uri.query().is_some() {
            return Err(HttpError::Config(format!(
                "base URL {base:?} must be scheme://host[:port][/prefix]"
            )));
        }
        let auth = if config.api_key.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", config.api_key))
                .map_err(|_| HttpError::Config("the API key contains characters not allowed in a header".into()))?;
            value.set_sensitive(true);
            Some(value)
        };
        let tls = if https || config.ca_cert.is_some() {
            let identity = config.client_cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            tls::client_config_with_identity(config.ca_cert.as_deref(), identity)?
        } else {
            rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| HttpError::Tls(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.request_timeout.min(Duration::from_secs(10))));
        let connector = HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if https {
            connector.https_only()
        } else {
            connector.https_or_http()
        };
        let connector = connector.enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(50))
            .build(connector);
        Ok(HttpClient {
            client,
            base,
            auth,
            backoff: config.backoff,
            timeout: config.request_timeout,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The default limit of one attempt.
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a request to `path_and_query` (starting with `/`) and returns the response,
    /// whatever its status, unless it failed transiently (connection failure, timeout,
    /// 429, 5xx) more often than the backoff allows: then [`TransportError::Unreachable`].
    /// A TLS verification failure is not retried.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
        options: CallOptions,
    ) -> Result<RawResponse, TransportError> {
        let timeout = options.timeout.unwrap_or(self.timeout);
        let mut retries = 0u32;
        loop {
            let reason = match self.attempt(&method, path_and_query, body.clone(), timeout).await {
                Ok(response) => {
                    let status = response.status;
                    let transient = if options.idempotent {
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                    } else {
                        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
                    };
                    if !transient {
                        return Ok(response);
                    }
                    let message = response.error().map(|e| e.message).unwrap_or_default();
                    format!("HTTP {status} {message}")
                }
                Err(Failure::Tls(message)) => {
                    return Err(TransportError::Unreachable(format!(
                        "{method} {path_and_query}: {message}"
                    )))
                }
                Err(Failure::Invalid(message)) => {
                    return Err(TransportError::Rejected {
                        status: 0,
                        kind: "invalid_request".into(),
                        message,
                    })
                }
                Err(Failure::Connect(message)) => message,
                Err(Failure::Other(message)) if options.idempotent => message,
                Err(Failure::Other(message)) => {
                    return Err(TransportError::Unreachable(format!(
                        "{method} {path_and_query}: {message} (not retried: the request may have been applied)"
                    )))
                }
            };
            if retries >= self.backoff.max_retries {
                return Err(TransportError::Unreachable(format!(
                    "{method} {path_and_query}: {reason} (gave up after {} attempts)",
                    retries + 1
                )));
            }
            let delay = self.backoff.delay(retries);
            tracing::debug!(%method, path = path_and_query, retry = retries + 1, ?delay, %reason, "retrying");
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }

    /// [`HttpClient::call`] tried once, without retries: for messages that are soon stale
    /// (progress ticks), where the next one is better than a retry.
    pub async fn send_once<B, T>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
        options: CallOptions,
    ) -> Result<T, TransportError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let once = HttpClient {
            backoff: Backoff {
                max_retries: 0,
                ..self.backoff
            },
            ..self.clone()
        };
        once.call(method, path_and_query, body, options).await
    }

    /// Sends `body` as JSON and decodes a JSON answer. Statuses: 2xx → `Ok`; 409 →
    /// [`TransportError::Fenced`] (or `Rejected` when `conflict_is_fenced` is off); any
    /// other 4xx → [`TransportError::Rejected`] with the kind and message of the error body.
    pub async fn call<B, T>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
        options: CallOptions,
    ) -> Result<T, TransportError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let body = match body {
            Some(b) => Some(Bytes::from(serde_json::to_vec(b).map_err(|e| {
                TransportError::Rejected {
                    status: 0,
                    kind: "invalid_request".into(),
                    message: format!("cannot encode the request: {e}"),
                }
            })?)),
            None => None,
        };
        let response = self.send(method, path_and_query, body, options).await?;
        decode(response, options.conflict_is_fenced)
    }

    async fn attempt(
        &self,
        method: &Method,
        path_and_query: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<RawResponse, Failure> {
        let uri = format!("{}{}", self.base, path_and_query);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("ffrtmp-http/", env!("CARGO_PKG_VERSION")));
        if let Some(auth) = &self.auth {
            builder = builder.header(header::AUTHORIZATION, auth.clone());
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| Failure::Invalid(format!("invalid request URI {uri:?}: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| classify(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| Failure::Other(format!("reading the response: {e}")))?
                .to_bytes();
            Ok(RawResponse {
                status: parts.status,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Other(format!("no complete answer within {timeout:?}"))),
        }
    }
}

/// Maps a response to a value or a [`TransportError`].
fn decode<T: DeserializeOwned>(response: RawResponse, conflict_is_fenced: bool) -> Result<T, TransportError> {
    let status = response.status;
    if status.is_success() {
        return serde_json::from_slice(&response.body).map_err(|e| TransportError::Rejected {
            status: status.as_u16(),
            kind: "invalid_response".into(),
            message: format!("cannot decode the answer: {e}"),
        });
    }
    let detail = response.error().unwrap_or_else(|| ErrorDetail {
        kind: "unknown".into(),
        message: String::from_utf8_lossy(&response.body[..response.body.len().min(512)]).into_owned(),
    });
    if status == StatusCode::CONFLICT && conflict_is_fenced {
        return Err(TransportError::Fenced(detail.message));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        // Only reached for calls that may not be retried.
        return Err(TransportError::Unreachable(format!(
            "HTTP {status}: {}",
            detail.message
        )));
    }
    Err(TransportError::Rejected {
        status: status.as_u16(),
        kind: detail.kind,
        message: detail.message,
    })
}

fn classify(err: &hyper_util::client::legacy::Error) -> Failure {
    let message = error_chain(err);
    if let Some(tls) = tls_error(err) {
        Failure::Tls(explain_tls(tls, message))
    } else if err.is_connect() {
        Failure::Connect(message)
    } else {
        Failure::Other(message)
    }
}

/// The messages of an error and its sources, joined.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The rustls error somewhere in the chain (through `io::Error` wrappers too), if any.
fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(tls) = tls_error(inner) {
                return Some(tls);
            }
        }
        next = e.source();
    }
    None
}

/// A TLS failure in words a user can act on: what is wrong with the master's certificate and
/// which flag fixes it; `chain` (the raw error text) follows in parentheses.
fn explain_tls(err: &rustls::Error, chain: String) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = err else {
        return format!("TLS handshake failed: {chain}");
    };
    match cert {
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "the master's TLS certificate is not valid for the host in the URL ({chain}): use a name the \
             certificate has, or give the master that name (--tls-name, or --bind with its address) so its \
             self-signed certificate covers it"
        ),
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            format!("the master's TLS certificate is outside its validity period ({chain}); check the clocks")
        }
        _ => format!(
            "the master's TLS certificate is not trusted ({chain}): pass --ca-cert <the master's tls/cert.pem> \
             (or set FFRTMP_CA_CERT); TLS verification is never skipped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn maps_statuses() {
        let fenced = response(409, r#"{"error":{"kind":"fenced","message":"stale"}}"#);
        assert_eq!(
            decode::<serde_json::Value>(fenced.clone(), true).unwrap_err(),
            TransportError::Fenced("stale".into())
        );
        assert!(matches!(
            decode::<serde_json::Value>(fenced, false).unwrap_err(),
            TransportError::Rejected { status: 409, .. }
        ));
        let bad = response(400, r#"{"error":{"kind":"invalid_json","message":"oops"}}"#);
        assert_eq!(
            decode::<serde_json::Value>(bad, true).unwrap_err(),
            TransportError::Rejected {
                status: 400,
                kind: "invalid_json".into(),
                message: "oops".into()
            }
        );
        let plain = response(404, "nope");
        assert!(matches!(
            decode::<serde_json::Value>(plain, true).unwrap_err(),
            TransportError::Rejected { status: 404, kind, .. } if kind == "unknown"
        ));
        assert_eq!(decode::<u32>(response(200, "7"), true).unwrap(), 7);
    }

    #[test]
    fn debug_hides_the_key() {
        let config = ClientConfig::new("https://master:8443", "super-secret-key");
        assert!(!format!("{config:?}").contains("super-secret"));
    }
}
