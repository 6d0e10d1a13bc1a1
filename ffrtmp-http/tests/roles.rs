//! Role-separated keys and mutual TLS on a real server over TLS on loopback.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{registration, TestServer, KEY};
use ffrtmp_core::{Assignment, ClaimRequest, JobEvent, JobReport, NodeId, Transport, TransportError};
use ffrtmp_http::{CallOptions, ClientConfig, HttpClient, HttpTransport, Keyring, RawResponse, Role, Roles};
use http::Method;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

const AGENT_1: &str = "agent-key-aaaaaaaa-1";
const AGENT_2: &str = "agent-key-aaaaaaaa-2";
const USER: &str = "user-key-uuuuuuuu-1";
const READ: &str = "read-key-rrrrrrrr-1";
const SPEC: &str = r#"{"scenario":"720p-h264"}"#;

async fn send(client: &HttpClient, method: Method, path: &str, body: Option<&str>) -> RawResponse {
    let body = body.map(|b| Bytes::from(b.to_string()));
    client
        .send(method, path, body, CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn assert_status(response: &RawResponse, status: u16, kind: Option<&str>) {
    let text = String::from_utf8_lossy(&response.body);
    assert_eq!(response.status.as_u16(), status, "{text}");
    if let Some(kind) = kind {
        assert_eq!(response.error().expect("JSON error body").kind, kind, "{text}");
    }
}

/// Agent keys from a file (two, for rotation), user and read keys added directly, and the
/// all-roles `--api-key` beside them.
async fn role_server() -> TestServer {
    TestServer::start_with(|config, dir| {
        let agent_file = dir.join("agent.keys");
        std::fs::write(&agent_file, format!("# agents\n{AGENT_1}\n{AGENT_2}\n")).unwrap();
        let mut keys = Keyring::new();
        keys.add_file(&agent_file, Roles::of(Role::Agent)).unwrap();
        keys.add(USER, Roles::of(Role::User)).unwrap();
        keys.add(READ, Roles::of(Role::ReadOnly)).unwrap();
        config.keys = keys;
    })
    .await
}

fn started(assignment: &Assignment, node_id: NodeId) -> JobReport {
    JobReport {
        job_id: assignment.job.id,
        node_id,
        attempt: assignment.job.attempt,
        event: JobEvent::Started,
    }
}

fn client(server: &TestServer, key: &str) -> HttpClient {
    HttpClient::new(server.config(key)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reaches_only_its_routes() {
    let server = role_server().await;
    let (agent, user, read) = (client(&server, AGENT_1), client(&server, USER), client(&server, READ));

    // Users submit, list, cancel; they may not act as an agent.
    let job = send(&user, Method::POST, "/jobs", Some(SPEC)).await;
    assert_status(&job, 201, None);
    let job_id = serde_json::from_slice::<serde_json::Value>(&job.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_status(&send(&user, Method::GET, "/jobs", None).await, 200, None);
    let reg = serde_json::to_string(&registration("n1", 1)).unwrap();
    assert_status(
        &send(&user, Method::POST, "/nodes/register", Some(&reg)).await,
        403,
        Some("forbidden"),
    );

    // Agents register, claim and report with either of their two keys.
    let node = HttpTransport::new(server.config(AGENT_1)).unwrap();
    let node = node.register(&registration("n1", 1)).await.unwrap();
    let rotated = HttpTransport::new(server.config(AGENT_2)).unwrap();
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: "c1".into(),
        max_jobs: 1,
        wait_ms: 0,
    };
    let assigned = rotated.claim(&claim).await.unwrap();
    assert_eq!(assigned.len(), 1);
    let claim_body = serde_json::to_string(&claim).unwrap();
    let claim_path = format!("/nodes/{}/claim", node.id);
    assert_status(
        &send(&user, Method::POST, &claim_path, Some(&claim_body)).await,
        403,
        Some("forbidden"),
    );
    let report = started(&assigned[0], node.id);
    let report_body = serde_json::to_string(&report).unwrap();
    let report_path = format!("/jobs/{job_id}/report");
    assert_status(
        &send(&user, Method::POST, &report_path, Some(&report_body)).await,
        403,
        Some("forbidden"),
    );
    assert_status(
        &send(&agent, Method::POST, &report_path, Some(&report_body)).await,
        200,
        None,
    );

    // Agents may neither submit nor cancel, nor read the job list.
    assert_status(
        &send(&agent, Method::POST, "/jobs", Some(SPEC)).await,
        403,
        Some("forbidden"),
    );
    let cancel_path = format!("/jobs/{job_id}/cancel");
    assert_status(
        &send(&agent, Method::POST, &cancel_path, None).await,
        403,
        Some("forbidden"),
    );
    assert_status(&send(&agent, Method::GET, "/jobs", None).await, 403, Some("forbidden"));

    // Read-only keys read jobs, nodes and metrics, and change nothing.
    for path in ["/jobs", "/nodes", "/metrics", &format!("/jobs/{job_id}")] {
        assert_status(&send(&read, Method::GET, path, None).await, 200, None);
    }
    assert_status(
        &send(&read, Method::POST, "/jobs", Some(SPEC)).await,
        403,
        Some("forbidden"),
    );
    assert_status(
        &send(&read, Method::POST, &cancel_path, None).await,
        403,
        Some("forbidden"),
    );
    assert_status(
        &send(&read, Method::POST, &claim_path, Some(&claim_body)).await,
        403,
        Some("forbidden"),
    );

    // Any valid key learns that a path does not exist.
    for key in [&agent, &read] {
        assert_status(
            &send(key, Method::GET, "/no/such/route", None).await,
            404,
            Some("not_found"),
        );
    }

    // No key or an unknown key is 401, not 403.
    for key in ["", "unknown-key-0000000"] {
        assert_status(
            &send(&client(&server, key), Method::GET, "/jobs", None).await,
            401,
            Some("unauthorized"),
        );
    }
    // The user cancels; the job is canceled.
    assert_status(&send(&user, Method::POST, &cancel_path, None).await, 200, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_api_key_still_does_everything() {
    let server = role_server().await;
    let all = server.client();
    let job = send(&all, Method::POST, "/jobs", Some(SPEC)).await;
    assert_status(&job, 201, None);
    let transport = server.transport();
    let node = transport.register(&registration("n1", 1)).await.unwrap();
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: "c1".into(),
        max_jobs: 1,
        wait_ms: 0,
    };
    let assigned = transport.claim(&claim).await.unwrap();
    transport.report(&started(&assigned[0], node.id)).await.unwrap();
    assert_status(&send(&all, Method::GET, "/metrics", None).await, 200, None);
    let cancel = format!("/jobs/{}/cancel", assigned[0].job.id);
    assert_status(&send(&all, Method::POST, &cancel, None).await, 200, None);
    server.stop().await;
}

/// A CA, a client certificate it signed, and a client certificate from another CA.
struct Pki {
    ca: PathBuf,
    good: (PathBuf, PathBuf),
    untrusted: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

fn client_cert(dir: &Path, name: &str, issuer: &(rcgen::Certificate, KeyPair)) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

fn pki(dir: &Path) -> Pki {
    let trusted = ca("agents CA");
    let other = ca("someone else's CA");
    let ca_path = dir.join("agents-ca.pem");
    std::fs::write(&ca_path, trusted.0.pem()).unwrap();
    Pki {
        ca: ca_path,
        good: client_cert(dir, "agent-1", &trusted),
        untrusted: client_cert(dir, "intruder", &other),
    }
}

fn with_cert(server: &TestServer, key: &str, cert: &(PathBuf, PathBuf)) -> ClientConfig {
    server.config(key).with_client_cert(&cert.0, &cert.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_need_a_client_certificate_signed_by_the_ca() {
    let certs = tempfile::tempdir().unwrap();
    let pki = pki(certs.path());
    let ca = pki.ca.clone();
    let server = TestServer::start_with(move |config, _| {
        config.client_ca = Some(ca);
        config.require_client_cert_for_agents = true;
    })
    .await;

    let good = HttpTransport::new(with_cert(&server, KEY, &pki.good)).unwrap();
    let node = good.register(&registration("n1", 1)).await.unwrap();
    assert_eq!(node.registration.name, "n1");

    // Without a certificate: TLS works (users need none) but agent routes are refused.
    let bare = HttpTransport::new(server.config(KEY)).unwrap();
    match bare.register(&registration("n2", 1)).await {
        Err(TransportError::Rejected { status: 403, kind, .. }) => assert_eq!(kind, "forbidden"),
        other => panic!("registered without a client certificate: {other:?}"),
    }
    let user = HttpClient::new(server.config(KEY)).unwrap();
    assert_status(&send(&user, Method::GET, "/jobs", None).await, 200, None);

    // A certificate from another CA fails the handshake: no request gets through at all.
    let intruder = HttpTransport::new(with_cert(&server, KEY, &pki.untrusted)).unwrap();
    match intruder.heartbeat(node.id, &Default::default()).await {
        Err(TransportError::Unreachable(message)) => assert!(
            message.to_lowercase().contains("certificate") || message.contains("alert"),
            "{message}"
        ),
        other => panic!("an untrusted client certificate was accepted: {other:?}"),
    }
    server.stop().await;
}
