//! SMTP's calls to the back-ends: authentication, the relay decision per recipient, and the
//! handover of a message (one request for a message of one chunk, a stream otherwise).
use super::{Backends, CallError};
use crate::mail::{Answer, AuthResult, Envelope, RcptVerdict};
use bridgehead_proto::v1 as pb;
use bridgehead_proto::v1::auth_client::AuthClient;
use bridgehead_proto::v1::delivery_client::DeliveryClient;
use bridgehead_proto::CHUNK_SIZE;
use bytes::Bytes;
use std::time::Duration;

/// SMTP calls.
impl Backends {
    /// Checks a password; on failure, waits the delay the back-end asks for first.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
        client: &str,
    ) -> Result<AuthResult, CallError> {
        use pb::authenticate_reply::Outcome;
        let req = pb::AuthenticateRequest {
            credentials: Some(super::credentials(user, password, client)),
        };
        let reply = self
            .idempotent("authenticate", |ch| {
                let req = req.clone();
                async move { AuthClient::new(ch).authenticate(req).await }
            })
            .await?;
        match reply.into_inner().outcome {
            Some(Outcome::Account(a)) => Ok(AuthResult::Ok {
                user: a.address,
                addresses: a.addresses,
            }),
            Some(Outcome::Failure(f)) => {
                tokio::time::sleep(Duration::from_millis(u64::from(f.delay_ms))).await;
                Ok(AuthResult::Failed)
            }
            None => Err(CallError::Refused("empty reply to Authenticate".into())),
        }
    }

    /// The relay policy's verdict on one recipient, and whether it may be given again.
    pub async fn check_recipient(
        &self,
        address: &str,
        sender: &str,
        client: &str,
        authenticated: bool,
        size: u64,
    ) -> Result<Answer, CallError> {
        use pb::recipient_reply::Verdict as V;
        let req = pb::RecipientRequest {
            address: address.to_string(),
            authenticated,
            size_hint: size,
            sender: sender.to_string(),
            client_address: client.to_string(),
        };
        let reply = self
            .idempotent("check_recipient", |ch| {
                let req = req.clone();
                async move { DeliveryClient::new(ch).check_recipient(req).await }
            })
            .await?
            .into_inner();
        let verdict = match V::try_from(reply.verdict).unwrap_or(V::Unspecified) {
            V::Local | V::Relay => RcptVerdict::Accept(reply.canonical),
            V::UnknownLocal => RcptVerdict::UnknownLocal,
            V::RelayDenied => RcptVerdict::RelayDenied,
            V::OverQuota => RcptVerdict::OverQuota,
            V::BadSyntax => RcptVerdict::BadSyntax(reply.reason),
            V::SenderRefused => RcptVerdict::SenderRefused,
            V::Throttled => RcptVerdict::Throttled,
            V::Unspecified => RcptVerdict::Unavailable,
        };
        Ok(Answer {
            verdict,
            reusable: reply.reusable,
            penalty: Duration::from_secs(u64::from(reply.penalty_secs)),
        })
    }

    /// Hands a message to a back-end; returns the queue id once it is committed. The same
    /// `token` makes a repeat on another back-end (after a lost reply) store nothing twice.
    /// The content comes in blocks (the spool's) that the requests share, never copy: each
    /// request, and each retry, points into them.
    pub async fn submit(
        &self,
        env: &Envelope,
        origin: &Origin,
        content: Vec<Bytes>,
    ) -> Result<String, CallError> {
        let envelope = wire_envelope(env, origin);
        let total: usize = content.iter().map(Bytes::len).sum();
        let reply = if total <= CHUNK_SIZE && content.len() <= 1 {
            // One request instead of a stream: the common, small message.
            let whole = content.into_iter().next().unwrap_or_default();
            self.idempotent("submit", |ch| {
                let whole = pb::WholeMessage {
                    envelope: Some(envelope.clone()),
                    content: whole.clone(),
                };
                async move { DeliveryClient::new(ch).submit_whole(whole).await }
            })
            .await?
        } else {
            self.idempotent("submit", |ch| {
                let parts = submit_parts(envelope.clone(), &content);
                async move { DeliveryClient::new(ch).submit(futures_iter(parts)).await }
            })
            .await?
        };
        Ok(reply.into_inner().queue_id)
    }
}

/// Where a message came from, besides what the session knows.
#[derive(Debug, Clone)]
pub struct Origin {
    pub client_address: String,
    pub received_by: String,
    /// Unique per SMTP transaction.
    pub token: String,
}

fn wire_envelope(e: &Envelope, o: &Origin) -> pb::Envelope {
    pb::Envelope {
        mail_from: e.mail_from.clone(),
        recipients: e
            .recipients
            .iter()
            .map(|r| pb::SubmitRecipient {
                address: r.address.clone(),
                notify: r.notify,
                orcpt: r.orcpt.clone(),
            })
            .collect(),
        ret: e.ret.clone(),
        envid: e.envid.clone(),
        client_address: o.client_address.clone(),
        client_helo: e.helo.clone(),
        protocol: e.protocol.clone(),
        tls: e.tls.clone(),
        auth_user: e.auth_user.clone(),
        submission: e.submission,
        body: e.body.clone(),
        smtputf8: e.smtputf8,
        requiretls: e.requiretls,
        quarantine: e.quarantine.clone(),
        received_by: o.received_by.clone(),
        submit_token: o.token.clone(),
    }
}

/// The envelope, then the content's blocks as they are.
fn submit_parts(envelope: pb::Envelope, content: &[Bytes]) -> Vec<pb::SubmitPart> {
    use pb::submit_part::Part;
    let mut parts = Vec::with_capacity(1 + content.len());
    parts.push(pb::SubmitPart {
        part: Some(Part::Envelope(envelope)),
    });
    parts.extend(content.iter().map(|block| pb::SubmitPart {
        part: Some(Part::Data(block.clone())),
    }));
    parts
}

/// A ready-made request stream.
fn futures_iter<T: Send + 'static>(items: Vec<T>) -> tokio_stream::Iter<std::vec::IntoIter<T>> {
    tokio_stream::iter(items)
}
