//! CRLF canonicalisation and TOP cutting on arbitrary content split anywhere: the output is
//! the same whatever the split, has only CRLF line endings, and TOP returns a prefix of it.
use bridgehead_backend::content::{Canonicalizer, TopCutter};

fn canon(parts: &[&[u8]]) -> Vec<u8> {
    let mut c = Canonicalizer::new();
    let mut out = Vec::new();
    for p in parts {
        c.push(p, &mut out);
    }
    c.finish(&mut out);
    out
}

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split) % (rest.len() + 1);
    let whole = canon(&[rest]);
    assert_eq!(canon(&[&rest[..at], &rest[at..]]), whole);
    for (i, &b) in whole.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && whole[i - 1] == b'\r', "bare LF");
        }
        if b == b'\r' {
            assert_eq!(whole.get(i + 1), Some(&b'\n'), "bare CR");
        }
    }
    let mut t = TopCutter::new(u32::from(split % 5));
    let a = t.take(&whole[..at.min(whole.len())]);
    assert!(a <= at.min(whole.len()));
}
