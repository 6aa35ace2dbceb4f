//! Tokens: every rejection kind, options from TOML, cross-process revocation.

use super::*;

pub(super) fn hs_config() -> TokenConfig {
    TokenConfig::hs256(SECRET.as_bytes())
        .unwrap()
        .with_audience(["chat"])
        .with_issuer(["ssot-test"])
}

/// Claims of a good token for `sub`, with a fresh `jti`.
pub(super) fn good_claims(sub: &str) -> Value {
    let now = unix_now();
    json!({
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "jti": format!("t-{:x}", rand::random::<u64>()),
        "aud": "chat",
        "iss": "ssot-test",
    })
}

pub(super) fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

pub(super) fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

pub(super) fn with(mut claims: Value, field: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(field);
    } else {
        claims[field] = value;
    }
    claims
}

/// Asserts that `tokens` rejects `token` with `kind`.
pub(super) async fn rejects(tokens: &Tokens, token: &str, kind: TokenError) {
    assert_eq!(rejection(tokens.verify(token).await), kind, "{token:.40}");
}

/// The subject of a token `tokens` accepts.
pub(super) async fn accepts(tokens: &Tokens, token: &str) -> String {
    tokens.verify(token).await.unwrap().sub.as_str().to_owned()
}

pub(super) fn rejection(result: redis_ssot::Result<Claims>) -> TokenError {
    match result {
        Err(Error::Token(kind)) => kind,
        other => panic!("expected a token rejection, got {other:?}"),
    }
}

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens with `config` for the audience `chat`.
pub(super) async fn tokens_for_chat(
    manager: &RedisManager,
    config: redis_ssot::Result<TokenConfig>,
) -> Tokens {
    let config = config.unwrap().with_audience(["chat"]);
    Tokens::new(manager.clone(), config).await.unwrap()
}

pub(super) async fn token_rejections(manager: &RedisManager) {
    let tokens = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    let now = unix_now();
    let claims = good_claims("dave");
    let good = hs(&claims);
    let verified = tokens.verify(&good).await.unwrap();
    assert_eq!(verified.sub, UserId::new("dave").unwrap());
    assert_eq!(verified.aud, vec!["chat".to_owned()]);
    assert_eq!(verified.iss.as_deref(), Some("ssot-test"));
    assert_eq!(verified.jti.as_deref(), claims["jti"].as_str());
    // Cached: the same answer again.
    assert_eq!(tokens.verify(&good).await.unwrap(), verified);

    // alg none, with and without a signature part.
    let payload = b64(claims.to_string().as_bytes());
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#] {
        let unsigned = format!("{}.{payload}.", b64(header.as_bytes()));
        rejects(&tokens, &unsigned, TokenError::Unsigned).await;
    }
    // Another algorithm of the same family is not on the allowlist either.
    let hs512 = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &claims,
    );
    rejects(&tokens, &hs512, TokenError::Algorithm).await;

    // HS/RS confusion: the RSA public key used as an HS256 secret.
    let rs_tokens = tokens_for_chat(manager, TokenConfig::rs256_pem(RSA_PUBLIC)).await;
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &claims,
    );
    rejects(&rs_tokens, &confused, TokenError::KeyConfusion).await;
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let rs_good = sign(Algorithm::RS256, &rsa_key, &good_claims("erin"));
    assert_eq!(accepts(&rs_tokens, &rs_good).await, "erin");
    // ...and an RS256 token is not accepted where HS256 is configured.
    rejects(&tokens, &rs_good, TokenError::KeyConfusion).await;

    // EdDSA by configuration.
    let ed_tokens = tokens_for_chat(manager, TokenConfig::eddsa_pem(ED_PUBLIC)).await;
    let ed_key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let ed_good = sign(Algorithm::EdDSA, &ed_key, &good_claims("frank"));
    assert_eq!(accepts(&ed_tokens, &ed_good).await, "frank");
    rejects(&ed_tokens, &rs_good, TokenError::Algorithm).await;
    assert!(TokenConfig::eddsa_pem(RSA_PUBLIC).is_err());
    assert!(TokenConfig::hs256(b"short").is_err());

    // Time: past exp and future nbf beyond the 5 s leeway; within it passes.
    let expired = hs(&with(good_claims("dave"), "exp", json!(now - 60)));
    rejects(&tokens, &expired, TokenError::Expired).await;
    let in_leeway = hs(&with(good_claims("dave"), "exp", json!(now - 2)));
    assert!(tokens.verify(&in_leeway).await.is_ok());
    let early = hs(&with(good_claims("dave"), "nbf", json!(now + 60)));
    rejects(&tokens, &early, TokenError::NotYetValid).await;

    // Audience and issuer.
    let wrong_aud = hs(&with(good_claims("dave"), "aud", json!(["billing"])));
    rejects(&tokens, &wrong_aud, TokenError::WrongAudience).await;
    let wrong_iss = hs(&with(good_claims("dave"), "iss", json!("someone-else")));
    rejects(&tokens, &wrong_iss, TokenError::WrongIssuer).await;

    // Tampering: a changed signature, a changed payload, another secret.
    let (body, signature) = good.rsplit_once('.').unwrap();
    let mut sig = signature.as_bytes().to_vec();
    sig[4] = if sig[4] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{body}.{}", String::from_utf8(sig).unwrap());
    rejects(&tokens, &tampered, TokenError::BadSignature).await;
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = b64(with(claims.clone(), "sub", json!("mallory"))
        .to_string()
        .as_bytes());
    parts[1] = &forged_payload;
    rejects(&tokens, &parts.join("."), TokenError::BadSignature).await;
    let other_secret = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-0123456789abcdef-0123456789"),
        &claims,
    );
    rejects(&tokens, &other_secret, TokenError::BadSignature).await;

    // Malformed and missing.
    rejects(&tokens, "", TokenError::Missing).await;
    for junk in [
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "....",
        &"x".repeat(10_000),
    ] {
        rejects(&tokens, junk, TokenError::Malformed).await;
    }

    // Claims: sub missing or not a valid user id, exp missing, jti unusable.
    let no_sub = hs(&with(good_claims("dave"), "sub", Value::Null));
    rejects(&tokens, &no_sub, TokenError::Claim("sub")).await;
    for bad_sub in ["a:b", "*", "{x}", ""] {
        let token = hs(&with(good_claims("dave"), "sub", json!(bad_sub)));
        rejects(&tokens, &token, TokenError::Claim("sub")).await;
    }
    let no_exp = hs(&with(good_claims("dave"), "exp", Value::Null));
    rejects(&tokens, &no_exp, TokenError::Claim("exp")).await;
    let bad_jti = hs(&with(good_claims("dave"), "jti", json!("a b*")));
    rejects(&tokens, &bad_jti, TokenError::Claim("jti")).await;

    // Revocation: a verified (cached) token is rejected right after revoke.
    let jti = verified.jti.clone().unwrap();
    tokens.revoke(&jti, verified.exp).await.unwrap();
    rejects(&tokens, &good, TokenError::Revoked).await;
    // The marker lives until the token could no longer pass: exp plus the 5 s leeway.
    let ttl: i64 = manager
        .query(redis::cmd("TTL").arg(format!("ssot:revoked:{jti}")))
        .await
        .unwrap();
    let until = (verified.exp + 5).saturating_sub(unix_now()) as i64;
    assert!(
        (until - 2..=until).contains(&ttl),
        "TTL {ttl}, expected about {until}"
    );
    // A fresh instance without local knowledge asks Redis.
    let fresh = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    rejects(&fresh, &good, TokenError::Revoked).await;

    // issue(): HS256 only, verifiable by any instance with the same secret.
    let user = UserId::new("gina").unwrap();
    let issued = tokens.issue(&user, Duration::from_secs(60)).unwrap();
    let claims = fresh.verify(&issued).await.unwrap();
    assert_eq!(claims.sub, user);
    assert!(claims.jti.is_some());
    assert!(claims.exp >= now + 59);
    let err = rs_tokens.issue(&user, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

/// Token settings from TOML: defaults, errors naming the setting, secrets kept out of Debug.
#[test]
fn token_options_resolve() {
    let parse = |text: &str| toml::from_str::<TokenOptions>(text).unwrap().resolve();
    let config = parse(&format!("secret = \"{SECRET}\"\naudience = [\"chat\"]")).unwrap();
    assert_eq!(config.algorithm(), TokenAlgorithm::HS256);
    assert!(!config.is_strict());
    assert!(!format!("{config:?}").contains(SECRET));
    let options: TokenOptions = toml::from_str(&format!("secret = \"{SECRET}\"")).unwrap();
    assert!(!format!("{options:?}").contains(SECRET));

    let rs = format!(
        "algorithm = \"RS256\"\npublic-key = '''\n{RSA_PUBLIC}'''\nstrict-revocation = true"
    );
    let config = parse(&rs).unwrap();
    assert_eq!(config.algorithm(), TokenAlgorithm::RS256);
    assert!(config.is_strict());

    for (text, key) in [
        ("", "tokens.secret"),
        ("secret = \"short\"", "tokens.secret"),
        ("algorithm = \"EdDSA\"", "tokens.public-key"),
        (
            "algorithm = \"EdDSA\"\npublic-key = \"not a pem\"",
            "tokens.public-key",
        ),
    ] {
        match parse(text) {
            Err(Error::Config { key: got, .. }) => assert_eq!(got, key, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(toml::from_str::<TokenOptions>("algorithm = \"none\"").is_err());
    assert!(toml::from_str::<TokenOptions>("secrett = \"x\"").is_err());
}

/// A revocation made by one process (its own manager) reaches another within a second.
pub(super) async fn token_revocation_reaches_other_processes(manager: &RedisManager) {
    let other_manager = RedisManager::connect(manager.config().clone())
        .await
        .unwrap();
    assert_ne!(other_manager.instance_id(), manager.instance_id());
    let here = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    let there = Tokens::new(other_manager.clone(), hs_config())
        .await
        .unwrap();
    let mut announced = there.revocations();
    let token = hs(&good_claims("henry"));
    let claims = there.verify(&token).await.unwrap();
    let jti = claims.jti.clone().unwrap();

    let start = Instant::now();
    here.revoke(&jti, claims.exp).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(1), announced.recv())
        .await
        .expect("revocation announced within 1 s")
        .unwrap();
    assert_eq!(got, jti);
    eprintln!(
        "revocation seen by the other process after {:?}",
        start.elapsed()
    );
    rejects(&there, &token, TokenError::Revoked).await;
}
