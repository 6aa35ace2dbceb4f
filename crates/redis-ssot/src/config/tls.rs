//! `[redis.tls]`: the PEM files of `rediss://`, read and checked once at start-up.

use std::path::Path;

use super::{ClientCertificate, ConfigError, TlsConfig, TlsOptions};

/// TLS material for `rediss://` URLs, read from the configured files. Every node must use
/// the same scheme, and certificates without a `rediss://` URL are a mistake worth naming.
pub(super) fn resolve(
    urls: &[&str],
    opts: Option<TlsOptions>,
) -> Result<Option<TlsConfig>, ConfigError> {
    let tls_nodes = urls.iter().filter(|u| u.starts_with("rediss://")).count();
    if tls_nodes != 0 && tls_nodes != urls.len() {
        return Err(ConfigError::new(
            "redis.url",
            "mixes redis:// and rediss:// nodes; use one scheme for every node",
        ));
    }
    let opts = opts.unwrap_or_default();
    if tls_nodes == 0 {
        if let Some(key) = [
            ("ca-file", &opts.ca_file),
            ("cert-file", &opts.cert_file),
            ("key-file", &opts.key_file),
        ]
        .iter()
        .find_map(|(key, v)| v.as_ref().map(|_| key))
        {
            return Err(ConfigError::new(
                format!("redis.tls.{key}"),
                "is set but the URL is not rediss://",
            ));
        }
        return Ok(None);
    }
    let ca_pem = opts
        .ca_file
        .as_deref()
        .map(|p| read_pem("ca-file", p))
        .transpose()?;
    let client = match (opts.cert_file, opts.key_file) {
        (None, None) => None,
        (Some(cert_file), Some(key_file)) => Some(ClientCertificate {
            cert_pem: read_pem("cert-file", &cert_file)?,
            key_pem: read_pem("key-file", &key_file)?,
            cert_file,
            key_file,
        }),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "redis.tls.key-file",
                "is required with cert-file",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "redis.tls.cert-file",
                "is required with key-file",
            ));
        }
    };
    Ok(Some(TlsConfig {
        ca_file: opts.ca_file,
        ca_pem,
        client,
    }))
}

/// The content of `path`, which must hold at least one PEM block.
fn read_pem(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path).map_err(|err| {
        ConfigError::new(
            format!("redis.tls.{key}"),
            format!("cannot read {}: {err}", path.display()),
        )
    })?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConfigError::new(
            format!("redis.tls.{key}"),
            format!("{} is not a PEM file", path.display()),
        ));
    }
    Ok(pem)
}
