//! `bridgehead.v1.Maildrop`: the POP3 maildrop, one stateless call per POP3 step.
use super::convert::{account, entry, failure, lease, lease_secs, required};
use super::Services;
use crate::auth::LoginOutcome;
use bridgehead_proto::v1 as pb;
use bridgehead_proto::LISTING_PAGE;
use futures::StreamExt;
use std::pin::Pin;
use tonic::{Request, Response, Status};

/// A listing page as the store is asked for it.
const PAGE: i64 = LISTING_PAGE as i64;

type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<pb::Chunk, Status>> + Send>>;

#[tonic::async_trait]
impl pb::maildrop_server::Maildrop for Services {
    async fn open(&self, req: Request<pb::OpenRequest>) -> Result<Response<pb::OpenReply>, Status> {
        use pb::open_reply::Outcome;
        let req = req.into_inner();
        let c = required(req.credentials, "credentials")?;
        if req.session_token.is_empty() {
            return Err(Status::invalid_argument("session_token is required"));
        }
        let outcome = self.login(&c).await?;
        let account_id = match outcome {
            LoginOutcome::Failed { delay } => {
                return Ok(reply(Outcome::AuthFailed(failure(delay))))
            }
            LoginOutcome::Ok { account_id, .. } => account_id,
        };
        let secs = lease_secs(req.lease_seconds);
        if !self
            .store
            .acquire_lease(account_id, &req.session_token, secs)
            .await?
        {
            return Ok(reply(Outcome::InUse(pb::InUse {})));
        }
        let listing = match self.first_page(account_id).await {
            Ok(l) => l,
            Err(e) => {
                let _ = self
                    .store
                    .release_lease(account_id, &req.session_token)
                    .await;
                return Err(e.into());
            }
        };
        Ok(reply(Outcome::Opened(pb::MaildropListing {
            account: account(&outcome, Vec::new()),
            ..listing
        })))
    }

    async fn list_more(
        &self,
        req: Request<pb::ListMoreRequest>,
    ) -> Result<Response<pb::MaildropPage>, Status> {
        let req = req.into_inner();
        let l = lease(req.lease)?;
        self.store
            .check_lease(l.account_id, &l.session_token)
            .await?;
        let (messages, more) = self
            .page(l.account_id, req.after_uid, req.through_uid)
            .await?;
        Ok(Response::new(pb::MaildropPage { messages, more }))
    }

    async fn renew(&self, req: Request<pb::LeaseRef>) -> Result<Response<pb::RenewReply>, Status> {
        let l = req.into_inner();
        let secs = lease_secs(l.lease_seconds);
        self.store
            .renew_lease(l.account_id, &l.session_token, secs)
            .await?;
        Ok(Response::new(pb::RenewReply {}))
    }

    type FetchStream = ChunkStream;

    async fn fetch(&self, req: Request<pb::FetchRequest>) -> Result<Response<ChunkStream>, Status> {
        let req = req.into_inner();
        let l = lease(req.lease)?;
        let stream = self
            .store
            .fetch(l.account_id, &l.session_token, req.uid, req.top_lines)
            .await?;
        let chunks = stream.map(|r| r.map(|data| pb::Chunk { data }).map_err(Status::from));
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn fetch_many(
        &self,
        req: Request<pb::FetchManyRequest>,
    ) -> Result<Response<pb::FetchManyReply>, Status> {
        use bridgehead_proto::{FETCH_MANY_MAX_BYTES, FETCH_MANY_MAX_UIDS};
        let req = req.into_inner();
        let l = lease(req.lease)?;
        if req.uids.len() > FETCH_MANY_MAX_UIDS {
            return Err(Status::invalid_argument(format!(
                "at most {FETCH_MANY_MAX_UIDS} messages per FetchMany"
            )));
        }
        let found = self
            .store
            .fetch_small(
                l.account_id,
                &l.session_token,
                &req.uids,
                FETCH_MANY_MAX_BYTES,
            )
            .await?;
        let messages = found
            .into_iter()
            .map(|(uid, data)| pb::FetchedMessage { uid, data })
            .collect();
        Ok(Response::new(pb::FetchManyReply { messages }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        let req = req.into_inner();
        let l = lease(req.lease)?;
        let deleted = self
            .store
            .commit(l.account_id, &l.session_token, &req.deleted_uids)
            .await?;
        Ok(Response::new(pb::CommitReply { deleted }))
    }

    async fn release(
        &self,
        req: Request<pb::LeaseRef>,
    ) -> Result<Response<pb::ReleaseReply>, Status> {
        let l = req.into_inner();
        self.store
            .release_lease(l.account_id, &l.session_token)
            .await?;
        Ok(Response::new(pb::ReleaseReply {}))
    }
}

fn reply(outcome: pb::open_reply::Outcome) -> Response<pb::OpenReply> {
    Response::new(pb::OpenReply {
        outcome: Some(outcome),
    })
}

impl Services {
    /// The first page of a maildrop listing; with `more`, where the whole listing ends.
    /// Up to LISTING_PAGE messages with `after < uid <= through`, and whether more follow.
    async fn page(
        &self,
        account_id: i64,
        after: i64,
        through: i64,
    ) -> crate::store::Result<(Vec<pb::MessageEntry>, bool)> {
        let mut page = self
            .store
            .listing_page(account_id, after, through, PAGE + 1)
            .await?;
        let more = page.len() > LISTING_PAGE;
        page.truncate(LISTING_PAGE);
        Ok((page.iter().map(entry).collect(), more))
    }

    async fn first_page(&self, account_id: i64) -> crate::store::Result<pb::MaildropListing> {
        let (messages, more) = self.page(account_id, 0, i64::MAX).await?;
        let (through_uid, total) = if more {
            self.store.listing_end(account_id).await?
        } else {
            (0, 0)
        };
        Ok(pb::MaildropListing {
            account: None,
            messages,
            more,
            through_uid,
            total: total.max(0) as u64,
        })
    }
}
