//! `bridgehead.v1.Admin`: domains, users, aliases and message import, behind the admin token.
use super::convert::{address, domain, domain_filter, required, user};
use super::Services;
use crate::error::StoreError;
use crate::password;
use bridgehead_proto::v1 as pb;
use tonic::{Request, Response, Status, Streaming};

type Reply<T> = Result<Response<T>, Status>;

/// Interceptor: the call must carry `authorization: Bearer <admin token>`.
pub fn check_token(token: &str, req: Request<()>) -> Result<Request<()>, Status> {
    if token.is_empty() {
        return Err(Status::permission_denied(
            "the admin API is disabled (no admin token configured)",
        ));
    }
    let given = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Err(Status::unauthenticated("wrong or missing admin token"));
    }
    Ok(req)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn empty() -> Reply<pb::Empty> {
    Ok(Response::new(pb::Empty {}))
}

async fn hash(pw: String) -> Result<String, Status> {
    password::validate(&pw)?;
    let h = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(h?)
}

#[tonic::async_trait]
impl pb::admin_server::Admin for Services {
    async fn add_domain(&self, req: Request<pb::DomainRequest>) -> Reply<pb::Empty> {
        self.store
            .add_domain(&domain(&req.into_inner().name)?)
            .await?;
        empty()
    }

    async fn list_domains(&self, _: Request<pb::Empty>) -> Reply<pb::DomainList> {
        let domains = self.store.list_domains().await?;
        Ok(Response::new(pb::DomainList {
            domains: domains
                .into_iter()
                .map(|d| pb::DomainInfo {
                    name: d.name,
                    users: d.users,
                })
                .collect(),
        }))
    }

    async fn remove_domain(&self, req: Request<pb::DomainRequest>) -> Reply<pb::Empty> {
        self.store
            .remove_domain(&domain(&req.into_inner().name)?)
            .await?;
        empty()
    }

    async fn add_user(&self, req: Request<pb::AddUserRequest>) -> Reply<pb::UserInfo> {
        let req = req.into_inner();
        let addr = address(&req.address)?;
        let h = hash(req.password).await?;
        self.store.add_user(&addr, &h, req.quota_bytes).await?;
        Ok(Response::new(pb::UserInfo {
            address: addr.to_string(),
            quota_bytes: req.quota_bytes,
            used_bytes: 0,
            messages: 0,
        }))
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Reply<pb::UserList> {
        let d = domain_filter(&req.into_inner().domain)?;
        let users = self.store.list_users(d.as_deref()).await?;
        Ok(Response::new(pb::UserList {
            users: users.into_iter().map(user).collect(),
        }))
    }

    async fn remove_user(&self, req: Request<pb::UserRequest>) -> Reply<pb::Empty> {
        self.store
            .remove_user(&address(&req.into_inner().address)?)
            .await?;
        empty()
    }

    async fn set_password(&self, req: Request<pb::SetPasswordRequest>) -> Reply<pb::Empty> {
        let req = req.into_inner();
        let addr = address(&req.address)?;
        let h = hash(req.password).await?;
        self.store.set_password(&addr, &h).await?;
        empty()
    }

    async fn set_quota(&self, req: Request<pb::SetQuotaRequest>) -> Reply<pb::Empty> {
        let req = req.into_inner();
        self.store
            .set_quota(&address(&req.address)?, req.quota_bytes)
            .await?;
        empty()
    }

    async fn add_alias(&self, req: Request<pb::AliasRequest>) -> Reply<pb::Empty> {
        let req = req.into_inner();
        self.store
            .add_alias(&address(&req.alias)?, &address(&req.target)?)
            .await?;
        empty()
    }

    async fn list_aliases(&self, req: Request<pb::ListAliasesRequest>) -> Reply<pb::AliasList> {
        let d = domain_filter(&req.into_inner().domain)?;
        let aliases = self.store.list_aliases(d.as_deref()).await?;
        Ok(Response::new(pb::AliasList {
            aliases: aliases
                .into_iter()
                .map(|a| pb::AliasRequest {
                    alias: a.alias,
                    target: a.target,
                })
                .collect(),
        }))
    }

    async fn remove_alias(&self, req: Request<pb::AliasRequest>) -> Reply<pb::Empty> {
        self.store
            .remove_alias(&address(&req.into_inner().alias)?)
            .await?;
        empty()
    }

    async fn import_message(
        &self,
        req: Request<Streaming<pb::ImportPart>>,
    ) -> Reply<pb::ImportReply> {
        use pb::import_part::Part;
        let mut parts = req.into_inner();
        let first = required(parts.message().await?.and_then(|p| p.part), "recipient")?;
        let Part::Recipient(rcpt) = first else {
            return Err(Status::invalid_argument(
                "the first part must name the recipient",
            ));
        };
        let addr = address(&rcpt)?;
        let (account, mailbox) = self
            .store
            .resolve_recipient(&addr)
            .await?
            .ok_or_else(|| StoreError::UnknownRecipient(addr.to_string()))?;
        let mut writer = self
            .store
            .begin_content(self.settings.max_message_size)
            .await?;
        while let Some(part) = parts.message().await? {
            match part.part {
                Some(Part::Data(d)) => writer.write(&d).await?,
                _ => {
                    return Err(Status::invalid_argument(
                        "only data may follow the recipient",
                    ))
                }
            }
        }
        let delivered = writer
            .deliver(&[(account, mailbox, Vec::new())], None)
            .await?;
        let d = delivered
            .into_iter()
            .next()
            .ok_or_else(|| Status::internal("nothing delivered"))?;
        Ok(Response::new(pb::ImportReply {
            address: d.address,
            uid: d.uid,
            size: d.size,
        }))
    }
}
