//! TLS for the API: the rustls server configuration made from the policy's PEM files
//! (`global.tls`), with aws-lc-rs as its cryptography (no OpenSSL).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::policy::TlsFiles;

/// Why the API cannot serve TLS with the files the policy names.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read as PEM certificates.
    #[error("global.tls.cert_file {path}: {cause}")]
    Certificates {
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
    /// The key file holds no private key that can be read.
    #[error("global.tls.key_file {path}: {cause}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
    /// The certificate and key do not go together, or rustls refuses them.
    #[error("global.tls: the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The server configuration `files` describe: TLS 1.2 and 1.3, no client certificates.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let cert_error = |cause: String| TlsError::Certificates {
        path: files.cert_file.clone(),
        cause,
    };
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.cert_file)
            .map_err(|e| cert_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(cert_error("no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| TlsError::Key {
        path: files.key_file.clone(),
        cause: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path, cert: &str, key: &str) -> TlsFiles {
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        TlsFiles {
            cert_file: cert_file.display().to_string(),
            key_file: key_file.display().to_string(),
        }
    }

    #[test]
    fn a_matching_certificate_and_key_make_a_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good = files(
            dir.path(),
            &made.cert.pem(),
            &made.signing_key.serialize_pem(),
        );
        assert!(server_config(&good).is_ok());
        // Another key than the certificate's.
        let other = rcgen::KeyPair::generate().unwrap();
        let mismatched = files(dir.path(), &made.cert.pem(), &other.serialize_pem());
        assert!(matches!(
            server_config(&mismatched),
            Err(TlsError::Config(_))
        ));
    }

    #[test]
    fn unreadable_files_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let empty = files(dir.path(), "not pem\n", "not pem either\n");
        let error = server_config(&empty).unwrap_err();
        assert!(
            error.to_string().starts_with("global.tls.cert_file"),
            "{error}"
        );
        let missing = TlsFiles {
            cert_file: dir.path().join("cert.pem").display().to_string(),
            key_file: dir.path().join("absent.pem").display().to_string(),
        };
        std::fs::write(
            &missing.cert_file,
            rcgen::generate_simple_self_signed(vec!["x".into()])
                .unwrap()
                .cert
                .pem(),
        )
        .unwrap();
        let error = server_config(&missing).unwrap_err();
        assert!(
            error.to_string().starts_with("global.tls.key_file"),
            "{error}"
        );
    }
}
