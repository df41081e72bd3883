//! Self-signed certificates for `bridgehead dev` (rcgen), made once per data directory.
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Paths of the certificate chain and key, creating them on first use.
pub fn ensure_dev_certificate(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let made = rcgen::generate_simple_self_signed(names)
        .context("generating a self-signed certificate")?;
    fs::write(&cert, made.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    Ok((cert, key))
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
