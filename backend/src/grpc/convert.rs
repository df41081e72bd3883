//! Proto messages to domain values and back, at the boundary.
use crate::address::{parse_domain, Address};
use crate::auth::LoginOutcome;
use crate::store::StoreError;
use crate::store::{MessageEntry, UserInfo};
use bridgehead_proto::v1 as pb;
use tonic::Status;

pub fn required<T>(field: Option<T>, name: &str) -> Result<T, Status> {
    field.ok_or_else(|| Status::invalid_argument(format!("{name} is required")))
}

pub fn address(s: &str) -> Result<Address, Status> {
    Address::parse(s).map_err(|e| StoreError::from(e).into())
}

/// A domain name, or all domains when empty.
pub fn domain_filter(s: &str) -> Result<Option<String>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    domain(s).map(Some)
}

pub fn domain(s: &str) -> Result<String, Status> {
    parse_domain(s).map_err(|why| {
        let input = s.to_string();
        StoreError::from(crate::address::AddressError { input, why }).into()
    })
}

pub fn lease(l: Option<pb::LeaseRef>) -> Result<pb::LeaseRef, Status> {
    let l = required(l, "lease")?;
    if l.session_token.is_empty() {
        return Err(Status::invalid_argument("lease.session_token is required"));
    }
    Ok(l)
}

/// Lease length asked for, kept within 10 s .. 1 h.
pub fn lease_secs(asked: u32) -> u32 {
    asked.clamp(10, 3600)
}

pub fn failure(delay: std::time::Duration) -> pb::AuthFailure {
    pb::AuthFailure {
        delay_ms: delay.as_millis().min(u128::from(u32::MAX)) as u32,
    }
}

pub fn account(outcome: &LoginOutcome, addresses: Vec<String>) -> Option<pb::Account> {
    match outcome {
        LoginOutcome::Ok {
            account_id,
            address,
        } => Some(pb::Account {
            account_id: *account_id,
            address: address.clone(),
            addresses,
        }),
        LoginOutcome::Failed { .. } => None,
    }
}

pub fn entry(m: &MessageEntry) -> pb::MessageEntry {
    pb::MessageEntry {
        uid: m.uid,
        size: m.size,
    }
}

pub fn user(u: UserInfo) -> pb::UserInfo {
    pb::UserInfo {
        address: u.address,
        quota_bytes: u.quota_bytes,
        used_bytes: u.used_bytes,
        messages: u.messages,
    }
}
