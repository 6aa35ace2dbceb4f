//! Every error answer carries the documented JSON body, unknown routes included.

use ssot_testkit::RedisServer;

use crate::support::{Publisher, TestGateway, get, manager};

fn code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
    v["error"]["code"].as_str().expect("error.code").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_the_json_error_body() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;

    let missing = get(gw.addr, "/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(code(&missing.body), "not_found");

    let wrong_method = Publisher::new(gw.addr)
        .request("DELETE", "/health", None, "")
        .await
        .unwrap();
    assert_eq!(wrong_method.status, 405);
    assert_eq!(code(&wrong_method.body), "method_not_allowed");

    let get_on_publish = get(gw.addr, "/v1/users/alice/events").await;
    assert_eq!(get_on_publish.status, 405);
    assert_eq!(code(&get_on_publish.body), "method_not_allowed");

    let repeated = get(gw.addr, "/v1/ws?after=1-1&after=2-2").await;
    assert_eq!(repeated.status, 400);
    assert_eq!(code(&repeated.body), "invalid_query");
}
