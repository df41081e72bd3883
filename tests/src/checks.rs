//! What the fault tests assert after a load: nothing acknowledged lost or doubled, and POP3
//! deletions exactly as QUIT confirmed them. The loads are the Python scripts in
//! tests/support, whose JSON results these read.
use crate::{message_ids, read_mailbox};
use bridgehead_backend::Store;
use serde_json::Value;

/// Every message an SMTP load got a `250` for (`[id, [recipients that took it]]`) is in each
/// of those recipients' mailboxes exactly once, and no message is in any of `rcpts` twice.
pub async fn assert_exactly_once(store: &Store, rcpts: &[&str], accepted: &[Value]) {
    for r in rcpts {
        let ids = message_ids(store, r).await;
        for (id, n) in &ids {
            assert_eq!(*n, 1, "{id} is in {r} {n} times");
        }
        for a in accepted {
            let (id, took) = (a[0].as_str().unwrap(), a[1].as_array().unwrap());
            if took.iter().any(|t| t == r) {
                assert_eq!(ids.get(id), Some(&1), "{id} got a 250 but is not in {r}");
            }
        }
    }
}

/// After a POP3 load that marked everything (`{account: {quit_ok, sent_quit}}`): a QUIT that
/// answered `+OK` deleted all of it, a session without QUIT deleted nothing (`held` were
/// there), and some sessions did complete.
pub async fn assert_quits_kept(store: &Store, accounts: &[String], results: &Value, held: usize) {
    let mut confirmed = 0;
    for acc in accounts {
        let left = read_mailbox(store, acc, Some(0)).await.len();
        let r = &results[acc.as_str()];
        if r["quit_ok"] == true {
            confirmed += 1;
            assert_eq!(
                left, 0,
                "{acc}: QUIT said +OK, so everything marked is gone"
            );
        }
        if r["sent_quit"] == false {
            assert_eq!(left, held, "{acc}: no QUIT, nothing deleted");
        }
    }
    assert!(confirmed > 0, "some POP3 sessions completed: {results}");
}
