//! POP3 with real third-party clients: Python's poplib (STLS and POP3S) and curl.
use bridgehead_tests::{blocking, curl, python, Cluster};

const USER: &str = "alice@example.com";
const PASS: &str = "correct horse battery";

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: bob@example.org\r\nTo: {USER}\r\nSubject: message {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\nHello {n}.\r\n.leading dot\r\n..two dots\r\n\r\nend\r\n"
    )
    .into_bytes()
}

const POPLIB: &str = r#"
import poplib, ssl, sys, json
mode, host, port, user, password = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == "stls":
    c = poplib.POP3(host, int(port), timeout=20)
    caps = c.capa()
    assert "STLS" in caps and "USER" not in caps, caps
    c.stls(ctx)
    assert "STLS" not in c.capa()
else:
    c = poplib.POP3_SSL(host, int(port), context=ctx, timeout=20)
c.user(user)
c.pass_(password)
count, octets = c.stat()
out = {"count": count, "octets": octets, "list": [x.decode() for x in c.list()[1]],
       "uidl": [x.decode() for x in c.uidl()[1]], "messages": []}
for i in range(1, count + 1):
    resp, lines, size = c.retr(i)
    out["messages"].append({"resp": resp.decode(), "text": "\r\n".join(l.decode() for l in lines) + "\r\n"})
out["top"] = [l.decode() for l in c.top(1, 1)[1]]
c.dele(1)
c.quit()
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_reads_byte_for_byte_over_stls_and_pop3s() {
    let cluster = Cluster::start().await;
    cluster.add_user(USER, PASS).await;
    let m1 = message(1);
    let m2 = message(2);
    let uid1 = cluster.deliver(USER, &m1).await;
    let uid2 = cluster.deliver(USER, &m2).await;

    let (host, port) = (
        cluster.pop3.ip().to_string(),
        cluster.pop3.port().to_string(),
    );
    let out = blocking(move || python(POPLIB, &["stls", &host, &port, USER, PASS])).await;
    let v: serde_json::Value = serde_json::from_str(&out).expect("json from the script");
    assert_eq!(v["count"], 2);
    assert_eq!(v["octets"], (m1.len() + m2.len()) as u64);
    assert_eq!(v["list"][0], format!("1 {}", m1.len()));
    assert_eq!(v["uidl"][1], format!("2 {uid2}"));
    assert_eq!(
        v["messages"][0]["text"],
        String::from_utf8(m1.clone()).unwrap()
    );
    assert_eq!(v["messages"][0]["resp"], format!("+OK {} octets", m1.len()));
    assert_eq!(
        v["messages"][1]["text"],
        String::from_utf8(m2.clone()).unwrap()
    );
    let top: Vec<String> = serde_json::from_value(v["top"].clone()).unwrap();
    assert_eq!(
        top.last().map(String::as_str),
        Some("Hello 1."),
        "TOP 1 1 ends with the first body line"
    );
    assert_eq!(
        cluster.uids(USER).await,
        vec![uid2],
        "QUIT deleted message 1 only"
    );

    // POP3S (implicit TLS) sees the remaining message with the same UID.
    let (host, port) = (
        cluster.pop3s.ip().to_string(),
        cluster.pop3s.port().to_string(),
    );
    let out = blocking(move || python(POPLIB, &["pop3s", &host, &port, USER, PASS])).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["count"], 1);
    assert_eq!(
        v["uidl"][0],
        format!("1 {uid2}"),
        "UIDs are stable across sessions"
    );
    assert_eq!(v["messages"][0]["text"], String::from_utf8(m2).unwrap());
    assert!(cluster.uids(USER).await.is_empty());
    assert_ne!(uid1, uid2);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_lists_and_retrieves_over_pop3s_and_stls() {
    let cluster = Cluster::start().await;
    cluster.add_user(USER, PASS).await;
    let m1 = message(7);
    cluster.deliver(USER, &m1).await;
    let userpw = format!("{USER}:{PASS}");

    let url = format!("pop3s://{}/", cluster.pop3s);
    let (ok, out, err) = blocking({
        let userpw = userpw.clone();
        move || curl(&["-k", "--user", &userpw, &url])
    })
    .await;
    assert!(ok, "curl pop3s list: {err}");
    assert_eq!(String::from_utf8_lossy(&out), format!("1 {}\r\n", m1.len()));

    let url = format!("pop3s://{}/1", cluster.pop3s);
    let (ok, out, err) = blocking({
        let userpw = userpw.clone();
        move || curl(&["-k", "--user", &userpw, &url])
    })
    .await;
    assert!(ok, "curl pop3s retr: {err}");
    assert_eq!(out, m1, "curl receives the message byte for byte");

    // STLS on the plain port, required by curl.
    let url = format!("pop3://{}/1", cluster.pop3);
    let (ok, out, err) = blocking({
        let userpw = userpw.clone();
        move || curl(&["-k", "--ssl-reqd", "--user", &userpw, &url])
    })
    .await;
    assert!(ok, "curl pop3 with STLS: {err}");
    assert_eq!(out, m1);

    // Without TLS the password is refused, and curl says so.
    let url = format!("pop3://{}/", cluster.pop3);
    let (ok, _, err) = blocking(move || curl(&["--user", &userpw, &url])).await;
    assert!(!ok, "plaintext login must fail");
    assert!(!err.is_empty());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_message_streams_in_chunks() {
    let cluster = Cluster::start().await;
    cluster.add_user(USER, PASS).await;
    // About 3 MiB: several storage and gRPC chunks, lines of varying length.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..60_000 {
        big.extend_from_slice(
            format!("{}line {i}\r\n", if i % 7 == 0 { "." } else { "" }).as_bytes(),
        );
        big.extend_from_slice(&b"x".repeat(i % 80));
        big.extend_from_slice(b"\r\n");
    }
    cluster.deliver(USER, &big).await;
    let url = format!("pop3s://{}/1", cluster.pop3s);
    let userpw = format!("{USER}:{PASS}");
    let (ok, out, err) = blocking(move || curl(&["-k", "--user", &userpw, &url])).await;
    assert!(ok, "{err}");
    assert_eq!(out.len(), big.len());
    assert!(out == big, "large message differs");
    cluster.stop().await;
}
