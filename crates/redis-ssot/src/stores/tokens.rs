//! `Tokens`: JWT verification with an in-process cache, and revocation by `jti`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::error::{Error, Result};
use crate::keys::{self, UserId};
use crate::manager::RedisManager;
use crate::pubsub::SubscriptionEvent;

/// Default allowance for clock skew on `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Default number of verified tokens kept in process.
pub const DEFAULT_CACHE_SIZE: usize = 10_000;
/// Default time a verified token is kept in process (never past its `exp`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default longest token lifetime of `[tokens] max-lifetime-secs`: `exp - iat`, and
/// `exp - now`, may not exceed it.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Longest lifetime any [`TokenConfig`] accepts, also one built in code without
/// [`TokenConfig::with_max_lifetime`]: a token that "never expires" (`exp = u64::MAX`) is
/// refused everywhere.
pub const MAX_LIFETIME_CEILING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// Shortest accepted HS256 secret (RFC 7518 §3.2: a key of at least the hash size).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest token looked at; anything longer is malformed.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Revoked ids broadcast to local listeners before a slow listener loses some.
const REVOCATION_BUFFER: usize = 1024;
/// Local revoked ids kept before expired ones are pruned.
const LOCAL_REVOKED_PRUNE_AT: usize = 10_000;

/// Why a token was rejected; each kind maps to its own HTTP status / close code at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token was presented.
    #[error("missing token")]
    Missing,
    /// Not a JWT, or its parts do not decode.
    #[error("malformed token")]
    Malformed,
    /// Unsigned: the header's `alg` is `none` (in any case).
    #[error("unsigned token (alg none)")]
    Unsigned,
    /// The header names an algorithm of the other family than the configured key: an HMAC
    /// token where a public key is configured (the RS256 public key used as an HS256
    /// secret), or a public-key token where a shared secret is configured.
    #[error("algorithm family does not match the configured key (key confusion)")]
    KeyConfusion,
    /// Another algorithm of the configured family (HS512 where HS256 is configured, RS256
    /// where EdDSA is), or an unknown one.
    #[error("algorithm not allowed")]
    Algorithm,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` does not match.
    #[error("wrong audience")]
    WrongAudience,
    /// `iss` does not match.
    #[error("wrong issuer")]
    WrongIssuer,
    /// A required claim is missing or unusable (`sub`, `exp`, `jti`).
    #[error("missing or invalid claim {0}")]
    Claim(&'static str),
    /// The token's `jti` was revoked.
    #[error("token revoked")]
    Revoked,
    /// `exp` is further from `iat` or from now than the configured maximum lifetime.
    #[error("token lifetime above the maximum")]
    Lifetime,
}

/// The signature algorithms a [`TokenConfig`] can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TokenAlgorithm {
    /// HMAC-SHA256 with a shared secret (the default).
    #[default]
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, verified with an RSA public key.
    RS256,
    /// Ed25519, verified with an Ed25519 public key.
    EdDSA,
}

impl TokenAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            TokenAlgorithm::HS256 => Algorithm::HS256,
            TokenAlgorithm::RS256 => Algorithm::RS256,
            TokenAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }

    /// The name used in a JWT header (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAlgorithm::HS256 => "HS256",
            TokenAlgorithm::RS256 => "RS256",
            TokenAlgorithm::EdDSA => "EdDSA",
        }
    }
}

/// Token settings as written by the user (a `[tokens]` TOML table). Resolve with
/// [`TokenOptions::resolve`].
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenOptions {
    /// `HS256` (default), `RS256` or `EdDSA`. The only algorithm accepted.
    pub algorithm: Option<TokenAlgorithm>,
    /// The shared secret for HS256 (at least [`MIN_SECRET_LEN`] bytes).
    pub secret: Option<String>,
    /// The PEM public key for RS256 or EdDSA.
    pub public_key: Option<String>,
    /// Accepted audiences; when set, `aud` is required and must contain one of them.
    pub audience: Option<Vec<String>>,
    /// Accepted issuers; when set, `iss` is required and must be one of them.
    pub issuer: Option<Vec<String>>,
    /// Clock skew allowance on `exp` / `nbf`, in seconds (default 5).
    pub leeway_secs: Option<u64>,
    /// Reject tokens when revocation cannot be checked in Redis (default false: best effort).
    pub strict_revocation: Option<bool>,
    /// Verified tokens kept in process (default 10,000; 0 disables the cache).
    pub cache_size: Option<usize>,
    /// How long a verified token is kept in process, in milliseconds (default 60,000).
    pub cache_ttl_ms: Option<u64>,
    /// Longest accepted lifetime in seconds, `exp - iat` and `exp - now` (default 86,400).
    pub max_lifetime_secs: Option<u64>,
    /// Accept tokens without an audience check even where one is required (a gateway
    /// listening beyond loopback). For development only; default false.
    pub allow_any_audience: Option<bool>,
}

impl fmt::Debug for TokenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenOptions")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key.as_ref().map(|_| "<pem>"))
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("leeway_secs", &self.leeway_secs)
            .field("strict_revocation", &self.strict_revocation)
            .field("cache_size", &self.cache_size)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .field("allow_any_audience", &self.allow_any_audience)
            .finish()
    }
}

impl TokenOptions {
    /// Validates the options into a [`TokenConfig`]; errors name the setting (`tokens.<name>`).
    pub fn resolve(self) -> Result<TokenConfig> {
        let algorithm = self.algorithm.unwrap_or_default();
        let mut config = match algorithm {
            TokenAlgorithm::HS256 => {
                let secret = self.secret.ok_or_else(|| {
                    Error::config("tokens.secret", "required for algorithm HS256")
                })?;
                TokenConfig::hs256(secret.as_bytes())
            }
            TokenAlgorithm::RS256 | TokenAlgorithm::EdDSA => {
                if self.secret.is_some() {
                    return Err(Error::config(
                        "tokens.secret",
                        format!("not used with {}; set public-key", algorithm.as_str()),
                    ));
                }
                let pem = self.public_key.ok_or_else(|| {
                    Error::config(
                        "tokens.public-key",
                        format!("required for algorithm {}", algorithm.as_str()),
                    )
                })?;
                if algorithm == TokenAlgorithm::RS256 {
                    TokenConfig::rs256_pem(&pem)
                } else {
                    TokenConfig::eddsa_pem(&pem)
                }
            }
        }?;
        if let Some(audience) = self.audience {
            config = config.with_audience(audience);
        }
        if let Some(issuer) = self.issuer {
            config = config.with_issuer(issuer);
        }
        if let Some(secs) = self.leeway_secs {
            config = config.with_leeway(Duration::from_secs(secs));
        }
        if let Some(strict) = self.strict_revocation {
            config = config.strict(strict);
        }
        let lifetime = match self.max_lifetime_secs {
            None => DEFAULT_MAX_LIFETIME,
            Some(0) => {
                return Err(Error::config(
                    "tokens.max-lifetime-secs",
                    "must be greater than 0",
                ));
            }
            Some(secs) => Duration::from_secs(secs),
        };
        config = config
            .with_max_lifetime(lifetime)
            .allow_any_audience(self.allow_any_audience.unwrap_or(false));
        let size = self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE);
        let ttl = self
            .cache_ttl_ms
            .map_or(DEFAULT_CACHE_TTL, Duration::from_millis);
        Ok(config.with_cache(size, ttl))
    }
}

/// Validated token settings: one algorithm and its key, plus claim checks.
///
/// Build with [`TokenConfig::hs256`], [`TokenConfig::rs256_pem`] or
/// [`TokenConfig::eddsa_pem`] and the `with_*` methods, or from [`TokenOptions`].
/// Keys never appear in `Debug`.
#[derive(Clone)]
pub struct TokenConfig {
    algorithm: TokenAlgorithm,
    decoding: DecodingKey,
    /// Only for HS256: lets [`TokenConfig::issue`] sign development tokens.
    encoding: Option<EncodingKey>,
    audience: Vec<String>,
    issuer: Vec<String>,
    leeway: Duration,
    strict: bool,
    cache_size: usize,
    cache_ttl: Duration,
    max_lifetime: Duration,
    any_audience: bool,
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("leeway", &self.leeway)
            .field("strict", &self.strict)
            .field("cache_size", &self.cache_size)
            .field("cache_ttl", &self.cache_ttl)
            .field("max_lifetime", &self.max_lifetime)
            .field("any_audience", &self.any_audience)
            .finish()
    }
}

impl TokenConfig {
    /// Signs a token for `sub` valid for `ttl`, with a random `jti` and the first configured
    /// audience and issuer. Only with HS256 (the secret signs); meant for development
    /// (`ssot token`) and tests. Needs no Redis.
    pub fn issue(&self, sub: &UserId, ttl: Duration) -> Result<String> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            Error::invalid(
                "token",
                format!(
                    "issuing needs an HS256 secret, configured {}",
                    self.algorithm.as_str()
                ),
            )
        })?;
        let now = unix_now();
        let claims = WireClaims {
            sub: Some(sub.as_str().to_owned()),
            exp: Some(now.saturating_add(ttl.as_secs())),
            nbf: None,
            iat: Some(now),
            jti: Some(format!("{:032x}", rand::random::<u128>())),
            aud: self.audience.first().cloned().map(Audience::One),
            iss: self.issuer.first().cloned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| Error::invalid("token", format!("cannot sign: {e}")))
    }

    /// HS256 with a shared `secret` of at least [`MIN_SECRET_LEN`] bytes.
    pub fn hs256(secret: &[u8]) -> Result<TokenConfig> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::config(
                "tokens.secret",
                format!(
                    "must be at least {MIN_SECRET_LEN} bytes, got {}",
                    secret.len()
                ),
            ));
        }
        Ok(TokenConfig::with_key(
            TokenAlgorithm::HS256,
            DecodingKey::from_secret(secret),
            Some(EncodingKey::from_secret(secret)),
        ))
    }

    /// RS256 verified with an RSA public key in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    pub fn rs256_pem(public_key: &str) -> Result<TokenConfig> {
        let key = DecodingKey::from_rsa_pem(public_key.as_bytes()).map_err(|e| {
            Error::config("tokens.public-key", format!("not an RSA public key: {e}"))
        })?;
        Ok(TokenConfig::with_key(TokenAlgorithm::RS256, key, None))
    }

    /// EdDSA (Ed25519) verified with a public key in PEM (`BEGIN PUBLIC KEY`).
    pub fn eddsa_pem(public_key: &str) -> Result<TokenConfig> {
        let key = DecodingKey::from_ed_pem(public_key.as_bytes()).map_err(|e| {
            Error::config(
                "tokens.public-key",
                format!("not an Ed25519 public key: {e}"),
            )
        })?;
        Ok(TokenConfig::with_key(TokenAlgorithm::EdDSA, key, None))
    }

    fn with_key(
        algorithm: TokenAlgorithm,
        decoding: DecodingKey,
        encoding: Option<EncodingKey>,
    ) -> TokenConfig {
        TokenConfig {
            algorithm,
            decoding,
            encoding,
            audience: Vec::new(),
            issuer: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            strict: false,
            cache_size: DEFAULT_CACHE_SIZE,
            cache_ttl: DEFAULT_CACHE_TTL,
            max_lifetime: MAX_LIFETIME_CEILING,
            any_audience: false,
        }
    }

    /// The longest accepted lifetime: `exp - iat` (when `iat` is present) and `exp - now`.
    /// Capped at [`MAX_LIFETIME_CEILING`]; built in code the cap is that ceiling, from
    /// [`TokenOptions`] it is [`DEFAULT_MAX_LIFETIME`] unless configured.
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime.min(MAX_LIFETIME_CEILING);
        self
    }

    /// Declares that no audience check is wanted, even where one is required (see
    /// [`TokenOptions::allow_any_audience`]).
    pub fn allow_any_audience(mut self, allow: bool) -> Self {
        self.any_audience = allow;
        self
    }

    /// The accepted audiences (empty: `aud` is not checked).
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// True when [`allow_any_audience`](TokenConfig::allow_any_audience) was set.
    pub fn allows_any_audience(&self) -> bool {
        self.any_audience
    }

    /// The longest accepted lifetime.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// Requires `aud` to contain one of `audience` (an empty list turns the check off).
    pub fn with_audience(mut self, audience: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// Requires `iss` to be one of `issuer` (an empty list turns the check off).
    pub fn with_issuer(mut self, issuer: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.issuer = issuer.into_iter().map(Into::into).collect();
        self
    }

    /// Clock skew allowance on `exp` and `nbf` (whole seconds).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Strict mode: reject tokens (with the transient error) when revocation cannot be
    /// checked in Redis, instead of trusting the local revoked set.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The in-process cache: at most `size` verified tokens (0 turns it off), each kept at
    /// most `ttl`.
    pub fn with_cache(mut self, size: usize, ttl: Duration) -> Self {
        self.cache_size = size;
        self.cache_ttl = ttl;
        self
    }

    /// The one accepted algorithm.
    pub fn algorithm(&self) -> TokenAlgorithm {
        self.algorithm
    }

    /// Whether revocation checks are strict.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithm.jwt());
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
            required.push("aud");
        }
        if !self.issuer.is_empty() {
            validation.set_issuer(&self.issuer);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user the token is for.
    pub sub: UserId,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds.
    pub nbf: Option<u64>,
    /// Issued at, Unix seconds.
    pub iat: Option<u64>,
    /// Token id, the handle for revocation. Tokens without one cannot be revoked.
    pub jti: Option<String>,
    /// Audiences (empty when absent).
    pub aud: Vec<String>,
    /// Issuer.
    pub iss: Option<String>,
}

/// Claims as they appear in a JWT.
#[derive(Serialize, Deserialize)]
struct WireClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies JWTs and revokes them by `jti`.
///
/// ## Behavior
/// - Exactly one algorithm is accepted, the configured one (HS256 by default, or RS256 /
///   EdDSA). The header's `alg` is read before anything else: `none` is
///   [`TokenError::Unsigned`], the other family (an RS256 public key used as an HS256
///   secret) [`TokenError::KeyConfusion`], any other algorithm [`TokenError::Algorithm`].
/// - `exp` and `sub` are required, `nbf` is checked when present, both with the leeway
///   (default 5 s); `aud` / `iss` are required and checked when configured. `sub` must be a
///   valid [`UserId`] and `jti`, when present, a valid name; otherwise
///   [`TokenError::Claim`].
/// - Verified tokens are cached in process: at most `cache_size`, each for at most
///   `cache_ttl` and never past its `exp`. The cache keeps two generations of maps and drops
///   the older one when the newer is half full, which bounds memory with O(1) work per call
///   and keeps recently used tokens.
/// - Revocation is checked on every call, cached or not: first against the local revoked
///   set, then with `EXISTS ssot:revoked:<jti>` through the manager. When that check fails
///   because Redis is unavailable, best-effort mode (default) accepts the token on the
///   strength of the local set, and strict mode returns the transient error.
/// - [`revoke`](Tokens::revoke) writes the marker with a TTL until the token's expiry and
///   publishes the id on `ssot:revocations`. Every `Tokens` subscribes to that channel
///   through the manager's shared subscriber connection, adds the id to its local set and
///   passes it to [`revocations`](Tokens::revocations) receivers (the gateway closes the
///   sockets authenticated with it). Ids published while a process was disconnected are
///   not replayed: the Redis check on every call covers new calls, and
///   [`resyncs`](Tokens::resyncs) changes after each such gap so holders verify again.
/// - Cheap to clone; the listener stops when the last clone is dropped. Opens no connection.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

struct Inner {
    manager: RedisManager,
    config: TokenConfig,
    validation: Validation,
    local: Arc<Local>,
    listener: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// State shared with the revocation listener.
struct Local {
    cache: Mutex<VerifiedCache>,
    /// Revoked ids and when their tokens stop passing (`exp` + leeway, Unix seconds).
    revoked: Mutex<HashMap<String, u64>>,
    leeway_secs: u64,
    announce: broadcast::Sender<String>,
    /// Counts gaps on the revocation channel (see [`Tokens::resyncs`]).
    resync: watch::Sender<u64>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Tokens {
    /// Token verification on `manager` with `config`. Subscribes to revocations through the
    /// manager (waiting for Redis to confirm when connected; while Redis is down the
    /// subscription starts after reconnect). Must run inside a Tokio runtime.
    pub async fn new(manager: RedisManager, config: TokenConfig) -> Result<Tokens> {
        let (announce, _) = broadcast::channel(REVOCATION_BUFFER);
        let local = Arc::new(Local {
            cache: Mutex::new(VerifiedCache::new(config.cache_size, config.cache_ttl)),
            revoked: Mutex::new(HashMap::new()),
            leeway_secs: config.leeway.as_secs(),
            announce,
            resync: watch::channel(0).0,
        });
        let mut subscription = manager.subscribe(keys::REVOCATIONS_CHANNEL).await?;
        let listener = tokio::spawn({
            let local = Arc::clone(&local);
            async move {
                while let Some(event) = subscription.recv().await {
                    let SubscriptionEvent::Message(payload) = event else {
                        // A gap: announcements were missed. New calls check Redis anyway;
                        // holders of already verified tokens are told to verify again.
                        local
                            .resync
                            .send_modify(|gaps| *gaps = gaps.wrapping_add(1));
                        continue;
                    };
                    match parse_announcement(&payload) {
                        Some((exp, jti)) => {
                            local.mark_revoked(jti, exp);
                            let _ = local.announce.send(jti.to_owned());
                        }
                        None => tracing::warn!("ignoring a malformed revocation message"),
                    }
                }
            }
        })
        .abort_handle();
        Ok(Tokens {
            inner: Arc::new(Inner {
                manager,
                validation: config.validation(),
                config,
                local,
                listener,
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &TokenConfig {
        &self.inner.config
    }

    /// Verifies `token` and returns its claims. Rejections are [`Error::Token`]; a transient
    /// error is possible only in strict mode, when revocation cannot be checked.
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        let inner = &*self.inner;
        let now = unix_now();
        let cached = inner.local.cache_lock().get(token, now);
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self.decode(token)?;
                inner.local.cache_lock().insert(token, claims.clone());
                claims
            }
        };
        let Some(jti) = &claims.jti else {
            return Ok(claims);
        };
        if inner.local.is_revoked(jti, now) {
            return Err(TokenError::Revoked.into());
        }
        let key = keys::revoked_token(jti)?;
        match inner
            .manager
            .query::<i64>(redis::cmd("EXISTS").arg(&key))
            .await
        {
            Ok(0) => Ok(claims),
            Ok(_) => {
                inner.local.mark_revoked(jti, claims.exp);
                Err(TokenError::Revoked.into())
            }
            Err(err) if err.is_transient() && !inner.config.strict => {
                tracing::debug!(cause = %err, "revocation check skipped (best effort)");
                Ok(claims)
            }
            Err(err) => Err(err),
        }
    }

    /// Signature and claim checks, without cache or revocation.
    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let alg = header_alg(token)?;
        let configured = self.inner.config.algorithm;
        if alg != configured.as_str() {
            return Err(if alg.eq_ignore_ascii_case("none") {
                TokenError::Unsigned
            } else if alg.starts_with("HS") != (configured == TokenAlgorithm::HS256) {
                TokenError::KeyConfusion
            } else {
                TokenError::Algorithm
            });
        }
        let data = jsonwebtoken::decode::<WireClaims>(
            token,
            &self.inner.config.decoding,
            &self.inner.validation,
        )
        .map_err(|e| token_error(e.kind()))?;
        let wire = data.claims;
        let sub = wire
            .sub
            .as_deref()
            .and_then(|s| UserId::new(s).ok())
            .ok_or(TokenError::Claim("sub"))?;
        let exp = wire.exp.ok_or(TokenError::Claim("exp"))?;
        let longest = self.inner.config.max_lifetime.as_secs();
        let too_long_from = |start: u64| exp.saturating_sub(start) > longest;
        if too_long_from(unix_now()) || wire.iat.is_some_and(too_long_from) {
            return Err(TokenError::Lifetime);
        }
        if let Some(jti) = &wire.jti
            && keys::check_name("token id", jti).is_err()
        {
            return Err(TokenError::Claim("jti"));
        }
        Ok(Claims {
            sub,
            exp,
            nbf: wire.nbf,
            iat: wire.iat,
            jti: wire.jti,
            aud: match wire.aud {
                None => Vec::new(),
                Some(Audience::One(aud)) => vec![aud],
                Some(Audience::Many(aud)) => aud,
            },
            iss: wire.iss,
        })
    }

    /// Revokes the token id `jti` until `until_exp` (Unix seconds, the token's `exp`):
    /// stores the marker in Redis and announces it to every process. Idempotent: after an
    /// error, retry. If only the announcement failed, the token is already rejected
    /// everywhere by the Redis check, and other processes' [`revocations`](Tokens::revocations)
    /// receivers miss it.
    pub async fn revoke(&self, jti: &str, until_exp: u64) -> Result<()> {
        let inner = &*self.inner;
        let key = keys::revoked_token(jti)?;
        // Kept while a token could still pass with the leeway.
        let ttl = until_exp
            .saturating_sub(unix_now())
            .saturating_add(inner.config.leeway.as_secs())
            .max(1);
        inner
            .manager
            .query::<()>(redis::cmd("SET").arg(&key).arg(1).arg("EX").arg(ttl))
            .await?;
        inner.local.mark_revoked(jti, until_exp);
        inner
            .manager
            .publish(keys::REVOCATIONS_CHANNEL, format!("{until_exp} {jti}"))
            .await?;
        Ok(())
    }

    /// Revoked token ids as they are announced (by any process, this one included).
    pub fn revocations(&self) -> broadcast::Receiver<String> {
        self.inner.local.announce.subscribe()
    }

    /// Changes after every gap on the revocation channel (the subscriber connection came
    /// back, or this process fell behind): announcements may have been missed, so whoever
    /// holds a verified token (an open socket) must [`verify`](Tokens::verify) it again.
    /// The value counts the gaps since start.
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.inner.local.resync.subscribe()
    }

    /// Signs a development token; see [`TokenConfig::issue`].
    pub fn issue(&self, sub: &UserId, ttl: Duration) -> Result<String> {
        self.inner.config.issue(sub, ttl)
    }
}

impl Local {
    fn cache_lock(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn revoked_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_revoked(&self, jti: &str, now: u64) -> bool {
        self.revoked_lock()
            .get(jti)
            .is_some_and(|&until| until >= now)
    }

    /// Remembers a revoked id until its token stops passing; such ids are pruned as the set
    /// grows.
    fn mark_revoked(&self, jti: &str, exp: u64) {
        let mut revoked = self.revoked_lock();
        if revoked.len() >= LOCAL_REVOKED_PRUNE_AT {
            let now = unix_now();
            revoked.retain(|_, &mut until| until >= now);
        }
        revoked.insert(jti.to_owned(), exp.saturating_add(self.leeway_secs));
    }
}

/// Verified tokens, bounded in number and age: two generations of maps; a hit in the older
/// one moves the entry to the newer one, and when the newer one is half full it replaces
/// the older one.
struct VerifiedCache {
    half: usize,
    ttl: Duration,
    young: HashMap<String, Cached>,
    old: HashMap<String, Cached>,
}

struct Cached {
    claims: Claims,
    at: Instant,
}

impl VerifiedCache {
    fn new(size: usize, ttl: Duration) -> VerifiedCache {
        VerifiedCache {
            half: size.div_ceil(2),
            ttl,
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    fn get(&mut self, token: &str, now: u64) -> Option<Claims> {
        let fresh = |c: &Cached| c.at.elapsed() < self.ttl && c.claims.exp >= now;
        if let Some(cached) = self.young.get(token) {
            if fresh(cached) {
                return Some(cached.claims.clone());
            }
            self.young.remove(token);
            return None;
        }
        let cached = self.old.remove(token)?;
        if !fresh(&cached) {
            return None;
        }
        let claims = cached.claims.clone();
        self.put(token.to_owned(), cached);
        Some(claims)
    }

    fn insert(&mut self, token: &str, claims: Claims) {
        self.put(
            token.to_owned(),
            Cached {
                claims,
                at: Instant::now(),
            },
        );
    }

    fn put(&mut self, token: String, cached: Cached) {
        if self.half == 0 {
            return;
        }
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(token, cached);
    }
}

/// The header's `alg`, read before any verification so that `none` and unknown names are
/// [`TokenError::Algorithm`] rather than a parse error.
fn header_alg(token: &str) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct JoseHeader {
        alg: String,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: JoseHeader = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    Ok(header.alg)
}

fn token_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
        ErrorKind::MissingRequiredClaim(name) | ErrorKind::InvalidClaimFormat(name) => {
            TokenError::Claim(claim_name(name))
        }
        ErrorKind::InvalidSubject => TokenError::Claim("sub"),
        // A key that cannot verify (checked when configured) or a token that does not parse.
        _ => TokenError::Malformed,
    }
}

fn claim_name(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "sub" => "sub",
        "aud" => "aud",
        "iss" => "iss",
        "nbf" => "nbf",
        _ => "unknown",
    }
}

/// `"<exp> <jti>"`, as published by [`Tokens::revoke`].
fn parse_announcement(payload: &[u8]) -> Option<(u64, &str)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (exp, jti) = text.split_once(' ')?;
    keys::check_name("token id", jti).ok()?;
    Some((exp.parse().ok()?, jti))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(n: u64) -> Claims {
        Claims {
            sub: UserId::new(&format!("u{n}")).unwrap(),
            exp: unix_now() + 600,
            nbf: None,
            iat: None,
            jti: None,
            aud: Vec::new(),
            iss: None,
        }
    }

    #[test]
    fn verified_cache_is_bounded_in_size() {
        let mut cache = VerifiedCache::new(100, Duration::from_secs(60));
        for n in 0..1_000 {
            cache.insert(&format!("token-{n}"), claims(n));
            assert!(cache.young.len() + cache.old.len() <= 100);
        }
        let now = unix_now();
        // The newest half is kept; the oldest entries are gone.
        assert!(cache.get("token-999", now).is_some());
        assert!(cache.get("token-0", now).is_none());
        // A hit in the older generation survives the next turnover.
        let kept = (900..1_000)
            .map(|n| format!("token-{n}"))
            .find(|t| cache.old.contains_key(t))
            .expect("an entry in the older generation");
        assert!(cache.get(&kept, now).is_some());
        for n in 1_000..1_049 {
            cache.insert(&format!("token-{n}"), claims(n));
        }
        assert!(cache.get(&kept, now).is_some());
    }

    #[test]
    fn verified_cache_entries_expire_by_age_and_by_exp() {
        let mut cache = VerifiedCache::new(10, Duration::from_millis(30));
        cache.insert("young", claims(1));
        let now = unix_now();
        assert!(cache.get("young", now).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("young", now).is_none(), "kept past the cache ttl");

        let mut cache = VerifiedCache::new(10, Duration::from_secs(60));
        let mut expiring = claims(2);
        expiring.exp = now + 1;
        cache.insert("expiring", expiring);
        assert!(cache.get("expiring", now).is_some());
        assert!(
            cache.get("expiring", now + 2).is_none(),
            "kept past the token's exp"
        );
    }

    #[test]
    fn a_zero_sized_cache_keeps_nothing() {
        let mut cache = VerifiedCache::new(0, Duration::from_secs(60));
        cache.insert("t", claims(1));
        assert!(cache.get("t", unix_now()).is_none());
    }
}
