//! A POP3 session's maildrop lease: renewed while the session lives (a third of its length
//! at a time), given back when it ends without QUIT. A lease the session lost (it expired,
//! another session took the maildrop) is only logged: QUIT will then delete nothing.
use crate::backend_client::{Backends, CallError, Lease};
use std::net::SocketAddr;
use std::time::Duration;

/// How often a lease of `seconds` is renewed.
pub fn renew_every(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds / 3).max(1))
}

/// Renews `lease`; a failure is logged, and tried again at the next turn.
pub async fn renew(backends: &Backends, lease: &Lease, peer: SocketAddr) {
    match backends.renew(lease).await {
        Ok(()) => {}
        Err(CallError::LeaseLost) => {
            tracing::warn!(%peer, "maildrop lease lost; QUIT will not delete");
        }
        Err(e) => tracing::warn!(%peer, error = %e, "lease renewal failed; will retry"),
    }
}

/// Gives a lease back, trying a few times (a back-end may be restarting); if that fails
/// the lease simply expires.
pub async fn release(backends: &Backends, lease: &Lease, peer: SocketAddr) {
    for attempt in 0..3 {
        match backends.release(lease).await {
            Ok(()) => return,
            Err(e) if attempt == 2 => {
                tracing::debug!(%peer, error = %e, "could not release lease; it will expire")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}
