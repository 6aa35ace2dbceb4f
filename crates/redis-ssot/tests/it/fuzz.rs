//! Fuzz targets of everything in this crate that parses outside input (issue 12): event ids,
//! user ids and the keys built from them, `[redis]` TOML and `SSOT_REDIS_*` variables, and
//! JWTs. Each runs under `ssot_testkit::fuzz` (fixed seed and case count by default,
//! `SSOT_FUZZ_CASES` / `SSOT_FUZZ_SECS` for longer runs).

use std::time::Duration;

use proptest::prelude::*;
use redis_ssot::config::ENV_VARS;
use redis_ssot::keys::check_name;
use redis_ssot::stores::events::EventId;
use redis_ssot::stores::tokens::{TokenConfig, Tokens};
use redis_ssot::{Error, RedisOptions, UserId, UserScope};
use ssot_testkit::RedisServer;
use ssot_testkit::fuzz::fuzz;

use crate::support::connect;

/// Characters that are special in Redis glob patterns or hash tags.
const METACHARACTERS: &[char] = &['*', '?', '[', ']', '\\', '{', '}', '^'];

/// The grammar of an event id, written independently of the parser: two runs of 1-20 ASCII
/// digits joined by one `-`, each fitting a u64, and not `u64::MAX-u64::MAX`.
fn expected_event_id(s: &str) -> Option<EventId> {
    let (ms, seq) = s.split_once('-')?;
    let number = |p: &str| -> Option<u64> {
        let digits = !p.is_empty() && p.len() <= 20 && p.chars().all(|c| c.is_ascii_digit());
        digits.then(|| p.parse().ok()).flatten()
    };
    let id = EventId {
        ms: number(ms)?,
        seq: number(seq)?,
    };
    (id != EventId {
        ms: u64::MAX,
        seq: u64::MAX,
    })
    .then_some(id)
}

#[test]
fn fuzz_event_ids() {
    let number = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        "[0-9]{0,22}",
        "[+ 0-9a-f-]{0,4}",
    ];
    let text = prop_oneof![
        (
            number.clone(),
            prop::sample::select(vec!["-", "--", "", " - ", "-+"]),
            number
        )
            .prop_map(|(a, sep, b)| format!("{a}{sep}{b}")),
        any::<String>(),
    ];
    fuzz("event-id", text, |s| {
        let parsed = s.parse::<EventId>();
        match expected_event_id(&s) {
            Some(want) => {
                let id = parsed.map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
                prop_assert_eq!(id, want);
                prop_assert_eq!(id.to_string().parse::<EventId>().ok(), Some(id));
            }
            None => prop_assert!(
                matches!(parsed, Err(Error::Invalid { .. })),
                "{s:?} accepted as {parsed:?}"
            ),
        }
        Ok(())
    });
    let pair = (any::<u64>(), any::<u64>());
    fuzz("event-id-order", (pair, pair), |((ms1, s1), (ms2, s2))| {
        let (a, b) = (EventId { ms: ms1, seq: s1 }, EventId { ms: ms2, seq: s2 });
        prop_assert_eq!(a.cmp(&b), (ms1, s1).cmp(&(ms2, s2)));
        for id in [a, b] {
            let text = id.to_string();
            let round = text.parse::<EventId>();
            if id
                == (EventId {
                    ms: u64::MAX,
                    seq: u64::MAX,
                })
            {
                prop_assert!(round.is_err(), "{text} accepted");
            } else {
                prop_assert_eq!(round.ok(), Some(id));
            }
        }
        Ok(())
    });
}

/// Strings close to user ids: mostly allowed characters, sometimes one that is not.
fn user_id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.@-]{0,130}",
        "[A-Za-z0-9_.@:*?{}\\[\\] \\\\-]{1,12}",
        any::<String>(),
    ]
}

#[test]
fn fuzz_user_ids_and_keys() {
    fuzz(
        "user-id-keys",
        (user_id_like(), user_id_like()),
        |(a, b)| {
            let allowed = |s: &str| {
                (1..=128).contains(&s.len())
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
            };
            for raw in [&a, &b] {
                let parsed = UserScope::parse(raw);
                prop_assert_eq!(parsed.is_ok(), allowed(raw), "{:?}: {:?}", raw, parsed);
                prop_assert_eq!(UserId::new(raw).is_ok(), allowed(raw));
                let Ok(scope) = parsed else { continue };
                let prefix = scope.prefix();
                prop_assert_eq!(prefix, format!("ssot:{{u:{raw}}}:"));
                // Exactly one hash tag, `{u:<id>}`, and no pattern metacharacter outside it.
                let open = prefix.find('{').unwrap();
                let close = prefix.find('}').unwrap();
                prop_assert_eq!(&prefix[open + 1..close], format!("u:{raw}"));
                prop_assert_eq!(prefix.matches(['{', '}']).count(), 2);
                let outside = format!("{}{}", &prefix[..open], &prefix[close + 1..]);
                prop_assert!(!outside.contains(METACHARACTERS), "{prefix}");
                prop_assert!(
                    !prefix[open + 1..close].contains(METACHARACTERS),
                    "{prefix}"
                );
            }
            if let (Ok(x), Ok(y)) = (UserScope::parse(&a), UserScope::parse(&b))
                && a != b
            {
                // A SCAN of one user's prefix can never reach another user's keys.
                prop_assert!(!x.prefix().starts_with(y.prefix()));
                prop_assert!(!y.prefix().starts_with(x.prefix()));
            }
            Ok(())
        },
    );
    let name = prop_oneof!["[A-Za-z0-9_.:/@*?{}\\[\\]-]{0,20}", any::<String>()];
    fuzz("key-name", name, |name| {
        if check_name("name", &name).is_ok() {
            prop_assert!((1..=256).contains(&name.len()));
            prop_assert!(!name.contains(METACHARACTERS), "{name:?} accepted");
            prop_assert!(!name.contains(char::is_whitespace), "{name:?} accepted");
        }
        Ok(())
    });
}

const TOML_KEYS: &[&str] = &[
    "url",
    "app",
    "command-timeout-ms",
    "connect-timeout-ms",
    "blocking-pool-size",
    "health-interval-ms",
    "reconnect-min-delay-ms",
    "reconnect-max-delay-ms",
    "breaker.window-size",
    "breaker.minimum-calls",
    "breaker.failure-rate-threshold",
    "breaker.slow-call-duration-ms",
    "breaker.slow-call-rate-threshold",
    "breaker.open-duration-ms",
    "breaker.half-open-calls",
    "bulk.timeout-ms",
    "bulk.concurrency",
    "tls.ca-file",
    "typo-ms",
];

/// A TOML value in source form.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0", "1", "100", "256", "257", "-1", "1e400", "nan", "0.5"
        ])
        .prop_map(str::to_owned),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,24}".prop_map(|s| format!("{s:?}")),
        Just("\"redis://127.0.0.1:1/0\"".to_owned()),
        Just("[1, \"x\"]".to_owned()),
    ]
}

#[test]
fn fuzz_redis_config() {
    let document = prop_oneof![
        prop::collection::vec((prop::sample::select(TOML_KEYS), toml_value()), 0..6).prop_map(
            |pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| format!("{k} = {v}\n"))
                    .collect::<String>()
            }
        ),
        any::<String>(),
    ];
    fuzz("redis-config-toml", document, |text| {
        match RedisOptions::from_toml(&text) {
            Err(Error::Config { key, reason }) => {
                prop_assert_eq!(key, "redis");
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "{text:?}: {other:?}"),
            Ok(options) => match options.resolve() {
                Ok(_) => {}
                Err(Error::Config { key, reason }) => {
                    prop_assert!(key.starts_with("redis."), "{text:?}: key {key:?}");
                    prop_assert!(!reason.is_empty());
                }
                Err(other) => prop_assert!(false, "{text:?}: {other:?}"),
            },
        }
        Ok(())
    });
    // A zero where a positive number is required is refused naming exactly that key.
    let positive = prop::sample::select(&TOML_KEYS[2..17]);
    fuzz("redis-config-zero", positive, |key| {
        let text = format!("{key} = 0\n");
        let err = RedisOptions::from_toml(&text)
            .unwrap()
            .resolve()
            .unwrap_err();
        let Error::Config { key: named, .. } = err else {
            return Err(TestCaseError::fail(format!("{text:?}: {err:?}")));
        };
        prop_assert_eq!(named, format!("redis.{key}"));
        Ok(())
    });
    let name = prop_oneof![
        prop::sample::select(ENV_VARS).prop_map(|(n, _)| n.to_owned()),
        "SSOT_REDIS_[A-Z_]{0,12}",
        Just("REDIS_URL".to_owned()),
    ];
    let value = prop_oneof!["[0-9]{1,22}", " ?[0-9]{1,4} ?", ".{0,16}"];
    let vars = prop::collection::vec((name, value), 0..5);
    fuzz("redis-config-env", vars, |vars| {
        match RedisOptions::from_vars(vars.clone()) {
            Err(Error::Config { key, .. }) => {
                prop_assert!(vars.iter().any(|(n, _)| *n == key), "{vars:?}: {key:?}");
            }
            Err(other) => prop_assert!(false, "{vars:?}: {other:?}"),
            Ok(options) => {
                if let Err(err) = options.resolve() {
                    prop_assert!(matches!(err, Error::Config { .. }), "{vars:?}: {err:?}");
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_tokens() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secret = b"fuzz-secret-0123456789abcdef-0123456789";
    let config = TokenConfig::hs256(secret).unwrap();
    let tokens = runtime.block_on(async {
        let manager = connect(&server.url()).await;
        Tokens::new(manager, config.clone()).await.unwrap()
    });
    let hour = Duration::from_secs(3600);
    let token_of = |user: &str| config.issue(&UserId::new(user).unwrap(), hour).unwrap();
    let (alice, bob) = (token_of("alice"), token_of("bob"));
    let verified = |token: &str| runtime.block_on(tokens.verify(token));
    let genuine = [verified(&alice).unwrap(), verified(&bob).unwrap()];
    assert_eq!(genuine[0].sub.as_str(), "alice");

    // Any byte changed, any cut, any splice of two users' tokens: verifies only with the
    // exact claims of a token really signed (a splice can rebuild all of `bob`'s), and is
    // refused with a token error otherwise.
    let mutation = (
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..4u8,
        any::<prop::sample::Index>(),
    );
    fuzz("jwt-mutation", mutation, |(at, byte, how, other)| {
        let mut bytes = alice.clone().into_bytes();
        let i = at.index(bytes.len());
        match how {
            0 => bytes[i] = byte,
            1 => bytes.truncate(i),
            2 => bytes.insert(i, byte),
            _ => {
                let j = other.index(bob.len());
                bytes.truncate(i);
                bytes.extend_from_slice(&bob.as_bytes()[j..]);
            }
        }
        let token = String::from_utf8_lossy(&bytes);
        match verified(&token) {
            Ok(claims) => prop_assert!(genuine.contains(&claims), "{token}: {claims:?}"),
            Err(err) => prop_assert!(matches!(err, Error::Token(_)), "{token}: {err:?}"),
        }
        Ok(())
    });
    fuzz("jwt-arbitrary", any::<String>(), |token| {
        let err = verified(&token).unwrap_err();
        prop_assert!(matches!(err, Error::Token(_)), "{token:?}: {err:?}");
        Ok(())
    });
}
