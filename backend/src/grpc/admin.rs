//! `bridgehead.v1.Admin`: domains, users, aliases and message import, behind the admin token.
use super::convert::{address, domain, domain_filter, required, user};
use super::{
    connectors, console_admin, directory_admin, dkim_admin, quarantine, queue_admin, Services,
};
use crate::password;
use crate::store::StoreError;
use bridgehead_proto::v1 as pb;
use tonic::{Request, Response, Status, Streaming};

type Reply<T> = Result<Response<T>, Status>;

/// Interceptor: the call must carry `authorization: Bearer <admin token>`. A name of the
/// console's operator in it is dropped: only the console, in process, says who its operator is.
pub fn check_token(token: &str, mut req: Request<()>) -> Result<Request<()>, Status> {
    req.metadata_mut().remove(console_admin::OPERATOR);
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
    if !password::constant_eq(given.as_bytes(), token.as_bytes()) {
        return Err(Status::unauthenticated("wrong or missing admin token"));
    }
    Ok(req)
}

fn empty() -> Reply<pb::Empty> {
    Ok(Response::new(pb::Empty {}))
}

/// A password checked and hashed (argon2id, off the runtime threads): users' and operators'.
pub(super) async fn hash(pw: String) -> Result<String, Status> {
    password::validate(&pw).map_err(StoreError::from)?;
    let h = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(h.map_err(StoreError::from)?)
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
                    kind: d.kind,
                    catch_all: d.catch_all.unwrap_or_default(),
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
        let req = req.into_inner();
        let d = domain_filter(&req.domain)?;
        if req.limit == 0 && req.search.is_empty() && req.after.is_empty() {
            let users = self.store.list_users(d.as_deref()).await?;
            return Ok(Response::new(pb::UserList {
                users: users.into_iter().map(user).collect(),
                next: String::new(),
            }));
        }
        let limit = match req.limit {
            0 => 10_000,
            n => i64::from(n.min(10_000)),
        };
        let mut users = self
            .store
            .users_page(d.as_deref(), &req.search, &req.after, limit + 1)
            .await?;
        let more = users.len() as i64 > limit;
        users.truncate(limit as usize);
        let next = match users.last() {
            Some(last) if more => last.address.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::UserList {
            users: users.into_iter().map(user).collect(),
            next,
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

    async fn list_queue(&self, req: Request<pb::QueueListRequest>) -> Reply<pb::QueueList> {
        Ok(Response::new(
            queue_admin::list(self, req.into_inner()).await?,
        ))
    }

    async fn show_queued(&self, req: Request<pb::QueueRequest>) -> Reply<pb::QueueEntry> {
        let entry = self.store.queue_get(&req.into_inner().queue_id).await?;
        let headers = self.store.queue_headers(entry.content_id).await?;
        Ok(Response::new(pb::QueueEntry {
            headers,
            ..queue_admin::entry(entry)
        }))
    }

    async fn retry_queued(&self, req: Request<pb::QueueRequest>) -> Reply<pb::QueueCount> {
        let who = console_admin::actor(&req);
        let id = req.into_inner().queue_id;
        let count = self
            .store
            .queue_retry((!id.is_empty()).then_some(id.as_str()))
            .await?;
        console_admin::operator_event(self, &who, &id, "made due now (retry)");
        Ok(Response::new(pb::QueueCount { count }))
    }

    async fn delete_queued(&self, req: Request<pb::DeleteQueuedRequest>) -> Reply<pb::Empty> {
        let who = console_admin::actor(&req);
        let req = req.into_inner();
        console_admin::delete_queued(self, &who, &req.queue_id, req.bounce).await?;
        empty()
    }

    async fn hold_queued(&self, req: Request<pb::QueueRequest>) -> Reply<pb::Empty> {
        let who = console_admin::actor(&req);
        let id = req.into_inner().queue_id;
        self.store.queue_hold(&id, true).await?;
        console_admin::operator_event(self, &who, &id, "held");
        empty()
    }

    async fn release_queued(&self, req: Request<pb::QueueRequest>) -> Reply<pb::Empty> {
        let who = console_admin::actor(&req);
        let id = req.into_inner().queue_id;
        self.store.queue_hold(&id, false).await?;
        console_admin::operator_event(self, &who, &id, "released from hold");
        empty()
    }

    async fn set_route(&self, req: Request<pb::RouteInfo>) -> Reply<pb::Empty> {
        queue_admin::set_route(self, req.into_inner()).await?;
        empty()
    }

    async fn list_routes(&self, _: Request<pb::Empty>) -> Reply<pb::RouteList> {
        let routes = self.store.list_routes().await?;
        Ok(Response::new(pb::RouteList {
            routes: routes
                .into_iter()
                .map(|r| pb::RouteInfo {
                    domain: r.domain,
                    host: r.host,
                    port: u32::from(r.port),
                    tls: r.tls,
                    auth_user: r.auth_user.unwrap_or_default(),
                    auth_secret: String::new(),
                })
                .collect(),
        }))
    }

    async fn remove_route(&self, req: Request<pb::DomainRequest>) -> Reply<pb::Empty> {
        self.store
            .remove_route(&req.into_inner().name.to_ascii_lowercase())
            .await?;
        empty()
    }

    async fn add_connector(&self, req: Request<pb::ConnectorInfo>) -> Reply<pb::Empty> {
        connectors::add(self, req.into_inner()).await?;
        empty()
    }

    async fn edit_connector(&self, req: Request<pb::ConnectorInfo>) -> Reply<pb::Empty> {
        self.store
            .update_connector(&connectors::edited(self, req.into_inner())?)
            .await?;
        empty()
    }

    async fn list_connectors(&self, _: Request<pb::Empty>) -> Reply<pb::ConnectorList> {
        let list = self.store.list_connectors().await?;
        Ok(Response::new(pb::ConnectorList {
            connectors: list.into_iter().map(connectors::to_proto).collect(),
        }))
    }

    async fn show_connector(&self, req: Request<pb::ConnectorRequest>) -> Reply<pb::ConnectorInfo> {
        let c = self.store.get_connector(&req.into_inner().name).await?;
        Ok(Response::new(connectors::to_proto(c)))
    }

    async fn remove_connector(&self, req: Request<pb::ConnectorRequest>) -> Reply<pb::Empty> {
        self.store.remove_connector(&req.into_inner().name).await?;
        empty()
    }

    async fn retrieve_now(&self, req: Request<pb::ConnectorRequest>) -> Reply<pb::QueueCount> {
        let name = req.into_inner().name;
        let count = self
            .store
            .retrieve_now((!name.is_empty()).then_some(name.as_str()))
            .await?;
        Ok(Response::new(pb::QueueCount { count }))
    }

    async fn set_connector_rule(&self, req: Request<pb::ConnectorRule>) -> Reply<pb::Empty> {
        connectors::rule(self, req.into_inner()).await?;
        empty()
    }

    async fn remove_connector_rule(&self, req: Request<pb::ConnectorRule>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        self.store
            .remove_connector_rule(&r.connector, &r.match_text)
            .await?;
        empty()
    }

    async fn set_domain_kind(&self, req: Request<pb::DomainKindRequest>) -> Reply<pb::Empty> {
        directory_admin::set_domain_kind(self, req.into_inner()).await?;
        empty()
    }

    async fn set_domain_auth(
        &self,
        req: Request<pb::DomainAuthRequest>,
    ) -> Reply<pb::DomainAuthInfo> {
        let info = directory_admin::set_domain_auth(self, req.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn add_group(&self, req: Request<pb::GroupRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let policy = directory_admin::policy(&r.policy)?;
        self.store.add_group(&address(&r.address)?, policy).await?;
        empty()
    }

    async fn set_group_policy(&self, req: Request<pb::GroupRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let policy = directory_admin::policy(&r.policy)?;
        self.store
            .set_group_policy(&address(&r.address)?, policy)
            .await?;
        empty()
    }

    async fn remove_group(&self, req: Request<pb::GroupRequest>) -> Reply<pb::Empty> {
        self.store
            .remove_group(&address(&req.into_inner().address)?)
            .await?;
        empty()
    }

    async fn list_groups(&self, req: Request<pb::ListGroupsRequest>) -> Reply<pb::GroupList> {
        let d = domain_filter(&req.into_inner().domain)?;
        let groups = self.store.list_groups(d.as_deref()).await?;
        Ok(Response::new(pb::GroupList {
            groups: groups
                .into_iter()
                .map(|g| pb::GroupInfo {
                    address: g.address,
                    policy: g.policy,
                    members: g.members,
                })
                .collect(),
        }))
    }

    async fn add_group_member(&self, req: Request<pb::GroupMemberRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        self.store
            .add_group_member(&address(&r.group)?, &address(&r.member)?)
            .await?;
        empty()
    }

    async fn remove_group_member(&self, req: Request<pb::GroupMemberRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        self.store
            .remove_group_member(&address(&r.group)?, &address(&r.member)?)
            .await?;
        empty()
    }

    async fn add_contact(&self, req: Request<pb::ContactInfo>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        self.store
            .add_contact(&address(&r.address)?, &address(&r.external)?)
            .await?;
        empty()
    }

    async fn remove_contact(&self, req: Request<pb::ContactInfo>) -> Reply<pb::Empty> {
        self.store
            .remove_contact(&address(&req.into_inner().address)?)
            .await?;
        empty()
    }

    async fn list_contacts(&self, req: Request<pb::ListGroupsRequest>) -> Reply<pb::ContactList> {
        let d = domain_filter(&req.into_inner().domain)?;
        let contacts = self.store.list_contacts(d.as_deref()).await?;
        Ok(Response::new(pb::ContactList {
            contacts: contacts
                .into_iter()
                .map(|(address, external)| pb::ContactInfo { address, external })
                .collect(),
        }))
    }

    async fn add_dkim_key(&self, req: Request<pb::DkimKeyRequest>) -> Reply<pb::DkimKeyInfo> {
        let info = dkim_admin::add(self, &req.into_inner(), "active").await?;
        Ok(Response::new(info))
    }

    async fn mta_sts_published(&self, _: Request<pb::Empty>) -> Reply<pb::MtaStsInfo> {
        let Some(policy) = &self.settings.transport.publish_sts else {
            return Err(Status::failed_precondition(
                "no MTA-STS policy is published: start the back-ends with --mta-sts-mode enforce|testing and --mta-sts-mx HOST,…",
            ));
        };
        let domains = self.store.list_domains().await?;
        Ok(Response::new(pb::MtaStsInfo {
            policy: policy.render(),
            id: policy.id(),
            domains: domains
                .into_iter()
                .filter(|d| d.kind != "relay")
                .map(|d| d.name)
                .collect(),
        }))
    }

    async fn tls_report(&self, req: Request<pb::TlsReportRequest>) -> Reply<pb::TlsReportList> {
        Ok(Response::new(
            super::tls_report::counts(self, req.into_inner()).await?,
        ))
    }

    async fn list_quarantine(&self, _: Request<pb::Empty>) -> Reply<pb::QuarantineList> {
        Ok(Response::new(quarantine::list(self).await?))
    }

    async fn release_quarantine(
        &self,
        req: Request<pb::QuarantineRequest>,
    ) -> Reply<pb::QuarantineReleased> {
        let released = quarantine::release(self, &req.into_inner().id).await?;
        Ok(Response::new(released))
    }

    async fn delete_quarantine(&self, req: Request<pb::QuarantineRequest>) -> Reply<pb::Empty> {
        quarantine::delete(self, &req.into_inner().id).await?;
        empty()
    }

    async fn list_dkim_keys(&self, req: Request<pb::DomainRequest>) -> Reply<pb::DkimKeyList> {
        let list = dkim_admin::list(self, &req.into_inner().name).await?;
        Ok(Response::new(list))
    }

    async fn rotate_dkim_keys(&self, req: Request<pb::DkimKeyRequest>) -> Reply<pb::DkimKeyList> {
        let list = dkim_admin::rotate(self, &req.into_inner()).await?;
        Ok(Response::new(list))
    }

    async fn activate_dkim_keys(&self, req: Request<pb::DomainRequest>) -> Reply<pb::DkimKeyList> {
        let name = domain(&req.into_inner().name)?;
        self.store.activate_dkim_keys(&name).await?;
        Ok(Response::new(dkim_admin::list(self, &name).await?))
    }

    async fn remove_dkim_key(&self, req: Request<pb::DkimKeyRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        self.store
            .remove_dkim_key(&domain(&r.domain)?, r.selector.trim())
            .await?;
        empty()
    }

    async fn add_operator(&self, req: Request<pb::OperatorRequest>) -> Reply<pb::Empty> {
        console_admin::add_operator(self, req.into_inner()).await?;
        empty()
    }

    async fn edit_operator(&self, req: Request<pb::OperatorRequest>) -> Reply<pb::Empty> {
        console_admin::edit_operator(self, req.into_inner()).await?;
        empty()
    }

    async fn list_operators(&self, _: Request<pb::Empty>) -> Reply<pb::OperatorList> {
        Ok(Response::new(console_admin::list_operators(self).await?))
    }

    async fn remove_operator(&self, req: Request<pb::OperatorRequest>) -> Reply<pb::Empty> {
        let name = console_admin::operator_name(&req.into_inner().name)?;
        self.store.remove_operator(&name).await?;
        empty()
    }

    async fn overview(&self, _: Request<pb::Empty>) -> Reply<pb::OverviewInfo> {
        Ok(Response::new(console_admin::overview(self).await?))
    }

    async fn track_messages(&self, req: Request<pb::TrackRequest>) -> Reply<pb::TrackList> {
        Ok(Response::new(
            console_admin::track(self, req.into_inner()).await?,
        ))
    }

    async fn act_on_queue(&self, req: Request<pb::QueueActionRequest>) -> Reply<pb::QueueCount> {
        let who = console_admin::actor(&req);
        let count = console_admin::act_on_queue(self, &who, req.into_inner()).await?;
        Ok(Response::new(pb::QueueCount { count }))
    }
}
