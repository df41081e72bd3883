//! SASL pieces shared by POP3 (RFC 5034) and SMTP (RFC 4954), pure: base64 responses,
//! PLAIN (RFC 4616) and LOGIN. Proxy authorisation (an authzid other than the user) is
//! not offered.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The LOGIN mechanism's challenges, base64 of "Username:" and "Password:".
pub const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The response is not base64 (or not UTF-8).
    BadBase64,
    /// A PLAIN response that is not `[authzid] NUL authcid NUL passwd` with a user and a
    /// password (RFC 4616 §2): a syntax error, not a failed login.
    MalformedPlain,
    /// A well-formed PLAIN response acting for another user (proxy authorisation).
    BadPlain,
}

/// Decodes a base64 response; "=" is the empty response.
pub fn decode(b64: &[u8]) -> Result<String, SaslError> {
    if b64 == b"=" {
        return Ok(String::new());
    }
    B64.decode(b64)
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or(SaslError::BadBase64)
}

/// A PLAIN response: `[authzid] NUL authcid NUL passwd` → (user, password).
pub fn plain(b64: &[u8]) -> Result<(String, String), SaslError> {
    let text = decode(b64)?;
    let mut parts = text.split('\0');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(authz), Some(user), Some(pass), None) if !user.is_empty() && !pass.is_empty() => {
            if authz.is_empty() || authz == user {
                Ok((user.to_string(), pass.to_string()))
            } else {
                Err(SaslError::BadPlain)
            }
        }
        _ => Err(SaslError::MalformedPlain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        assert_eq!(
            plain(b"AGFsaWNlAHNlY3JldA=="),
            Ok(("alice".into(), "secret".into()))
        );
        assert_eq!(
            plain(b"YWxpY2UAYWxpY2UAc2VjcmV0"),
            Ok(("alice".into(), "secret".into()))
        );
        assert_eq!(
            plain(b"Ym9iAGFsaWNlAHNlY3JldA=="),
            Err(SaslError::BadPlain),
            "bob acting as alice"
        );
        assert_eq!(plain(b"!!"), Err(SaslError::BadBase64));
        for malformed in [&b"="[..], b"AGFsaWNl", b"AGFsaWNlAA==", b"AABzZWNyZXQ="] {
            assert_eq!(plain(malformed), Err(SaslError::MalformedPlain));
        }
        assert_eq!(decode(b"="), Ok(String::new()));
    }
}
