//! Header parsing for POP3 connector routing (mail-parser): no panic on any message.
use bridgehead_backend::connector::route::route;

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let rules = vec![("list@example.org".to_string(), "team@fuzz.test".to_string())];
    let r = route("global", "fuzz.test", &rules, data);
    for c in &r.candidates {
        assert!(c.ends_with("@fuzz.test"), "{c}");
    }
    let u = route("user", "someone@fuzz.test", &[], data);
    assert!(u.looped || u.candidates == vec!["someone@fuzz.test".to_string()]);
}
