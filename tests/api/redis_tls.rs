//! Redis reached over TLS (`rediss://`) as an ACL user: the certificate is verified against a
//! CA the test makes, and the password travels only inside TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::unique;
use crate::process::Process;
use crate::redis_server::{free_port, RedisServer};

/// A CA and a certificate for `localhost` signed by it, made with the `openssl` tool.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(status.status.success(), "openssl {args:?}: {status:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=sessiond test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

fn tls_redis(dir: &Path, tls_port: u16) -> RedisServer {
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    RedisServer::start_with(
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &file("server.crt"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.crt"),
            "--tls-auth-clients",
            "no",
            // Without credentials a client may only PING; the sessiond user may do its work.
            "--user",
            "default",
            "on",
            "nopass",
            "-@all",
            "+ping",
            "--user",
            "sessiond",
            "on",
            ">a-long-redis-password-for-tests",
            "~*",
            "&*",
            "+@all",
        ]
        .map(String::from)
        .to_vec(),
    )
}

#[test]
fn sessions_live_in_redis_over_tls_as_an_acl_user() {
    let Some(plain) = RedisServer::start() else {
        return;
    };
    drop(plain);
    let dir: PathBuf = std::env::temp_dir().join(format!("sessiond-tls-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let tls_port = free_port();
    let _redis = tls_redis(&dir, tls_port);
    let ca = dir.join("ca.crt").to_string_lossy().into_owned();
    let url = format!("rediss://sessiond:a-long-redis-password-for-tests@localhost:{tls_port}/0");
    let node = Process::start(&[("SESSIOND_STORE", &url), ("SSL_CERT_FILE", &ca)])
        .unwrap_or_else(|log| panic!("sessiond starts on rediss://: {log}"));
    let login = node.login(&unique(), "10.0.0.1");
    assert!(node.validates(&login.token));
    assert!(
        !node.log().contains("a-long-redis-password"),
        "the password is never logged"
    );
    drop(node);

    // The wrong password, or a certificate nobody vouches for, stops start-up with one line.
    let wrong = format!("rediss://sessiond:wrong-password@localhost:{tls_port}/0");
    let refused = Process::start(&[("SESSIOND_STORE", &wrong), ("SSL_CERT_FILE", &ca)])
        .err()
        .expect("a wrong password is refused");
    assert!(refused.contains("SESSIOND_STORE"), "{refused}");
    assert!(!refused.contains("wrong-password"), "{refused}");
    let unverified = Process::start(&[("SESSIOND_STORE", &url)])
        .err()
        .expect("an unknown CA is refused");
    assert!(unverified.contains("SESSIOND_STORE"), "{unverified}");
    std::fs::remove_dir_all(&dir).unwrap();
}
