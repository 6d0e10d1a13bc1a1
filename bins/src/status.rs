//! The agent's status-endpoint flags: TLS and read-only keys, so a central Prometheus can
//! scrape remote agents, while a plain endpoint on loopback stays the default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use ffrtmp_http::status::{BoundStatusServer, StatusProbe, StatusServer};
use ffrtmp_http::{Keyring, Role, Roles, TlsSetup};

/// TLS and key flags of the status endpoint.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StatusFlags {
    /// Serve the status endpoint over TLS with a self-signed certificate kept in this
    /// directory (generated on first start; give Prometheus its cert.pem as ca_file).
    #[arg(long, conflicts_with_all = ["status_tls_cert", "status_tls_key"])]
    pub status_tls_dir: Option<PathBuf>,
    /// Serve the status endpoint over TLS with this certificate chain (PEM).
    #[arg(long, requires = "status_tls_key")]
    pub status_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --status-tls-cert.
    #[arg(long, requires = "status_tls_cert")]
    pub status_tls_key: Option<PathBuf>,
    /// Extra host name or IP address for the self-signed certificate of --status-tls-dir;
    /// repeatable.
    #[arg(long)]
    pub status_tls_name: Vec<String>,
    /// File of read-only keys, one per line: /ready and /metrics then need
    /// `Authorization: Bearer <key>` (/health stays open). Needed on a non-loopback address.
    #[arg(long, env = "FFRTMP_STATUS_KEY_FILE")]
    pub status_key_file: Option<PathBuf>,
}

impl StatusFlags {
    /// The TLS setup the flags ask for.
    pub fn tls(&self) -> TlsSetup {
        match (&self.status_tls_dir, &self.status_tls_cert, &self.status_tls_key) {
            (Some(dir), _, _) => TlsSetup::SelfSigned {
                dir: dir.clone(),
                extra_names: self.status_tls_name.clone(),
            },
            (None, Some(cert), Some(key)) => TlsSetup::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => TlsSetup::Plaintext,
        }
    }

    /// The read-only keys of `--status-key-file`. Refuses a non-loopback address without
    /// them: its metrics would be open to anyone who can reach the port.
    pub fn keys(&self, addr: SocketAddr) -> anyhow::Result<Option<Keyring>> {
        match &self.status_key_file {
            Some(path) => {
                let mut ring = Keyring::new();
                ring.add_file(path, Roles::of(Role::ReadOnly))
                    .with_context(|| format!("reading the status keys in {}", path.display()))?;
                if ring.is_empty() {
                    bail!("{} holds no key", path.display());
                }
                Ok(Some(ring))
            }
            None if !addr.ip().is_loopback() => bail!(
                "the status endpoint on {addr} is not on loopback: give --status-key-file (read-only keys), \
                 and preferably --status-tls-dir, or keep it on 127.0.0.1"
            ),
            None => Ok(None),
        }
    }

    /// Binds the endpoint with the keys of [`StatusFlags::keys`].
    pub async fn bind(
        &self,
        addr: SocketAddr,
        probe: Arc<dyn StatusProbe>,
        keys: Option<Keyring>,
    ) -> anyhow::Result<BoundStatusServer> {
        let tls = self.tls();
        if keys.is_some() && matches!(tls, TlsSetup::Plaintext) && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "status keys travel in clear text: add --status-tls-dir");
        }
        let server = StatusServer::bind_with_tls(addr, probe, &tls).await?;
        Ok(match keys {
            Some(keys) => server.require_key(keys),
            None => server,
        })
    }
}
