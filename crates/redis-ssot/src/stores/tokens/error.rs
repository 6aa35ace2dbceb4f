//! Why a token was refused.

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
