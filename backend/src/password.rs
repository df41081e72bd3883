//! Password hashing with argon2id (PHC string format). Hashes never leave the back-end.
//!
//! Verification of an unknown user runs against a fixed dummy hash, so the time a failed
//! login takes does not tell whether the user exists. Verification reuses argon2's working
//! memory (19 MiB with the default parameters) from a small pool instead of mapping and
//! zeroing it afresh each time — that cost as much CPU as the hash itself. The caller bounds
//! how many run at once (`auth`), which bounds the pool.
use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Mutex, OnceLock};

/// Working memory of finished verifications, for the next ones.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
/// The most buffers kept; more at once are allocated and dropped.
const MAX_POOLED: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be 1 to 1024 characters")]
    Length,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub fn validate(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() || password.len() > 1024 {
        return Err(PasswordError::Length);
    }
    Ok(())
}

/// Whether two secrets (tokens) are equal, in time that depends only on their lengths.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    validate(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
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
    matches(password.as_bytes(), &parsed) && phc != dummy_hash()
}

/// Argon2 over `password` with the hash's own algorithm, version, parameters and salt, in
/// pooled memory; the outputs are compared in constant time (`Output`'s equality).
fn matches(password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm), Params::try_from(hash))
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let mut memory = take_memory(blocks);
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    give_back(memory);
    computed.is_ok_and(|c| c == expected)
}

/// A buffer of at least `blocks` blocks (its contents are overwritten before being read).
fn take_memory(blocks: usize) -> Vec<Block> {
    let pooled = MEMORY.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut memory = pooled.unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    memory
}

fn give_back(memory: Vec<Block>) {
    let mut pool = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < MAX_POOLED {
        pool.push(memory);
    }
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

    #[test]
    fn pooled_verification_agrees_with_the_crate_for_other_parameters() {
        use argon2::password_hash::PasswordVerifier;
        // Smaller and larger memory than the last verification, argon2i and argon2d too, a
        // non-default output length: the reused buffer must not leak state between them.
        for (alg, m, t, p, len) in [
            (Algorithm::Argon2id, 64, 3, 2, 32),
            (Algorithm::Argon2i, 256, 2, 1, 16),
            (Algorithm::Argon2d, 32, 1, 4, 64),
            (Algorithm::Argon2id, 19456, 2, 1, 32),
            (Algorithm::Argon2id, 64, 3, 2, 32),
        ] {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            let phc = Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
            assert!(verify("pw", Some(&phc)), "{phc}");
            assert!(verify("pw", Some(&phc)), "again, from the pool: {phc}");
            assert!(!verify("pW", Some(&phc)), "{phc}");
        }
        // An argon2 v1.0 hash (version 16).
        let params = Params::new(64, 2, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
            .hash_password(b"old", &salt)
            .unwrap()
            .to_string();
        assert!(phc.contains("v=16"), "{phc}");
        assert!(verify("old", Some(&phc)) && !verify("new", Some(&phc)));
    }
}
