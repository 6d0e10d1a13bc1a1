//! `GET /nodes` pages over the real server and client.

mod common;

use bytes::Bytes;
use common::{registration, TestServer};
use ffrtmp_core::{NodeQuery, Transport};
use ffrtmp_http::wire::NodeList;
use ffrtmp_http::CallOptions;
use http::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_listed_in_pages_and_the_client_follows_them() {
    let server = TestServer::start().await;
    let agent = server.transport();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(agent.register(&registration(&format!("n{i}"), 1)).await.unwrap().id);
    }
    ids.sort();

    let api = server.api();
    let first = api
        .nodes_page(&NodeQuery {
            after: None,
            limit: Some(2),
        })
        .await
        .unwrap();
    assert_eq!(first.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(first.next_cursor, Some(ids[1]));

    // The raw answer carries the cursor; `cursor=` is another name for `after=`.
    let raw = server
        .client()
        .send(
            Method::GET,
            &format!("/nodes?limit=2&cursor={}", ids[1]),
            None::<Bytes>,
            CallOptions::default(),
        )
        .await
        .unwrap();
    let second: NodeList = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(second.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), ids[2..4]);
    assert_eq!(second.next_cursor, Some(ids[3]));

    let all = api.nodes().await.unwrap();
    assert_eq!(all.iter().map(|n| n.id).collect::<Vec<_>>(), ids);

    for bad in ["/nodes?limit=0", "/nodes?after=nope", "/nodes?status=online"] {
        let r = server
            .client()
            .send(Method::GET, bad, None, CallOptions::default())
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{bad}");
        assert_eq!(r.error().unwrap().kind, "invalid_query", "{bad}");
    }
    server.stop().await;
}
