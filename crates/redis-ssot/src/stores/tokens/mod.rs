//! `Tokens`: JWT verification with an in-process cache, and revocation by `jti`.
//!
//! # Layout
//! - `error`: [`TokenError`], why a token was refused.
//! - `config`: [`TokenOptions`] (the `[tokens]` table) resolved into [`TokenConfig`]: the
//!   algorithm and its key, claim checks, lifetime, cache limits; development tokens.
//! - `claims`: [`Claims`] of a verified token, and their JWT form.
//! - this file: [`Tokens`], the verifier.
//! - `cache`: the in-process cache of verified tokens.
//! - `revocations`: the local revoked set and its listener on `ssot:revocations` (the only
//!   part that touches Redis besides the `EXISTS` check and `revoke`).

mod cache;
mod claims;
mod config;
mod error;
mod revocations;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

pub use self::claims::Claims;
pub use self::config::{
    DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME,
    MAX_LIFETIME_CEILING, MIN_SECRET_LEN, TokenAlgorithm, TokenConfig, TokenOptions,
};
pub use self::error::TokenError;

use self::cache::VerifiedCache;
use self::claims::{Audience, WireClaims};
use self::revocations::Revocations;
use crate::error::Result;
use crate::keys::{self, UserId};
use crate::manager::RedisManager;

/// Longest token looked at; anything longer is malformed.
const MAX_TOKEN_LEN: usize = 8 * 1024;

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
    cache: Mutex<VerifiedCache>,
    revocations: Arc<Revocations>,
    listener: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
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
        let revocations = Arc::new(Revocations::new(config.leeway.as_secs()));
        let subscription = manager.subscribe(keys::REVOCATIONS_CHANNEL).await?;
        let listener = tokio::spawn({
            let revocations = Arc::clone(&revocations);
            async move { revocations.listen(subscription).await }
        })
        .abort_handle();
        Ok(Tokens {
            inner: Arc::new(Inner {
                manager,
                validation: config.validation(),
                cache: Mutex::new(VerifiedCache::new(config.cache_size, config.cache_ttl)),
                revocations,
                config,
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
        let cached = inner.cache_lock().get(token, now);
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self.decode(token)?;
                inner.cache_lock().insert(token, claims.clone());
                claims
            }
        };
        let Some(jti) = &claims.jti else {
            return Ok(claims);
        };
        if inner.revocations.is_revoked(jti, now) {
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
                inner.revocations.mark_revoked(jti, claims.exp);
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
        inner.revocations.mark_revoked(jti, until_exp);
        inner
            .manager
            .publish(keys::REVOCATIONS_CHANNEL, format!("{until_exp} {jti}"))
            .await?;
        Ok(())
    }

    /// Revoked token ids as they are announced (by any process, this one included).
    pub fn revocations(&self) -> broadcast::Receiver<String> {
        self.inner.revocations.subscribe()
    }

    /// Changes after every gap on the revocation channel (the subscriber connection came
    /// back, or this process fell behind): announcements may have been missed, so whoever
    /// holds a verified token (an open socket) must [`verify`](Tokens::verify) it again.
    /// The value counts the gaps since start.
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.inner.revocations.resyncs()
    }

    /// Signs a development token; see [`TokenConfig::issue`].
    pub fn issue(&self, sub: &UserId, ttl: Duration) -> Result<String> {
        self.inner.config.issue(sub, ttl)
    }
}

impl Inner {
    fn cache_lock(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
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

fn unix_now() -> u64 {
    crate::clock::unix_secs()
}
