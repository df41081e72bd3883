//! SRS addresses (the bounces to forwarded mail we take): `reverse` on arbitrary local parts
//! never panics and accepts only SRS forms; a forward of any sender reverses to exactly that
//! sender (unless the sender is itself another forwarder's SRS1 address, which reverses to
//! that forwarder); a forward of a forward is SRS1 and reverses too.
use bridgehead_backend::mailauth::srs::{looks_like_srs, Srs};

const DAY: u64 = 20_428;

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let srs = Srs::new(b"fuzz key");
    let text = String::from_utf8_lossy(data);
    if srs.reverse(&text, DAY).is_ok() {
        assert!(looks_like_srs(&text), "reversed a non-SRS input: {text}");
    }
    let sender = match text.rsplit_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('=') => text.to_string(),
        _ => return,
    };
    let fwd = srs.forward(&sender, "fwd.test", DAY);
    let (local, domain) = fwd.rsplit_once('@').expect("an address");
    assert_eq!(domain, "fwd.test");
    let back = srs.reverse(local, DAY).expect("our own forward reverses");
    let sender_local = sender.rsplit_once('@').map_or("", |(l, _)| l);
    let was_srs1 = sender_local.len() > 5
        && sender_local.as_bytes()[..5].eq_ignore_ascii_case(b"SRS1=")
        && local.starts_with("SRS1=");
    if looks_like_srs(sender_local) && !was_srs1 {
        // Another forwarder's SRS0 address comes back with its tag in our case.
        assert!(
            back.eq_ignore_ascii_case(&sender),
            "{sender} → {fwd} → {back}"
        );
    } else if !was_srs1 {
        assert_eq!(back, sender, "the forward of {sender} is {fwd}");
    }
    let again = srs.forward(&fwd, "hop.test", DAY);
    assert!(
        again.starts_with("SRS1="),
        "a forward of a forward: {again}"
    );
    let (again_local, _) = again.rsplit_once('@').expect("an address");
    assert!(srs.reverse(again_local, DAY).is_ok(), "{again}");
}
