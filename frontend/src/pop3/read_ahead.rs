//! POP3 read-ahead: RETR of a small message brings the next small ones along in one
//! `FetchMany` call (the pure session names them), so a client that retrieves one message
//! at a time pays one round trip per batch, not per message.
//!
//! Invariant: at most one batch is held (the last call's reply), and it dies with the session.
use crate::backend_client::{Backends, Lease};

#[derive(Debug, Default)]
pub struct ReadAhead {
    /// Messages fetched ahead: (uid, content).
    held: Vec<(i64, Vec<u8>)>,
}

impl ReadAhead {
    /// Message `uid`: from what is held, or — when `ahead` names more messages — fetched
    /// with them in one call (they are held for the next RETRs). `None`: fetch it on its own
    /// (which also reports why, should the batch have failed).
    pub async fn take(
        &mut self,
        backends: &Backends,
        lease: Option<&Lease>,
        uid: i64,
        ahead: Vec<i64>,
    ) -> Option<Vec<u8>> {
        if let Some(i) = self.held.iter().position(|(u, _)| *u == uid) {
            return Some(self.held.swap_remove(i).1);
        }
        if ahead.is_empty() {
            return None;
        }
        let uids = std::iter::once(uid).chain(ahead).collect();
        let mut got = backends.fetch_many(lease?, uids).await.ok()?;
        let this = got
            .iter()
            .position(|(u, _)| *u == uid)
            .map(|i| got.remove(i).1);
        self.held = got;
        this
    }
}
