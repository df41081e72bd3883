//! POP3's calls to the back-ends: open (login, lease, listing), renew, fetch one or many,
//! commit, release; the maildrop's types as the driver sees them.
use super::{credentials, Backends, CallError};
use bridgehead_proto::v1 as pb;
use bridgehead_proto::v1::maildrop_client::MaildropClient;
use std::time::Duration;

/// One message of a maildrop listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedMessage {
    pub uid: i64,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened {
        account_id: i64,
        messages: Vec<ListedMessage>,
    },
    AuthFailed {
        delay: Duration,
    },
    InUse,
}

/// A maildrop lease held by one POP3 session.
#[derive(Debug, Clone)]
pub struct Lease {
    pub account_id: i64,
    pub token: String,
    pub seconds: u32,
}

/// A message arriving from a back-end, chunk by chunk.
pub struct MessageChunks(tonic::Streaming<pb::Chunk>);

impl MessageChunks {
    /// The next chunk, or `None` at the end of the message.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        Ok(self.0.message().await?.map(|c| c.data))
    }
}

/// POP3 calls.
impl Backends {
    /// Authenticates, takes the maildrop lease and lists the messages.
    pub async fn open(
        &self,
        user: &str,
        password: &str,
        client: &str,
        lease: &Lease,
    ) -> Result<OpenOutcome, CallError> {
        use pb::open_reply::Outcome;
        let req = pb::OpenRequest {
            credentials: Some(credentials(user, password, client)),
            session_token: lease.token.clone(),
            lease_seconds: lease.seconds,
        };
        let reply = self.idempotent("open", |ch| {
            let req = req.clone();
            async move { MaildropClient::new(ch).open(req).await }
        });
        match reply.await?.into_inner().outcome {
            Some(Outcome::Opened(m)) => {
                let account_id = m.account.map(|a| a.account_id).unwrap_or_default();
                let mut messages: Vec<_> = listed(&m.messages).collect();
                if m.more {
                    // Sized once (a little over, for messages arriving meanwhile), not grown
                    // page by page: a million-message listing costs its own 16 MiB, no more.
                    let total = usize::try_from(m.total).unwrap_or(0).min(100_000_000);
                    messages.reserve_exact(total.saturating_sub(messages.len()) + 1024);
                    let lease = Lease {
                        account_id,
                        ..lease.clone()
                    };
                    if let Err(e) = self.list_more(&lease, m.through_uid, &mut messages).await {
                        // The session never starts: give the lease back at once.
                        let _ = self.release(&lease).await;
                        return Err(e);
                    }
                }
                Ok(OpenOutcome::Opened {
                    account_id,
                    messages,
                })
            }
            Some(Outcome::AuthFailed(f)) => Ok(OpenOutcome::AuthFailed {
                delay: Duration::from_millis(u64::from(f.delay_ms)),
            }),
            Some(Outcome::InUse(_)) => Ok(OpenOutcome::InUse),
            None => Err(CallError::Refused("empty reply to Open".into())),
        }
    }

    /// The rest of a listing too big for one reply, page by page, up to `through_uid`.
    async fn list_more(
        &self,
        lease: &Lease,
        through_uid: i64,
        messages: &mut Vec<ListedMessage>,
    ) -> Result<(), CallError> {
        loop {
            let req = pb::ListMoreRequest {
                lease: Some(lease_ref(lease)),
                after_uid: messages.last().map_or(0, |m| m.uid),
                through_uid,
            };
            let page = self
                .idempotent("list_more", |ch| {
                    let req = req.clone();
                    async move { MaildropClient::new(ch).list_more(req).await }
                })
                .await?
                .into_inner();
            messages.extend(listed(&page.messages));
            if !page.more || page.messages.is_empty() {
                return Ok(());
            }
        }
    }

    pub async fn renew(&self, lease: &Lease) -> Result<(), CallError> {
        let req = lease_ref(lease);
        self.idempotent("renew", |ch| {
            let req = req.clone();
            async move { MaildropClient::new(ch).renew(req).await }
        })
        .await
        .map(|_| ())
    }

    pub async fn fetch(
        &self,
        lease: &Lease,
        uid: i64,
        top: Option<u32>,
    ) -> Result<MessageChunks, CallError> {
        let req = pb::FetchRequest {
            lease: Some(lease_ref(lease)),
            uid,
            top_lines: top,
        };
        let stream = self
            .idempotent("fetch", |ch| {
                let req = req.clone();
                async move { MaildropClient::new(ch).fetch(req).await }
            })
            .await?;
        Ok(MessageChunks(stream.into_inner()))
    }

    /// Whole small messages among `uids`, in the order asked; those left out (too big, gone,
    /// lease lost) are to be fetched one by one with `fetch`, which says why.
    pub async fn fetch_many(
        &self,
        lease: &Lease,
        uids: Vec<i64>,
    ) -> Result<Vec<(i64, Vec<u8>)>, CallError> {
        let req = pb::FetchManyRequest {
            lease: Some(lease_ref(lease)),
            uids,
        };
        let reply = self
            .idempotent("fetch_many", |ch| {
                let req = req.clone();
                async move { MaildropClient::new(ch).fetch_many(req).await }
            })
            .await?;
        let messages = reply.into_inner().messages;
        Ok(messages.into_iter().map(|m| (m.uid, m.data)).collect())
    }

    /// Deletes `uids` and ends the lease; returns how many were deleted.
    pub async fn commit(&self, lease: &Lease, uids: Vec<i64>) -> Result<u32, CallError> {
        let req = pb::CommitRequest {
            lease: Some(lease_ref(lease)),
            deleted_uids: uids,
        };
        let reply = self
            .idempotent("commit", |ch| {
                let req = req.clone();
                async move { MaildropClient::new(ch).commit(req).await }
            })
            .await?;
        Ok(reply.into_inner().deleted)
    }

    pub async fn release(&self, lease: &Lease) -> Result<(), CallError> {
        let req = lease_ref(lease);
        self.idempotent("release", |ch| {
            let req = req.clone();
            async move { MaildropClient::new(ch).release(req).await }
        })
        .await
        .map(|_| ())
    }
}

fn listed(entries: &[pb::MessageEntry]) -> impl Iterator<Item = ListedMessage> + '_ {
    entries.iter().map(|e| ListedMessage {
        uid: e.uid,
        size: e.size,
    })
}

fn lease_ref(l: &Lease) -> pb::LeaseRef {
    pb::LeaseRef {
        account_id: l.account_id,
        session_token: l.token.clone(),
        lease_seconds: l.seconds,
    }
}
