//! Throwaway certificates for TLS servers, made with `openssl(1)`.

use std::path::Path;
use std::process::{Command, Stdio};

/// The CA certificate clients trust, in the server's data dir.
pub(crate) const CA_CERT: &str = "tls-ca.crt";
const CA_KEY: &str = "tls-ca.key";
const SERVER_CERT: &str = "tls-server.crt";
const SERVER_KEY: &str = "tls-server.key";

/// Writes a CA and a server certificate signed by it into `dir`, unless they are there
/// already (a restarted server keeps its certificates). EC P-256 keys: fast to make.
pub(crate) fn make_certificates(dir: &Path) {
    if dir.join(SERVER_CERT).is_file() {
        return;
    }
    assert!(
        crate::server::on_path("openssl"),
        "ssot-testkit: openssl not found on PATH; install it: apt-get install -y openssl"
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                CA_KEY,
                "-out",
                CA_CERT,
                "-days",
                "2",
                "-subj",
                "/CN=ssot-testkit CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                SERVER_KEY,
                "-out",
                "tls-server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    // clientAuth too: on a TLS cluster bus every node presents this certificate as a client,
    // and Redis always verifies bus clients.
    std::fs::write(
        dir.join("tls-server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap_or_else(|e| panic!("ssot-testkit: cannot write tls-server.ext: {e}"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls-server.csr",
            "-CA",
            CA_CERT,
            "-CAkey",
            CA_KEY,
            "-CAcreateserial",
            "-out",
            SERVER_CERT,
            "-days",
            "2",
            "-extfile",
            "tls-server.ext",
        ],
    );
}

/// `redis-server` arguments for TLS on `port` with the certificates in `dir`.
pub(crate) fn server_args(dir: &Path, port: u16) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        "--tls-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        file(SERVER_CERT),
        "--tls-key-file".into(),
        file(SERVER_KEY),
        "--tls-ca-cert-file".into(),
        file(CA_CERT),
        "--tls-auth-clients".into(),
        "no".into(),
    ]
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("ssot-testkit: cannot run openssl: {e}"));
    assert!(
        output.status.success(),
        "ssot-testkit: openssl {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
