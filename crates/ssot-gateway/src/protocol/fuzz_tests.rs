//! Fuzz target of the inbound frame parser (issue 12): every text frame either parses into
//! exactly the frame it spells or is refused with one of the catalogue's codes, the right one.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use ssot_testkit::fuzz::fuzz;

use super::{ClientFrame, FrameError, codes, parse_client_frame};

/// A JSON value of any shape, small enough to build quickly.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A frame-like object: a `type` (valid, unknown or not a string) and fields that are
/// sometimes the right ones with the right types.
fn frame_object() -> impl Strategy<Value = Map<String, Value>> {
    let kind = prop_oneof![
        3 => prop::sample::select(vec!["resume", "ping", "message"]).prop_map(Value::from),
        1 => ".{0,40}".prop_map(Value::from),
        1 => any_json(),
    ];
    let field = prop_oneof![
        4 => ".{0,24}".prop_map(Value::from),
        1 => any_json(),
    ];
    let name = prop::sample::select(vec!["after", "id", "text", "extra", "Type"]);
    (
        prop::option::weighted(0.95, kind),
        prop::collection::btree_map(name, field, 0..4),
    )
        .prop_map(|(kind, fields)| {
            let mut object: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Some(kind) = kind {
                object.insert("type".into(), kind);
            }
            object
        })
}

/// What the parser must answer for `object`, written independently of it.
fn expected(object: &Map<String, Value>) -> Result<Vec<(&'static str, String)>, &'static str> {
    let Some(Value::String(kind)) = object.get("type") else {
        return Err(codes::INVALID_FRAME);
    };
    let wanted: &[&'static str] = match kind.as_str() {
        "resume" => &["after"],
        "ping" => &[],
        "message" => &["id", "text"],
        _ => return Err(codes::UNKNOWN_TYPE),
    };
    if object.len() != wanted.len() + 1 {
        return Err(codes::INVALID_FRAME);
    }
    wanted
        .iter()
        .map(|name| match object.get(*name) {
            Some(Value::String(s)) => Ok((*name, s.clone())),
            _ => Err(codes::INVALID_FRAME),
        })
        .collect()
}

fn fields(frame: ClientFrame) -> Vec<(&'static str, String)> {
    match frame {
        ClientFrame::Resume { after } => vec![("after", after)],
        ClientFrame::Ping {} => vec![],
        ClientFrame::Message { id, text } => vec![("id", id), ("text", text)],
    }
}

fn check_error(err: &FrameError) -> Result<(), TestCaseError> {
    prop_assert!(
        codes::ALL.contains(&err.code),
        "code {} not in the catalogue",
        err.code
    );
    prop_assert!(!err.message.is_empty());
    Ok(())
}

#[test]
fn fuzz_structured_frames() {
    fuzz("gateway-frame", frame_object(), |object| {
        let text = Value::Object(object.clone()).to_string();
        match (parse_client_frame(&text), expected(&object)) {
            (Ok(frame), Ok(want)) => prop_assert_eq!(fields(frame), want),
            (Err(err), Err(code)) => {
                check_error(&err)?;
                prop_assert_eq!(err.code, code);
            }
            (got, want) => prop_assert!(false, "{text}: parsed {got:?}, expected {want:?}"),
        }
        Ok(())
    });
}

#[test]
fn fuzz_raw_frames() {
    // Arbitrary text, and valid frames cut short or with a byte flipped.
    let raw = prop_oneof![
        any::<String>(),
        (frame_object(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(o, at, byte)| {
            let mut bytes = Value::Object(o).to_string().into_bytes();
            let at = at.index(bytes.len());
            if byte % 2 == 0 {
                bytes.truncate(at);
            } else {
                bytes[at] = byte;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }),
    ];
    fuzz("gateway-frame-raw", raw, |text| {
        let is_json = serde_json::from_str::<Value>(&text).is_ok();
        match parse_client_frame(&text) {
            Ok(_) => prop_assert!(is_json),
            Err(err) => {
                check_error(&err)?;
                prop_assert_eq!(err.code == codes::INVALID_JSON, !is_json);
            }
        }
        Ok(())
    });
}

/// Found by `fuzz_structured_frames`: a ping with an extra field was accepted, unlike every
/// other frame (serde skips `deny_unknown_fields` on internally tagged unit variants).
#[test]
fn ping_with_an_unknown_field_is_refused() {
    let err = parse_client_frame(r#"{"after":"","type":"ping"}"#).unwrap_err();
    assert_eq!(err.code, codes::INVALID_FRAME);
    assert!(matches!(
        parse_client_frame(r#"{"type":"ping"}"#),
        Ok(ClientFrame::Ping {})
    ));
}
