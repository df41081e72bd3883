//! A small private PKI for mutual TLS between the tiers (`bridgehead dev` and the tests): a CA,
//! a server certificate for back-ends and a client certificate for front-ends, made once per
//! directory with rcgen. Production deployments bring their own certificates by path.
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Paths of the PEM files.
#[derive(Debug, Clone)]
pub struct ClusterPki {
    pub ca: PathBuf,
    pub backend_cert: PathBuf,
    pub backend_key: PathBuf,
    pub frontend_cert: PathBuf,
    pub frontend_key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}

/// The PKI in `dir`, made on first use. The back-end certificate names `localhost` and
/// 127.0.0.1 (and `names`); the front-end certificate is for client authentication.
pub fn ensure(dir: &Path, names: &[String]) -> Result<ClusterPki, PkiError> {
    let pki = ClusterPki {
        ca: dir.join("ca.pem"),
        backend_cert: dir.join("backend.pem"),
        backend_key: dir.join("backend-key.pem"),
        frontend_cert: dir.join("frontend.pem"),
        frontend_key: dir.join("frontend-key.pem"),
    };
    if [
        &pki.ca,
        &pki.backend_cert,
        &pki.backend_key,
        &pki.frontend_cert,
        &pki.frontend_key,
    ]
    .iter()
    .all(|p| p.exists())
    {
        return Ok(pki);
    }
    fs::create_dir_all(dir).map_err(|e| PkiError::Io(dir.to_path_buf(), e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Bridgehead cluster CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let mut server_names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    server_names.extend(names.iter().cloned());
    let mut backend = CertificateParams::new(server_names)?;
    backend
        .distinguished_name
        .push(DnType::CommonName, "bridgehead back-end");
    let backend_key = KeyPair::generate()?;
    let backend_cert = backend.signed_by(&backend_key, &ca)?;
    let mut frontend = CertificateParams::new(vec!["bridgehead-frontend".to_string()])?;
    frontend
        .distinguished_name
        .push(DnType::CommonName, "bridgehead front-end");
    let frontend_key = KeyPair::generate()?;
    let frontend_cert = frontend.signed_by(&frontend_key, &ca)?;
    write(&pki.ca, &ca.pem())?;
    write(&pki.backend_cert, &backend_cert.pem())?;
    write(&pki.backend_key, &backend_key.serialize_pem())?;
    write(&pki.frontend_cert, &frontend_cert.pem())?;
    write(&pki.frontend_key, &frontend_key.serialize_pem())?;
    Ok(pki)
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| PkiError::Io(path.to_path_buf(), e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| PkiError::Io(path.to_path_buf(), e))
}
