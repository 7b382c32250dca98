//! Creating users (for the CLI and the first start's superuser).

use super::{password, rules::AccountRole};
use crate::db::{self, Db, is_unique_violation};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid username: use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")]
    InvalidName,
    #[error("password must not be empty")]
    EmptyPassword,
    #[error("user {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub fn valid_username(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

pub async fn create(db: &Db, username: &str, password: &str, role: AccountRole) -> Result<i64, UserError> {
    if !valid_username(username) {
        return Err(UserError::InvalidName);
    }
    if password.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    let hash = password::hash(password.to_owned()).await?;
    match db::users::insert(db, username, &hash, role.as_str()).await {
        Ok(id) => Ok(id),
        Err(e) if is_unique_violation(&e) => Err(UserError::Exists(username.to_owned())),
        Err(e) => Err(UserError::Internal(e.into())),
    }
}

/// On a first start with no users, creates the superuser `admin`, with the configured
/// initial password or a random one that is logged once.
pub async fn bootstrap_admin(db: &Db, initial_password: Option<&str>) -> anyhow::Result<()> {
    if db::users::count(db).await? > 0 {
        return Ok(());
    }
    let (pw, generated) = match initial_password {
        Some(p) if !p.is_empty() => (p.to_owned(), false),
        _ => (password::random_secret(""), true),
    };
    match create(db, "admin", &pw, AccountRole::Superuser).await {
        Ok(_) if generated => {
            tracing::warn!(
                "created superuser admin with password {pw} (shown once; set BERTH_INITIAL_ADMIN_PASSWORD to choose it)"
            );
        }
        Ok(_) => tracing::info!("created superuser admin"),
        // Another replica bootstrapped first.
        Err(UserError::Exists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_username;

    #[test]
    fn usernames() {
        assert!(valid_username("alice") && valid_username("a.b-c_d9"));
        assert!(!valid_username("") && !valid_username("Alice") && !valid_username("-a") && !valid_username("a b"));
        assert!(!valid_username(&"a".repeat(65)));
    }
}
