//! `/metrics` after real traffic: every family has `# HELP` and `# TYPE`, latencies are
//! histograms, and every metric the shipped Grafana dashboard queries exists.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ssot_gateway::GatewayOptions;
use ssot_testkit::RedisServer;

use crate::support::*;

/// The families of an exposition: name → (type, has help), and every sample's name.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeSet<String>,
    samples: BTreeSet<String>,
}

impl Exposition {
    fn parse(body: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                out.types.insert(name.to_owned(), kind.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.trim().is_empty(), "empty help for {name}");
                out.helps.insert(name.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap();
                out.samples.insert(line[..end].to_owned());
            }
        }
        out
    }

    /// The family a sample belongs to: histograms' `_bucket`/`_sum`/`_count` fold into it.
    fn family<'a>(&self, sample: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix)
                && self.types.contains_key(base)
            {
                return base;
            }
        }
        sample
    }
}

/// The metric names a PromQL expression reads: identifiers that are not functions,
/// aggregations, keywords, grouping labels, label matchers, durations or numbers.
fn promql_metric_names(expr: &str) -> Vec<String> {
    #[rustfmt::skip]
    const KEYWORDS: &[&str] = &[
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
        "unless", "offset",
        // Aggregations: `sum by (x) (...)` puts the grouping between the name and `(`.
        "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk",
        "quantile", "count_values",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_until = |i: &mut usize, close: char| {
        while *i < chars.len() && chars[*i] != close {
            *i += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            skip_until(&mut i, '}');
        } else if c == '[' {
            skip_until(&mut i, ']');
        } else if c == '"' {
            i += 1;
            skip_until(&mut i, '"');
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next] == ' ' {
                next += 1;
            }
            let called = chars.get(next) == Some(&'(');
            if KEYWORDS.contains(&word.as_str()) {
                if called && ["by", "without", "on", "ignoring"].contains(&word.as_str()) {
                    i = next;
                    skip_until(&mut i, ')'); // the grouping labels
                }
            } else if !called {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_names_are_read_from_expressions() {
    assert_eq!(
        promql_metric_names(
            r#"histogram_quantile(0.99, sum by (le, role) (rate(a_seconds_bucket{x="y(z)"}[5m])))"#
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        promql_metric_names("max by (domain) (b) / on (i) c offset 1e3"),
        ["b", "c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_described_latencies_are_histograms_and_the_dashboard_queries_exist() {
    ssot_testkit::own_process!(
        every_family_is_described_latencies_are_histograms_and_the_dashboard_queries_exist
    );
    let server = RedisServer::start();
    let options = GatewayOptions {
        max_sockets_per_user: Some(1),
        ..GatewayOptions::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;

    // Traffic: publishes, a live socket, a resume, a budget refusal and a clean close.
    let mut publisher = Publisher::new(gw.addr);
    let (mut live, mut got) = connect_ready(&gw.ws_url(), &token("obs-a", 60)).await;
    let first = publisher
        .publish("obs-a", "e", serde_json::json!(1))
        .await
        .unwrap();
    publisher
        .publish("obs-a", "e", serde_json::json!(2))
        .await
        .unwrap();
    assert!(read_events(&mut live, &mut got, 2, Duration::from_secs(2)).await);
    let refused = connect(&gw.ws_url(), &token("obs-a", 60), None)
        .await
        .unwrap_err();
    assert_eq!(refused_code(&refused), "too_many_user_sockets");
    publisher
        .publish("obs-b", "e", serde_json::json!(3))
        .await
        .unwrap();
    let mut resumed = connect(&gw.ws_url(), &token("obs-b", 60), Some(&first))
        .await
        .unwrap();
    let mut again = Received::default();
    assert!(read_events(&mut resumed, &mut again, 1, Duration::from_secs(2)).await);
    live.close(None).await.unwrap();

    // Closes and the health monitor's first round land asynchronously.
    let mut body = String::new();
    for _ in 0..60 {
        body = get(gw.addr, "/metrics").await.body;
        if body.contains("ssot_gateway_closes_total{") && body.contains("ssot_redis_ping_seconds") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exposition = Exposition::parse(&body);
    assert!(exposition.samples.len() > 10, "too few series:\n{body}");
    for sample in &exposition.samples {
        let family = exposition.family(sample);
        assert!(
            exposition.types.contains_key(family),
            "no # TYPE for {family}:\n{body}"
        );
        assert!(
            exposition.helps.contains(family),
            "no # HELP for {family}:\n{body}"
        );
    }
    for latency in [
        "ssot_gateway_publish_seconds",
        "ssot_redis_call_seconds",
        "ssot_redis_ping_seconds",
    ] {
        assert_eq!(
            exposition.types.get(latency).map(String::as_str),
            Some("histogram"),
            "{latency}:\n{body}"
        );
        assert!(
            body.contains(&format!("{latency}_bucket{{")),
            "no buckets for {latency}:\n{body}"
        );
    }
    assert!(
        !exposition.types.values().any(|kind| kind == "summary"),
        "a summary is left:\n{body}"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../../deploy/grafana/ssot.json")).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queried.extend(promql_metric_names(target["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 8, "dashboard reads {queried:?}");
    let missing: Vec<_> = queried
        .iter()
        .filter(|name| !exposition.samples.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboard queries {missing:?}, absent from:\n{body}"
    );
}
