//! TLS for the server (self-signed by default) and the trust roots of the client.
//!
//! Only the `ring` crypto provider is used; it is passed explicitly to every rustls
//! builder, so no process-wide default provider has to be installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::error::HttpError;

/// The system CA bundle used by clients when no CA file is given (Debian/Ubuntu layout).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// File name of the generated certificate inside a [`TlsSetup::SelfSigned`] directory.
pub const CERT_FILE: &str = "cert.pem";

/// File name of the generated private key inside a [`TlsSetup::SelfSigned`] directory.
pub const KEY_FILE: &str = "key.pem";

/// Names every self-signed certificate is valid for.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How the server gets its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSetup {
    /// Generate a self-signed certificate into `dir` on first start (`cert.pem`, and
    /// `key.pem` with mode 0600), and reuse both on later starts. The certificate is valid
    /// for `localhost`, `127.0.0.1`, `::1` and `extra_names` (host names or IP
    /// addresses). When a later start asks for a name the stored certificate lacks, a new
    /// one is generated (with a warning: clients must trust the new `cert.pem`); a
    /// certificate in `dir` that ffrtmp did not generate is never replaced, and such a start
    /// fails. Agents trust it by pointing their CA file at `dir/cert.pem`.
    SelfSigned {
        /// Directory holding `cert.pem` and `key.pem`.
        dir: PathBuf,
        /// Extra subject alternative names.
        extra_names: Vec<String>,
    },
    /// Use an existing certificate chain and private key (PEM).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// No TLS at all. Only for an explicit opt-out (e.g. behind a TLS-terminating proxy).
    Plaintext,
}

impl TlsSetup {
    /// A self-signed setup in `dir` with no extra names.
    pub fn self_signed(dir: impl Into<PathBuf>) -> Self {
        TlsSetup::SelfSigned {
            dir: dir.into(),
            extra_names: Vec::new(),
        }
    }

    /// The rustls server configuration, or `None` for [`TlsSetup::Plaintext`]. Generates
    /// the self-signed certificate when needed.
    pub fn server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, HttpError> {
        self.server_config_with_client_ca(None)
    }

    /// Like [`TlsSetup::server_config`], and when `client_ca` is given, clients may present
    /// a certificate, which must be signed by a CA in that PEM file: a client with an
    /// untrusted certificate fails the handshake, a client without one is let in (routes
    /// that need a certificate check for it).
    pub fn server_config_with_client_ca(
        &self,
        client_ca: Option<&Path>,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, HttpError> {
        let (cert_path, key_path) = match self {
            TlsSetup::Plaintext => return Ok(None),
            TlsSetup::Files { cert, key } => (cert.clone(), key.clone()),
            TlsSetup::SelfSigned { dir, extra_names } => ensure_self_signed(dir, extra_names)?,
        };
        let certs = load_certs(&cert_path)?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| HttpError::Tls(format!("reading private key {}: {e}", key_path.display())))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Tls(e.to_string()))?
            .with_client_cert_verifier(client_verifier(client_ca)?)
            .with_single_cert(certs, key)
            .map_err(|e| HttpError::Tls(format!("certificate {} and key do not fit: {e}", cert_path.display())))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

/// The client-certificate verifier: none without a CA file, else the CA's WebPKI verifier
/// that lets clients without a certificate in.
fn client_verifier(client_ca: Option<&Path>) -> Result<Arc<dyn ClientCertVerifier>, HttpError> {
    let Some(path) = client_ca else {
        return Ok(WebPkiClientVerifier::no_client_auth());
    };
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| HttpError::Tls(format!("client CA file {}: {e}", path.display())))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| HttpError::Tls(format!("client CA file {}: {e}", path.display())))
}

/// Like [`client_config`], and when `identity` is given (certificate chain PEM, private
/// key PEM), the client presents that certificate to servers that ask for one (mutual TLS).
pub fn client_config_with_identity(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, HttpError> {
    let Some((cert_path, key_path)) = identity else {
        return client_config(ca_file);
    };
    let certs = load_certs(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| HttpError::Tls(format!("reading client key {}: {e}", key_path.display())))?;
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_root_certificates(trust_roots(ca_file)?)
        .with_client_auth_cert(certs, key)
        .map_err(|e| {
            HttpError::Tls(format!(
                "client certificate {} and key do not fit: {e}",
                cert_path.display()
            ))
        })
}

/// The crypto provider used everywhere in this crate: `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes sure `dir` holds a self-signed certificate and its key, generating them when
/// either is missing. Returns the paths of `cert.pem` and `key.pem`.
pub fn ensure_self_signed(dir: &Path, extra_names: &[String]) -> Result<(PathBuf, PathBuf), HttpError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let names = certificate_names(extra_names);
    if cert_path.is_file() && key_path.is_file() {
        warn_if_key_readable_by_others(&key_path);
        let missing = names_not_covered(&cert_path, &names)?;
        if missing.is_empty() {
            return Ok((cert_path, key_path));
        }
        if !generated_here(&cert_path)? {
            return Err(HttpError::Tls(format!(
                "the certificate {} is not valid for {} and was not generated by ffrtmp, so it is left \
                 alone: replace it, or pass it with its key as --tls-cert/--tls-key",
                cert_path.display(),
                missing.join(", ")
            )));
        }
        tracing::warn!(
            cert = %cert_path.display(),
            missing = %missing.join(", "),
            "the self-signed certificate did not cover every name asked for; generating a new one: \
             agents and clients must trust the new cert.pem"
        );
    }
    create_private_dir(dir)?;
    let (cert_pem, key_pem) = generate_self_signed(extra_names)?;
    // Key first, so that a crash in between leaves no certificate without its key.
    write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

/// Generates a self-signed certificate for [`DEFAULT_NAMES`] plus `extra_names`; returns
/// `(certificate PEM, private key PEM)`.
pub fn generate_self_signed(extra_names: &[String]) -> Result<(String, String), HttpError> {
    let names = certificate_names(extra_names);
    let mut params =
        CertificateParams::new(names).map_err(|e| HttpError::Tls(format!("invalid certificate name: {e}")))?;
    params.distinguished_name.push(DnType::CommonName, SELF_SIGNED_CN);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(|e| HttpError::Tls(format!("generating a key: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| HttpError::Tls(format!("signing the certificate: {e}")))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Common name of the certificates [`generate_self_signed`] makes; how a stored certificate
/// is recognised as one ffrtmp may replace.
const SELF_SIGNED_CN: &str = "ffrtmp master (self-signed)";

/// [`DEFAULT_NAMES`] plus `extra_names`, trimmed, without duplicates or empty names.
fn certificate_names(extra_names: &[String]) -> Vec<String> {
    let mut names: Vec<String> = DEFAULT_NAMES.iter().map(|s| s.to_string()).collect();
    for name in extra_names {
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_string());
        }
    }
    names
}

/// The names in `names` that the certificate at `cert_path` is not valid for, checked the way
/// a client checks them: the certificate verified as its own trust root for each name.
fn names_not_covered(cert_path: &Path, names: &[String]) -> Result<Vec<String>, HttpError> {
    use rustls::client::danger::ServerCertVerifier;
    let certs = load_certs(cert_path)?;
    let mut roots = RootCertStore::empty();
    roots
        .add(certs[0].clone())
        .map_err(|e| HttpError::Tls(format!("certificate {}: {e}", cert_path.display())))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| HttpError::Tls(format!("certificate {}: {e}", cert_path.display())))?;
    let now = rustls::pki_types::UnixTime::now();
    Ok(names
        .iter()
        .filter(|name| {
            let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.as_str()) else {
                return true;
            };
            verifier
                .verify_server_cert(&certs[0], &certs[1..], &server_name, &[], now)
                .is_err()
        })
        .cloned()
        .collect())
}

/// Whether the certificate at `cert_path` carries the common name [`generate_self_signed`]
/// gives: its DER holds the name verbatim, which is enough to tell ours from a user's.
fn generated_here(cert_path: &Path) -> Result<bool, HttpError> {
    let certs = load_certs(cert_path)?;
    let der: &[u8] = certs[0].as_ref();
    Ok(der
        .windows(SELF_SIGNED_CN.len())
        .any(|w| w == SELF_SIGNED_CN.as_bytes()))
}

/// The rustls client configuration: trust exactly the certificates in `ca_file` (e.g. the
/// master's `cert.pem`) or, when `None`, the system bundle [`SYSTEM_CA_BUNDLE`]. The peer
/// is always verified, whatever the host name.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, HttpError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_root_certificates(trust_roots(ca_file)?)
        .with_no_client_auth())
}

/// The certificates in `ca_file`, or the system bundle when `None`.
fn trust_roots(ca_file: Option<&Path>) -> Result<RootCertStore, HttpError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in load_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| HttpError::Tls(format!("CA file {}: {e}", path.display())))?;
            }
        }
        None => {
            let path = Path::new(SYSTEM_CA_BUNDLE);
            let (added, _ignored) = roots.add_parsable_certificates(load_certs(path)?);
            if added == 0 {
                return Err(HttpError::Tls(format!(
                    "no usable CA certificate in {}",
                    path.display()
                )));
            }
        }
    }
    Ok(roots)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| HttpError::Tls(format!("reading certificates {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HttpError::Tls(format!("reading certificates {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(HttpError::Tls(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}

fn create_private_dir(dir: &Path) -> Result<(), HttpError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| HttpError::io("creating TLS directory", dir, e))
}

/// Writes `data` to a temporary file created with `mode`, then renames it over `path`.
fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<(), HttpError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(data)?;
        file.sync_all()
    });
    if let Err(e) = result.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(HttpError::io("writing", path, e));
    }
    Ok(())
}

fn warn_if_key_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(key = %path.display(), "TLS private key is readable by group or others; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("tls");
        let setup = TlsSetup::SelfSigned {
            dir: tls_dir.clone(),
            extra_names: vec!["master.example".into(), "10.0.0.7".into()],
        };
        assert!(setup.server_config().unwrap().is_some());
        let first = std::fs::read(tls_dir.join(CERT_FILE)).unwrap();
        assert!(setup.server_config().unwrap().is_some());
        assert_eq!(
            first,
            std::fs::read(tls_dir.join(CERT_FILE)).unwrap(),
            "certificate regenerated"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tls_dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The certificate is usable as a client trust root.
        client_config(Some(&tls_dir.join(CERT_FILE))).unwrap();
    }

    #[test]
    fn a_name_the_stored_certificate_lacks_regenerates_it() {
        let dir = tempfile::tempdir().unwrap();
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (cert, _) = ensure_self_signed(dir.path(), &names(&["10.1.2.3"])).unwrap();
        let first = std::fs::read(&cert).unwrap();
        assert!(names_not_covered(&cert, &names(&["10.1.2.3", "localhost"]))
            .unwrap()
            .is_empty());
        assert_eq!(
            names_not_covered(&cert, &names(&["master.example"])).unwrap(),
            ["master.example"]
        );
        // Asking again for the same names keeps it.
        ensure_self_signed(dir.path(), &names(&["10.1.2.3"])).unwrap();
        assert_eq!(first, std::fs::read(&cert).unwrap());
        // A new --tls-name: a new certificate that covers it.
        ensure_self_signed(dir.path(), &names(&["master.example", "10.1.2.3"])).unwrap();
        assert_ne!(first, std::fs::read(&cert).unwrap(), "not regenerated");
        assert!(names_not_covered(&cert, &names(&["master.example", "10.1.2.3", "::1"]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_certificate_ffrtmp_did_not_generate_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "someone else's");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join(CERT_FILE), cert.pem()).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), key.serialize_pem()).unwrap();
        let err = ensure_self_signed(dir.path(), &["10.9.9.9".to_string()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("not valid for 127.0.0.1, ::1, 10.9.9.9"), "{text}");
        assert!(
            text.contains("not generated by ffrtmp") && text.contains("--tls-cert"),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(dir.path().join(CERT_FILE)).unwrap(), cert.pem());
    }

    #[test]
    fn plaintext_has_no_config() {
        assert!(TlsSetup::Plaintext.server_config().unwrap().is_none());
    }

    #[test]
    fn missing_files_are_errors() {
        let setup = TlsSetup::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        assert!(matches!(setup.server_config(), Err(HttpError::Tls(_))));
        assert!(client_config(Some(Path::new("/nonexistent/ca.pem"))).is_err());
    }
}
