//! Renaming forged Authentication-Results fields (RFC 8601 §5) on arbitrary header blocks:
//! never a panic; lines keep their number and order; a line is either kept as it is or is an
//! `Authentication-Results` field renamed with the rest of it untouched; and afterwards no
//! field claims our authserv-id (a second pass finds nothing to rename).
use bridgehead_backend::mailauth::forged::rename_forged;

const OURS: &str = "mx.example.net";
const NAME: &[u8] = b"authentication-results:";
const FORGED: &[u8] = b"X-Forged-Authentication-Results:";

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let Some(out) = rename_forged(data, OURS) else {
        return;
    };
    let before: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let after: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(before.len(), after.len(), "lines added or lost");
    let mut renamed = 0;
    for (b, a) in before.iter().zip(&after) {
        if a == b {
            continue;
        }
        let was_ar = b.len() >= NAME.len() && b[..NAME.len()].eq_ignore_ascii_case(NAME);
        assert!(was_ar, "a line that was not AR changed");
        assert!(a.starts_with(FORGED), "changed but not renamed");
        assert_eq!(
            &a[FORGED.len()..],
            &b[NAME.len()..],
            "the field's value changed"
        );
        renamed += 1;
    }
    assert!(renamed > 0, "Some without a renamed field");
    assert_eq!(
        rename_forged(&out, OURS),
        None,
        "a field still claims our id"
    );
}
