//! Slowing down password guessing: after [`FREE_FAILURES`] failed logins within
//! [`WINDOW_SECS`] for one account (or [`FREE_FAILURES_PER_ADDRESS`] from one address, which
//! may be a NAT shared by many people), each further failure blocks that key for an
//! exponentially growing time (capped), answered with 429 and `Retry-After`.
//! Counters live in the database so every replica sees them; the CLI never goes through
//! here, so the superuser can always get in from the server itself.

use std::net::IpAddr;

use super::{
    credentials::{self, Authenticated, CredentialError},
    directory::Directory,
    password,
};
use crate::db::{self, Db};

pub const FREE_FAILURES: i64 = 5;
pub const FREE_FAILURES_PER_ADDRESS: i64 = 30;
pub const WINDOW_SECS: i64 = 900;
pub const MAX_BLOCK_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid credentials")]
    Invalid,
    #[error("too many failed logins; retry in {0} s")]
    Throttled(u64),
    /// The directory does not answer (503); no failure is counted.
    #[error("directory unavailable")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn keys(username: &str, ip: Option<IpAddr>) -> Vec<String> {
    let mut k = vec![format!("user:{username}")];
    if let Some(ip) = ip {
        k.push(format!("ip:{ip}"));
    }
    k
}

/// Seconds to block after `failures` failures when the first `free` cost nothing.
pub fn block_secs(failures: i64, free: i64) -> i64 {
    if failures <= free {
        return 0;
    }
    let exp = (failures - free - 1).min(16) as u32;
    (1_i64 << exp).min(MAX_BLOCK_SECS)
}

/// Checks a username and secret (password or API token), throttled per account and address.
pub async fn login(
    db: &Db,
    dir: &Directory,
    username: &str,
    secret: &str,
    ip: Option<IpAddr>,
) -> Result<Authenticated, LoginError> {
    let keys = keys(username, ip);
    let now = db::now();
    let state = db::throttle::state(db, &keys).await.map_err(anyhow::Error::from)?;
    if state.blocked_until > now {
        crate::ops::metrics::login_throttled();
        return Err(LoginError::Throttled((state.blocked_until - now) as u64));
    }
    match credentials::authenticate(db, dir, username, secret).await {
        Ok(a) => {
            crate::ops::context::set_principal(username);
            // A write only when there is something to clear: most logins have no failures.
            if state.account_failures {
                db::throttle::clear(db, &keys[0]).await.map_err(anyhow::Error::from)?;
            }
            Ok(a)
        }
        // Not the client's fault: no failure is counted.
        Err(CredentialError::Busy(_)) => Err(LoginError::Throttled(password::BUSY_RETRY_SECS)),
        Err(CredentialError::Unavailable) => Err(LoginError::Unavailable),
        Err(CredentialError::Invalid) => {
            for k in &keys {
                let failures =
                    db::throttle::record_failure(db, k, now, WINDOW_SECS).await.map_err(anyhow::Error::from)?;
                let free = if k.starts_with("ip:") { FREE_FAILURES_PER_ADDRESS } else { FREE_FAILURES };
                let secs = block_secs(failures, free);
                if secs > 0 {
                    db::throttle::block(db, k, now + secs).await.map_err(anyhow::Error::from)?;
                }
            }
            Err(LoginError::Invalid)
        }
        Err(CredentialError::Internal(e)) => Err(LoginError::Internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let f = FREE_FAILURES;
        assert_eq!(block_secs(1, f), 0);
        assert_eq!(block_secs(f, f), 0);
        assert_eq!(block_secs(f + 1, f), 1);
        assert_eq!(block_secs(f + 2, f), 2);
        assert_eq!(block_secs(f + 5, f), 16);
        assert_eq!(block_secs(1000, f), MAX_BLOCK_SECS);
    }
}
