//! TLS with rustls: the certificate chain and key from `tls.cert` / `tls.key` (PEM),
//! reloadable (on SIGHUP in `berth serve`). A reload only affects new connections; one that
//! fails keeps the previous certificate and logs why.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use anyhow::Context;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio_rustls::TlsAcceptor;

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading tls.cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing tls.cert {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "tls.cert {} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading tls.key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls.cert and tls.key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Tls {
    pub fn open(cert: &Path, key: &Path) -> anyhow::Result<Tls> {
        let current = RwLock::new(load(cert, key)?);
        Ok(Tls { cert: cert.to_owned(), key: key.to_owned(), current })
    }

    /// Reads the files again; on failure the previous certificate stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = load(&self.cert, &self.key)?;
        if let Ok(mut current) = self.current.write() {
            *current = config;
        }
        Ok(())
    }

    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        TlsAcceptor::from(config)
    }
}

/// Reloads `tls` on every SIGHUP while the returned task runs.
pub fn reload_on_sighup(tls: Arc<Tls>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "TLS reload failed; keeping the previous certificate");
                }
            }
        }
    }))
}
