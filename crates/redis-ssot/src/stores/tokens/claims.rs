//! The claims of a token: as verified ([`Claims`]) and as they appear in a JWT.

use serde::{Deserialize, Serialize};

use crate::keys::UserId;

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
pub(super) struct WireClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) iss: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Audience {
    One(String),
    Many(Vec<String>),
}
