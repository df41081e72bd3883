//! Admin operations on POP3 connectors: validation and proto conversion (the trait methods in
//! `admin.rs` delegate here).
use super::convert::{address, domain};
use super::Services;
use crate::store::Connector;
use bridgehead_proto::v1 as pb;
use tonic::Status;

/// Checks a connector's settings and turns them into the domain type.
pub fn from_proto(c: pb::ConnectorInfo) -> Result<Connector, Status> {
    let bad = |why: &str| Err(Status::invalid_argument(why.to_string()));
    if c.name.trim().is_empty() || c.name.len() > 100 {
        return bad("a connector needs a name of 1 to 100 characters");
    }
    let target = match c.mode.as_str() {
        "user" => address(&c.target)?.to_string(),
        "global" => domain(&c.target)?,
        _ => return bad("mode must be user (--to ADDRESS) or global (--global DOMAIN)"),
    };
    if !["implicit", "stls", "none"].contains(&c.tls.as_str()) {
        return bad("tls must be implicit, stls or none");
    }
    if !["user", "plain", "apop"].contains(&c.auth.as_str()) {
        return bad("auth must be user, plain or apop");
    }
    if c.server.trim().is_empty() || c.port == 0 || c.port > 65535 {
        return bad("a connector needs a server and a port from 1 to 65535");
    }
    if c.username.is_empty() {
        return bad("a connector needs the outside account's user name");
    }
    if c.interval_secs < 1 {
        return bad("the polling interval must be at least 1 second");
    }
    if c.delete_after_days.is_some_and(|d| d < 0) {
        return bad("delete-after-days cannot be negative");
    }
    let undeliverable = match c.undeliverable.as_str() {
        "" => None,
        u => Some(address(u)?.to_string()),
    };
    let log_level = if c.log_level.is_empty() {
        "info".to_string()
    } else {
        c.log_level
    };
    if !["info", "debug"].contains(&log_level.as_str()) {
        return bad("log level must be info or debug");
    }
    Ok(Connector {
        name: c.name.trim().to_string(),
        mode: c.mode,
        server: c.server.trim().to_string(),
        port: c.port as u16,
        tls: c.tls,
        verify_cert: c.verify_cert,
        auth: c.auth,
        username: c.username,
        secret: c.secret,
        target,
        undeliverable,
        leave_on_server: c.leave_on_server,
        delete_after_days: c.delete_after_days,
        interval_secs: c.interval_secs,
        enabled: c.enabled,
        log_level,
        ..Connector::default()
    })
}

/// The connector as the admin API shows it: everything but the secret.
pub fn to_proto(c: Connector) -> pb::ConnectorInfo {
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    pb::ConnectorInfo {
        rules: c
            .rules
            .into_iter()
            .map(|(match_text, target)| pb::ConnectorRule {
                connector: c.name.clone(),
                match_text,
                target,
            })
            .collect(),
        name: c.name,
        mode: c.mode,
        server: c.server,
        port: u32::from(c.port),
        tls: c.tls,
        verify_cert: c.verify_cert,
        auth: c.auth,
        username: c.username,
        secret: String::new(),
        target: c.target,
        undeliverable: c.undeliverable.unwrap_or_default(),
        leave_on_server: c.leave_on_server,
        delete_after_days: c.delete_after_days,
        interval_secs: c.interval_secs,
        enabled: c.enabled,
        log_level: c.log_level,
        last_poll_at: time(c.status.last_poll_at),
        next_poll_at: time(c.status.next_poll_at),
        last_error: c.status.last_error.unwrap_or_default(),
        last_fetched: c.status.last_fetched,
        fetched_total: c.status.fetched_total,
    }
}

pub async fn add(s: &Services, c: pb::ConnectorInfo) -> Result<(), Status> {
    if c.secret.is_empty() {
        return Err(Status::invalid_argument(
            "a connector needs the outside account's password",
        ));
    }
    let mut connector = from_proto(c)?;
    connector.secret = seal(s, &connector.secret)?;
    s.store.add_connector(&connector).await?;
    Ok(())
}

/// A connector as edited: its new password (if one was given) sealed.
pub fn edited(s: &Services, c: pb::ConnectorInfo) -> Result<Connector, Status> {
    let mut connector = from_proto(c)?;
    if !connector.secret.is_empty() {
        connector.secret = seal(s, &connector.secret)?;
    }
    Ok(connector)
}

/// An outside account's password, sealed for storing.
fn seal(s: &Services, secret: &str) -> Result<String, Status> {
    s.settings
        .transport
        .secrets
        .seal("connector", secret)
        .map_err(|e| Status::failed_precondition(e.to_string()))
}

pub async fn rule(s: &Services, r: pb::ConnectorRule) -> Result<(), Status> {
    if r.match_text.trim().is_empty() {
        return Err(Status::invalid_argument(
            "a routing rule needs the text to look for in To or Cc",
        ));
    }
    let target = address(&r.target)?.to_string();
    s.store
        .set_connector_rule(&r.connector, r.match_text.trim(), &target)
        .await?;
    Ok(())
}
