//! POP3 read-ahead: RETR of a small message brings the next small ones along in one
//! `FetchMany` call (the pure session names them), and the batch after those is fetched in
//! the background while the client reads, so a client that retrieves one message at a time
//! (one command, wait, the next) rarely waits for a back-end at all.
//!
//! Invariants: at most two batches per session — the one held and the one coming — each
//! within the session's read-ahead budget; both die with the session (the call coming is
//! aborted); a message the client skipped is forgotten at the next RETR.
use crate::backend_client::{Backends, Lease};
use std::sync::Arc;
use tokio::task::JoinHandle;

type Batch = Vec<(i64, Vec<u8>)>;

#[derive(Debug, Default)]
pub struct ReadAhead {
    /// Messages fetched ahead: (uid, content).
    held: Batch,
    /// The batch on its way: the UIDs asked for, and the call (`None` when it failed).
    coming: Option<(Vec<i64>, JoinHandle<Option<Batch>>)>,
}

impl ReadAhead {
    /// Message `uid`: from what is held or coming, or — when `ahead` names more messages —
    /// fetched with the first half of them in one call; the rest of `ahead` is then asked for
    /// in the background. `None`: fetch it on its own (which also reports why, should the
    /// batch have failed).
    pub async fn take(
        &mut self,
        backends: &Arc<Backends>,
        lease: Option<&Lease>,
        uid: i64,
        ahead: Vec<i64>,
    ) -> Option<Vec<u8>> {
        let lease = lease?;
        let found = match self.held_now(uid) {
            Some(data) => Some(data),
            None if self.is_coming(uid) => {
                self.land().await;
                self.held_now(uid)
            }
            None if ahead.is_empty() => return None,
            None => {
                self.cancel();
                let first = &ahead[..ahead.len().div_ceil(2)];
                let uids = std::iter::once(uid).chain(first.iter().copied()).collect();
                let mut got = backends.fetch_many(lease, uids).await.ok()?;
                let this = got.iter().position(|(u, _)| *u == uid);
                let this = this.map(|i| got.swap_remove(i).1);
                self.held = got;
                this
            }
        };
        self.prefetch(backends, lease, &ahead);
        found
    }

    fn held_now(&mut self, uid: i64) -> Option<Vec<u8>> {
        let i = self.held.iter().position(|(u, _)| *u == uid)?;
        Some(self.held.swap_remove(i).1)
    }

    fn is_coming(&self, uid: i64) -> bool {
        self.coming
            .as_ref()
            .is_some_and(|(uids, _)| uids.contains(&uid))
    }

    /// Waits for the batch on its way and holds it.
    async fn land(&mut self) {
        if let Some((_, call)) = self.coming.take() {
            if let Ok(Some(batch)) = call.await {
                self.held.extend(batch);
            }
        }
    }

    /// Asks in the background for the messages of `ahead` neither held nor coming, unless a
    /// batch is on its way already; forgets held messages the client went past.
    fn prefetch(&mut self, backends: &Arc<Backends>, lease: &Lease, ahead: &[i64]) {
        self.held.retain(|(u, _)| ahead.contains(u));
        if self.coming.is_some() {
            return;
        }
        let held = &self.held;
        let want: Vec<i64> = ahead
            .iter()
            .filter(|u| !held.iter().any(|(h, _)| h == *u))
            .copied()
            .collect();
        if want.is_empty() {
            return;
        }
        let (backends, lease, uids) = (backends.clone(), lease.clone(), want.clone());
        let call = tokio::spawn(async move { backends.fetch_many(&lease, uids).await.ok() });
        self.coming = Some((want, call));
    }

    fn cancel(&mut self) {
        if let Some((_, call)) = self.coming.take() {
            call.abort();
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.cancel();
    }
}
