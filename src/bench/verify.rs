//! `--verify`: how many messages each mailbox holds, through the admin API.
use anyhow::Result;
use bridgehead_proto::v1 as pb;
use std::collections::HashMap;
use std::path::PathBuf;

pub async fn counts(data_dir: &Option<PathBuf>) -> Result<HashMap<String, i64>> {
    let url = std::env::var("BRIDGEHEAD_ADMIN_URL").ok();
    let token = std::env::var("BRIDGEHEAD_ADMIN_TOKEN").ok();
    let ca = std::env::var("BRIDGEHEAD_ADMIN_CA").ok().map(PathBuf::from);
    let mut client = crate::admin::connect(url, token, ca, data_dir.clone()).await?;
    let users = client.list_users(pb::ListUsersRequest::default()).await?;
    Ok(users
        .into_inner()
        .users
        .into_iter()
        .map(|u| (u.address, u.messages as i64))
        .collect())
}
