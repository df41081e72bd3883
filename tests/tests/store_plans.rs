//! The store at size. The POP3 hot path's statements keep to key probes on a store whose statistics are stale
//! (a mailbox and the content tables grown by 20,000 rows since the last ANALYZE, as between
//! two autovacuum runs): never a scan of the mailbox or of the content tables, in custom plans
//! and in the generic plan a prepared statement ends up with. (Found by `tests/bench/scale.sh`:
//! `uid = ANY` let the planner scan a whole mailbox, and a flattened join all of
//! content_chunks, for every batch of POP3 read-ahead.) And `admin queue list` pages through
//! a long queue instead of loading it whole.
use bridgehead_backend::store::HOT_QUERIES;
use bridgehead_tests::{admin_cli, Cluster};

/// 20,000 more messages in big@example.com, each with content of its own, UIDs 1000 on.
const GROW: &str = "
    WITH c AS (INSERT INTO contents (size, chunks)
               SELECT 100, 1 FROM generate_series(1, 20000) RETURNING id),
         ch AS (INSERT INTO content_chunks (content_id, seq, data)
                SELECT id, 0, '\\x0d0a'::bytea FROM c RETURNING content_id)
    INSERT INTO messages (account_id, uid, content_id, size)
    SELECT (SELECT id FROM accounts WHERE address = 'big@example.com'),
           999 + row_number() OVER (), content_id, 100 FROM ch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_queries_probe_keys_whatever_the_statistics() {
    let c = Cluster::start().await;
    c.add_user("big@example.com", "pw").await;
    c.add_user("small@example.com", "pw").await;
    c.deliver("big@example.com", b"Subject: one\r\n\r\nbody\r\n")
        .await;
    c.deliver("small@example.com", b"Subject: one\r\n\r\nbody\r\n")
        .await;
    let db = sqlx::PgPool::connect(&c.database_url).await.unwrap();
    sqlx::raw_sql("ANALYZE").execute(&db).await.unwrap();
    sqlx::raw_sql(GROW).execute(&db).await.unwrap();
    let account: i64 =
        sqlx::query_scalar("SELECT id FROM accounts WHERE address = 'big@example.com'")
            .fetch_one(&db)
            .await
            .unwrap();
    let uids: Vec<String> = (5000..5017).map(|u| u.to_string()).collect();
    let uids = format!("'{{{}}}'", uids.join(","));
    let mut conn = db.acquire().await.unwrap();
    for (name, sql) in HOT_QUERIES {
        let args = match name {
            "listing page" => format!("{account}, 0, 100000, 1000"),
            "fetch" => format!("{account}, 5000, 'token'"),
            "fetch small" => format!("{account}, {uids}, 'token'"),
            "commit delete" => format!("{account}, {uids}"),
            other => panic!("a hot query without arguments here: {other}"),
        };
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let prepare = format!("SET plan_cache_mode = {mode}; PREPARE q AS {sql}");
            sqlx::raw_sql(&prepare).execute(&mut *conn).await.unwrap();
            let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE q({args})"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            let plan = plan.join("\n");
            // (A tiny table such as the leases may be read whole; the mailbox and the
            // content tables never.)
            let scans = [
                "Seq Scan on messages",
                "Seq Scan on content",
                "Bitmap Heap Scan on messages",
                "Bitmap Heap Scan on content",
                "Hash Join",
                "Merge Join",
            ];
            for scan in scans {
                assert!(!plan.contains(scan), "{name}, {mode}: {scan}\n{plan}");
            }
            let probe = plan.lines().any(|l| {
                l.contains("Index Cond: ((account_id = ") && l.contains("(uid ")
                    || l.contains("AND (uid = ")
            });
            assert!(
                plan.contains("messages_pkey") && probe,
                "{name}, {mode}: no probe of messages by its full key\n{plan}"
            );
            sqlx::raw_sql("DEALLOCATE q; RESET plan_cache_mode")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
    drop(conn);
    db.close().await;
    c.stop().await;
}

/// 2,500 queued messages (deferred a day): `admin queue list` shows every one, oldest first,
/// fetched 1,000 at a time; `--limit` stops early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_listed_a_page_at_a_time() {
    let c = Cluster::start().await;
    let db = sqlx::PgPool::connect(&c.database_url).await.unwrap();
    sqlx::raw_sql(
        "WITH c AS (INSERT INTO contents (size, chunks) VALUES (10, 0) RETURNING id)
         INSERT INTO outbound_queue (queue_id, content_id, mail_from, next_attempt_at)
         SELECT 'Q' || lpad(g::text, 5, '0'), c.id, 'a@example.com', now() + interval '1 day'
         FROM c, generate_series(1, 2500) g",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let bin = env!("CARGO_BIN_EXE_bridgehead");
    let ids = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains(" bytes  from "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let all = ids(&admin_cli(bin, &c, &["queue", "list"]));
    let want: Vec<String> = (1..=2500).map(|n| format!("Q{n:05}")).collect();
    assert_eq!(
        all, want,
        "every entry once, oldest first, across three pages"
    );
    let some = ids(&admin_cli(bin, &c, &["queue", "list", "--limit", "1500"]));
    assert_eq!(some, want[..1500]);
    c.stop().await;
}
