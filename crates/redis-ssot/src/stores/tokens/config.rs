//! Token settings: the algorithm and its key, claim checks, lifetime and cache limits, as
//! written ([`TokenOptions`]) and validated ([`TokenConfig`]).

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;

use super::claims::{Audience, WireClaims};
use super::unix_now;
use crate::error::{Error, Result};
use crate::keys::UserId;

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
    pub(super) algorithm: TokenAlgorithm,
    pub(super) decoding: DecodingKey,
    /// Only for HS256: lets [`TokenConfig::issue`] sign development tokens.
    encoding: Option<EncodingKey>,
    audience: Vec<String>,
    issuer: Vec<String>,
    pub(super) leeway: Duration,
    pub(super) strict: bool,
    pub(super) cache_size: usize,
    pub(super) cache_ttl: Duration,
    pub(super) max_lifetime: Duration,
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

    pub(super) fn validation(&self) -> Validation {
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
