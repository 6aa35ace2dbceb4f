//! `GET /openapi.json`: the hand-kept OpenAPI 3.1 document matches the router, both ways,
//! and names only error codes of `protocol::codes`.

use std::collections::{BTreeMap, BTreeSet};

use ssot_gateway::protocol::codes;
use ssot_testkit::RedisServer;

use crate::support::*;

const DOCUMENT: &str = include_str!("../../assets/openapi.json");
const ROUTER_SOURCE: &str = include_str!("../../src/http.rs");
const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// path → methods, as `router()` in src/http.rs declares them (`.route("/p", get(a).post(b))`).
fn served_routes() -> BTreeMap<String, BTreeSet<String>> {
    let body = ROUTER_SOURCE
        .split_once("fn router(")
        .unwrap()
        .1
        .split_once(".fallback(")
        .unwrap()
        .0;
    let mut routes = BTreeMap::new();
    for route in body.split(".route(").skip(1) {
        let (path, handlers) = route
            .trim_start()
            .strip_prefix('"')
            .unwrap()
            .split_once('"')
            .unwrap();
        let methods: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| {
                handlers.match_indices(&format!("{m}(")).any(|(at, _)| {
                    at == 0
                        || !handlers.as_bytes()[at - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[at - 1] != b'_'
                })
            })
            .map(|m| (*m).to_owned())
            .collect();
        assert!(!methods.is_empty(), "no method read for {path}: {handlers}");
        routes.insert(path.to_owned(), methods);
    }
    routes
}

fn documented_routes(doc: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Every `code` schema with an `enum`, anywhere in the document.
fn documented_codes(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                if key == "code"
                    && let Some(values) = child.get("enum").and_then(|e| e.as_array())
                {
                    out.extend(values.iter().map(|v| v.as_str().unwrap().to_owned()));
                }
                documented_codes(child, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| documented_codes(i, out)),
        _ => {}
    }
}

#[test]
fn the_document_lists_every_route_with_its_methods_and_only_known_codes() {
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let served = served_routes();
    assert!(served.contains_key("/v1/users/{id}/events"), "{served:?}");
    assert_eq!(
        served["/v1/users/{id}/events"],
        BTreeSet::from(["post".to_owned()])
    );
    assert_eq!(documented_routes(&doc), served);

    let mut listed = BTreeSet::new();
    documented_codes(&doc, &mut listed);
    assert!(listed.len() >= 20, "{listed:?}");
    let unknown: Vec<_> = listed
        .iter()
        .filter(|c| !codes::ALL.contains(&c.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "codes not in protocol::codes: {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served_and_no_other_method() {
    ssot_testkit::own_process!(every_documented_route_is_served_and_no_other_method);
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let served = get(gw.addr, "/openapi.json").await;
    assert_eq!(served.status, 200);
    assert_eq!(served.headers["content-type"], "application/json");
    assert_eq!(served.body, DOCUMENT);

    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    let mut client = Publisher::new(gw.addr);
    for (path, methods) in documented_routes(&doc) {
        let concrete = path.replace("{id}", "probe-user");
        for method in METHODS {
            let answer = client
                .request(&method.to_uppercase(), &concrete, None, "")
                .await
                .unwrap();
            if methods.contains(*method) {
                assert!(
                    ![404, 405].contains(&answer.status),
                    "{method} {path} documented but answered {}: {}",
                    answer.status,
                    answer.body
                );
            } else {
                assert_eq!(answer.status, 405, "{method} {path}: {}", answer.body);
                let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
                assert_eq!(body["error"]["code"], codes::METHOD_NOT_ALLOWED);
            }
        }
    }
    let missing = get(gw.addr, "/v1/nope").await;
    assert_eq!(missing.status, 404);
}
