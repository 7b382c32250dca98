//! Password hashing (argon2id) and random secrets. Hashing runs on the blocking pool:
//! argon2 is deliberately slow and must not stall the async workers.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Digest as _;

/// An argon2id PHC string for the password.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await?
}

/// Whether the password matches the PHC string. A malformed hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A hash of a valid-looking password, verified against when a user does not exist so
/// that timing does not tell which usernames exist.
pub async fn burn_time(password: String) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = match DUMMY.get() {
        Some(p) => p.clone(),
        None => match hash("berth-dummy-password".into()).await {
            Ok(p) => DUMMY.get_or_init(|| p).clone(),
            Err(_) => return,
        },
    };
    verify(password, phc).await;
}

/// A random secret: `prefix` + 32 random bytes, base64url.
pub fn random_secret(prefix: &str) -> String {
    let mut buf = [0u8; 32];
    // SystemRandom only fails if the OS RNG is unavailable, which is unrecoverable.
    if SystemRandom::new().fill(&mut buf).is_err() {
        panic!("operating system random number generator unavailable");
    }
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf))
}

/// How tokens (API and refresh) are stored: hex SHA-256 of the secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("s3cret".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret".into(), h.clone()).await);
        assert!(!verify("wrong".into(), h).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn secrets_are_random() {
        let a = random_secret("t_");
        assert!(a.starts_with("t_") && a.len() > 40);
        assert_ne!(a, random_secret("t_"));
        assert_eq!(secret_hash("abc").len(), 64);
    }
}
