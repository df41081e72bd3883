//! Password hashing with argon2id (PHC string format). Hashes never leave the back-end.
//!
//! Verification of an unknown user runs against a fixed dummy hash, so the time a failed
//! login takes does not tell whether the user exists.
use crate::error::StoreError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::OnceLock;

pub fn validate(password: &str) -> Result<(), StoreError> {
    if password.is_empty() || password.len() > 1024 {
        return Err(StoreError::BadPassword);
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, StoreError> {
    validate(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// True when `password` matches `phc`; `None` verifies against a dummy hash and is false.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    let phc = match phc {
        Some(p) => p,
        None => dummy_hash(),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && phc != dummy_hash()
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("bridgehead-dummy-password").expect("argon2 with default parameters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", Some(&h)));
        assert!(!verify("wrong", Some(&h)));
        assert!(!verify("bridgehead-dummy-password", None));
        assert!(!verify("x", Some("not a hash")));
        assert!(hash("").is_err());
    }
}
