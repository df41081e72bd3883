//! MTA-STS (RFC 8461), pure: the `_mta-sts` TXT record, the policy file served at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and whether an MX host is one the
//! policy allows. No I/O: fetching and caching are the caller's.
//!
//! Invariants: a TXT answer counts only when exactly one of its records starts with
//! `v=STSv1` (§3.1: several, or none, is no policy); a policy needs `version: STSv1`, a known
//! `mode`, `max_age` within 0..=31557600 and, unless `mode: none`, at least one `mx`;
//! unknown keys are ignored (§3.2); an `mx` pattern's `*.` matches exactly one leftmost label
//! (§4.1), names compare without regard to case or a final dot.

/// The longest policy file read (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY: usize = 64 * 1024;
/// The largest `max_age` (RFC 8461 §3.2: a year).
pub const MAX_AGE: u64 = 31_557_600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    #[error("no MTA-STS record")]
    NoRecord,
    #[error("more than one MTA-STS record")]
    SeveralRecords,
    #[error("MTA-STS record without a valid id")]
    BadId,
    #[error("MTA-STS policy: {0}")]
    BadPolicy(&'static str),
}

/// What `_mta-sts.<domain>` says: the current policy's id.
pub fn parse_record<'a>(txts: impl IntoIterator<Item = &'a str>) -> Result<String, StsError> {
    let mut found = None;
    for txt in txts {
        if !txt.trim_start().starts_with("v=STSv1") {
            continue;
        }
        if found.is_some() {
            return Err(StsError::SeveralRecords);
        }
        found = Some(txt);
    }
    let record = found.ok_or(StsError::NoRecord)?;
    let id = record
        .split(';')
        .filter_map(|f| f.trim().split_once('='))
        .find(|(k, _)| k.trim() == "id")
        .map(|(_, v)| v.trim())
        .ok_or(StsError::BadId)?;
    let ok = (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| id.to_string()).ok_or(StsError::BadId)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only MX hosts the policy names, with certificates that verify.
    Enforce,
    /// Deliver as without a policy, but report what enforce would have refused.
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub mx: Vec<String>,
    pub max_age: u64,
}

impl Policy {
    /// Parses a policy file (CRLF or LF lines, `key: value`).
    pub fn parse(text: &[u8]) -> Result<Policy, StsError> {
        if text.len() > MAX_POLICY {
            return Err(StsError::BadPolicy("longer than 64 KiB"));
        }
        let text = std::str::from_utf8(text).map_err(|_| StsError::BadPolicy("not UTF-8"))?;
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_string()),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => return Err(StsError::BadPolicy("unknown mode")),
                    })
                }
                "max_age" => {
                    let age: u64 = value
                        .parse()
                        .map_err(|_| StsError::BadPolicy("max_age is not a number"))?;
                    if age > MAX_AGE {
                        return Err(StsError::BadPolicy("max_age beyond a year"));
                    }
                    max_age = Some(age);
                }
                "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err(StsError::BadPolicy("no version: STSv1"));
        }
        let mode = mode.ok_or(StsError::BadPolicy("no mode"))?;
        let max_age = max_age.ok_or(StsError::BadPolicy("no max_age"))?;
        if mode != Mode::None && mx.is_empty() {
            return Err(StsError::BadPolicy("no mx"));
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// The policy file for this policy (what `parse` reads back).
    pub fn render(&self) -> String {
        let mut text = format!("version: STSv1\r\nmode: {}\r\n", self.mode.as_str());
        for mx in &self.mx {
            text.push_str(&format!("mx: {mx}\r\n"));
        }
        text.push_str(&format!("max_age: {}\r\n", self.max_age));
        text
    }

    /// The id to publish for this policy in `_mta-sts` (§3.1: 1 to 32 letters and digits): a
    /// digest of the policy file, so it changes exactly when the policy does.
    pub fn id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.render().as_bytes());
        digest.as_ref()[..10]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether the policy allows `host` as an MX (§4.1).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(
            parse_record(["v=STSv1; id=20160831085700Z;"]).unwrap(),
            "20160831085700Z"
        );
        assert_eq!(
            parse_record(["v=spf1 -all", "v=STSv1;id=abc"]).unwrap(),
            "abc"
        );
        assert_eq!(parse_record(["v=spf1 -all"]), Err(StsError::NoRecord));
        assert_eq!(
            parse_record(["v=STSv1; id=a", "v=STSv1; id=b"]),
            Err(StsError::SeveralRecords)
        );
        for bad in [
            "v=STSv1;",
            "v=STSv1; id=",
            "v=STSv1; id=has-dash",
            &format!("v=STSv1; id={}", "a".repeat(33)),
        ] {
            assert_eq!(parse_record([bad]), Err(StsError::BadId), "{bad}");
        }
    }

    #[test]
    fn policies() {
        let p = Policy::parse(
            b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\nfuture: ignored\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 86400);
        assert!(p.allows("MAIL.example.com."));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("a.b.example.net"), "one label only");
        assert!(!p.allows("example.net"));
        assert!(!p.allows("evil-mail.example.com"));
        let none = Policy::parse(b"version: STSv1\nmode: none\nmax_age: 0\n").unwrap();
        assert_eq!(none.mode, Mode::None);
        for bad in [
            &b"mode: enforce\nmx: a\nmax_age: 1\n"[..],
            b"version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
            b"version: STSv1\nmode: enforce\nmax_age: 1\n",
            b"version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999\n",
            b"version: STSv1\nmode: enforce\nmx: a\n",
            b"\xff\xfe",
        ] {
            assert!(
                Policy::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(Policy::parse(&vec![b'a'; MAX_POLICY + 1]).is_err());
    }

    #[test]
    fn a_published_policy_reads_back_and_its_id_follows_it() {
        let p = Policy {
            mode: Mode::Enforce,
            mx: vec!["mx1.example.org".into(), "*.example.net".into()],
            max_age: 604800,
        };
        assert_eq!(Policy::parse(p.render().as_bytes()).unwrap(), p);
        let id = p.id();
        assert_eq!(
            parse_record([format!("v=STSv1; id={id}").as_str()]).unwrap(),
            id
        );
        let testing = Policy {
            mode: Mode::Testing,
            ..p.clone()
        };
        assert_ne!(testing.id(), id);
    }
}
