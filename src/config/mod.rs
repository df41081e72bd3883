//! Configuration of the long-running roles: flags, environment variables, or a TOML file
//! (`--config`), in that order of precedence, then built-in defaults.
//!
//! TOML keys are the flag names with `_` for `-` (e.g. `pop3_listen = "0.0.0.0:110"`,
//! `backends = ["10.0.0.5:7000"]`). The layering is done once, for every setting alike
//! (`layered`): what the flags and the environment give is laid over the file's table, and
//! the result is read back as the same arguments; each role then turns them into its
//! configuration (`frontend`, `backend`), taking defaults from the setting's own module.
mod backend;
mod frontend;

pub use backend::BackendArgs;
pub use frontend::FrontendArgs;

use anyhow::{Context, Result};
use bridgehead_backend::BackendHandle;
use bridgehead_frontend::FrontendHandle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

/// A role's settings: flags and environment, naming the file they are laid over.
pub trait Settings: Serialize + DeserializeOwned + Sized {
    /// `--config`.
    fn config_file(&mut self) -> &mut Option<PathBuf>;

    /// These settings laid over the file's (`--config`).
    fn layered(mut self) -> Result<Self> {
        let file = self.config_file().take();
        let mut args = layered(&self, file.as_deref())?;
        *args.config_file() = file;
        Ok(args)
    }
}

/// `given` (flags and environment: only what was set) laid over the TOML file at `file`.
fn layered<T: Serialize + DeserializeOwned>(given: &T, file: Option<&Path>) -> Result<T> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    let given = toml::Table::try_from(given).context("the settings given")?;
    table.extend(given);
    let what = file.map_or_else(|| "the settings given".into(), |p| p.display().to_string());
    table.try_into().with_context(|| format!("in {what}"))
}

/// Seconds, or the default.
fn secs(given: Option<u64>, default: Duration) -> Duration {
    given.map_or(default, Duration::from_secs)
}

pub async fn run_frontend(args: FrontendArgs) -> Result<()> {
    let args = args.layered()?;
    let metrics = args.metrics_listen;
    let handle = FrontendHandle::start(args.resolve()?).await?;
    if let Some(addr) = metrics {
        let token = handle.shutdown_token();
        let ready = token.clone();
        crate::http::serve(
            addr,
            vec![handle.registry.clone()],
            Arc::new(move || !ready.is_cancelled()),
            None,
            token,
        )
        .await?;
    }
    crate::shutdown_signal().await;
    tracing::info!("front-end stopping");
    handle.stop().await;
    Ok(())
}

pub async fn run_backend(args: BackendArgs) -> Result<()> {
    let args = args.layered()?;
    let metrics = args.metrics_listen;
    if let Some(path) = &args.extra_ca_file {
        let n = bridgehead_backend::tls_client::trust_extra_cas(path)
            .with_context(|| "--extra-ca-file")?;
        tracing::info!(certificates = n, file = %path.display(), "extra CAs trusted");
    }
    let config = args.resolve()?;
    let mta_sts = config
        .transport
        .publish_sts
        .as_ref()
        .map(|p| Arc::new(p.render()));
    let handle = BackendHandle::start(config).await?;
    let http_stop = tokio_util::sync::CancellationToken::new();
    if let Some(addr) = metrics {
        let ready = http_stop.clone();
        crate::http::serve(
            addr,
            vec![handle.registry.clone()],
            Arc::new(move || !ready.is_cancelled()),
            mta_sts,
            http_stop.clone(),
        )
        .await?;
    }
    crate::shutdown_signal().await;
    tracing::info!("back-end stopping");
    http_stop.cancel();
    handle.stop().await?;
    Ok(())
}

/// The machine's host name, or "localhost" when it cannot be read.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_fills_what_flags_leave_out() {
        let dir = std::env::temp_dir().join(format!("bh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frontend.toml");
        std::fs::write(
            &path,
            "backends = [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\npop3_listen = \"0.0.0.0:110\"\nsmtp_listen = \"0.0.0.0:25\"\nhostname = \"mx.example.org\"\nidle_timeout_secs = 900\n",
        )
        .unwrap();
        let args = FrontendArgs {
            config: Some(path.clone()),
            pop3_listen: Some("127.0.0.1:1110".parse().unwrap()),
            ..FrontendArgs::default()
        };
        let c = args.layered().and_then(FrontendArgs::resolve).unwrap();
        assert_eq!(c.backends, vec!["10.0.0.1:7000", "10.0.0.2:7000"]);
        assert_eq!(
            c.pop3_listen,
            Some("127.0.0.1:1110".parse().unwrap()),
            "the flag wins"
        );
        assert_eq!(c.smtp_listen, Some("0.0.0.0:25".parse().unwrap()));
        assert_eq!(c.hostname, "mx.example.org");
        assert_eq!(c.idle_timeout, Duration::from_secs(900));
        assert_eq!(c.max_recipients, 100, "defaults for the rest");

        std::fs::write(&path, "pop3_listn = \"0.0.0.0:110\"\n").unwrap();
        let err = FrontendArgs {
            config: Some(path),
            ..FrontendArgs::default()
        }
        .layered()
        .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let err = FrontendArgs::default().resolve().unwrap_err();
        assert!(err.to_string().contains("no back-end given"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn back_end_settings_layer_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backend.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://file/db\"\ntransport_workers = 7\nclaim_secs = 60\nauth_lockout_after = 5\n",
        )
        .unwrap();
        let args = BackendArgs {
            config: Some(path),
            claim_secs: Some(90),
            ..BackendArgs::default()
        };
        let c = args.layered().and_then(BackendArgs::resolve).unwrap();
        assert_eq!(c.database_url, "postgres://file/db");
        assert_eq!(c.transport.workers, 7);
        assert_eq!(c.transport.claim, Duration::from_secs(90), "the flag wins");
        assert_eq!(c.auth.lockout_after, 5);
        assert_eq!(c.listen, bridgehead_backend::BackendConfig::DEFAULT_LISTEN);
        assert_eq!(c.max_db_connections, 20, "defaults for the rest");
    }
}
