//! TLS on the real binary: a CA made by the test, a certificate for 127.0.0.1, HTTPS with
//! HTTP/1.1 and HTTP/2 (ALPN), the realm in `https://`, and SIGHUP reloading a new
//! certificate for new connections while an open connection keeps working; a failed
//! reload keeps the previous certificate.

use std::{path::Path, sync::Arc, time::Duration};

use crate::opsutil::Berth;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn make_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// Writes `cert.pem` (leaf then CA) and `key.pem` for 127.0.0.1, signed by `ca`.
fn write_leaf(dir: &Path, ca: &Ca) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), format!("{}{}", cert.pem(), ca.pem)).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

fn connector(ca: &Ca, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let der = CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

async fn connect(addr: &str, ca: &Ca, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into());
    connector(ca, alpn).connect(name, tcp).await
}

/// One keep-alive HTTP/1.1 request; returns the response head (the body is read too).
async fn get(s: &mut TlsStream<TcpStream>, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return head.to_owned();
            }
        }
    }
}

#[tokio::test]
async fn https_with_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_ca("berth test CA 1");
    write_leaf(dir.path(), &first);
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let env = [("BERTH_TLS__CERT", cert.to_str().unwrap()), ("BERTH_TLS__KEY", key.to_str().unwrap())];
    let b = Berth::start_scheme(dir.path(), &env, "https").await;
    let addr = b.addr();

    // HTTP/1.1 over TLS, the realm on https.
    let mut old = connect(&addr, &first, &[b"http/1.1"]).await.expect("handshake with CA 1");
    let head = get(&mut old, "/v2/").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(head.contains(&format!("realm=\"https://{addr}/token\"")), "{head}");
    // HTTP/2 is offered by ALPN.
    let h2 = connect(&addr, &first, &[b"h2", b"http/1.1"]).await.unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(h2);

    // A new certificate from another CA, then SIGHUP.
    let second = make_ca("berth test CA 2");
    write_leaf(dir.path(), &second);
    b.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while connect(&addr, &second, &[]).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "new certificate not served:\n{}", b.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connect(&addr, &first, &[]).await.is_err(), "the old certificate is still served");
    // The connection opened before the reload still works.
    assert!(get(&mut old, "/healthz").await.starts_with("HTTP/1.1 200"));

    // A broken file: the reload fails and the current certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    b.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !b.log_text().contains("TLS reload failed") {
        assert!(std::time::Instant::now() < deadline, "no reload failure logged:\n{}", b.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut s = connect(&addr, &second, &[]).await.expect("previous certificate kept");
    assert!(get(&mut s, "/readyz").await.starts_with("HTTP/1.1 200"));
    drop(s);
    drop(old);
    b.terminate(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_key_that_does_not_fit_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca("berth test CA");
    write_leaf(dir.path(), &ca);
    std::fs::write(dir.path().join("other.pem"), KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let env = [("BERTH_TLS__CERT", "cert.pem"), ("BERTH_TLS__KEY", "other.pem"), ("BERTH_LISTEN", "127.0.0.1:0")];
    let (ok, _, err) = crate::opsutil::berth(dir.path(), &["serve"], &env).await;
    assert!(!ok);
    assert!(err.contains("tls.cert and tls.key do not fit together"), "{err}");
}
