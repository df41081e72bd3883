//! `bridgehead.v1.Auth`: password checks for SMTP AUTH and other protocols.
use super::convert::{account, failure, required};
use super::Services;
use crate::auth::LoginOutcome;
use bridgehead_proto::v1 as pb;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl pb::auth_server::Auth for Services {
    async fn authenticate(
        &self,
        req: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateReply>, Status> {
        let c = required(req.into_inner().credentials, "credentials")?;
        let outcome = self.login(&c).await?;
        let reply = match outcome {
            LoginOutcome::Failed { delay } => {
                pb::authenticate_reply::Outcome::Failure(failure(delay))
            }
            LoginOutcome::Ok { account_id, .. } => {
                let owned = self.store.owned_addresses(account_id).await?;
                let acc = account(&outcome, owned).expect("successful login");
                pb::authenticate_reply::Outcome::Account(acc)
            }
        };
        Ok(Response::new(pb::AuthenticateReply {
            outcome: Some(reply),
        }))
    }
}
