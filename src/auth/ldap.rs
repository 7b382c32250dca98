//! The LDAP client behind `auth.ldap`: one connection per check (ldap:// with StartTLS, or
//! ldaps://), bound as the service DN to find the user (`user_filter`, the login name
//! escaped per RFC 4515) and their groups, then bound as the user's own DN to verify the
//! password. berth never reads or compares password hashes: the directory decides.
//!
//! Every failure that is not "no such user" or "wrong password" (connection refused,
//! timeout, TLS, a service bind the directory rejects) is [`Unavailable`], which the
//! login path answers with 503 and never with a fallback to local passwords.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};

use crate::config::LdapConfig;

/// LDAP result codes that mean "these credentials are not good" rather than "the
/// directory is broken": invalidCredentials, inappropriateAuthentication,
/// insufficientAccessRights (a disabled account on some servers), unwillingToPerform
/// (a locked account).
const REFUSED: &[u32] = &[49, 48, 50, 53];
/// Longest login name sent to the directory, in bytes.
const MAX_USERNAME: usize = 256;
/// noSuchObject: an entry looked up by DN is gone.
const NO_SUCH_OBJECT: u32 = 32;

/// The directory could not answer (down, slow, misconfigured); the text is for the log.
#[derive(Debug, thiserror::Error)]
#[error("directory unavailable: {0}")]
pub struct Unavailable(pub String);

impl From<LdapError> for Unavailable {
    fn from(e: LdapError) -> Self {
        Unavailable(e.to_string())
    }
}

/// A group the user is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub dn: String,
    pub name: String,
}

/// A directory user as found.
#[derive(Clone, Debug)]
pub struct Entry {
    pub dn: String,
    /// The `username_attribute` value, as the directory spells it.
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub groups: Vec<Group>,
}

/// A configured directory.
pub struct Ldap {
    cfg: LdapConfig,
    url: String,
    tls: Arc<ClientConfig>,
}

/// Fills `{name}` placeholders of a filter with escaped values, in one pass (a value that
/// itself contains `{…}` is never expanded again).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        for (name, value) in values {
            if let Some(after) =
                rest.strip_prefix('{').and_then(|r| r.strip_prefix(name)).and_then(|r| r.strip_prefix('}'))
            {
                out.push_str(&ldap_escape(*value));
                rest = after;
                continue 'scan;
            }
        }
        out.push('{');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

fn first(attrs: &HashMap<String, Vec<String>>, name: &str) -> Option<String> {
    attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.first().cloned())
}

fn rc(e: &LdapError) -> Option<u32> {
    match e {
        LdapError::LdapResult { result } => Some(result.rc),
        _ => None,
    }
}

impl Ldap {
    /// `None` when `auth.ldap.url` is unset. Reads `ca_file` now, so a bad one stops the start.
    pub fn new(cfg: &LdapConfig) -> anyhow::Result<Option<Ldap>> {
        let Some(url) = cfg.url.clone() else { return Ok(None) };
        let mut roots = RootCertStore::empty();
        match &cfg.ca_file {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("reading auth.ldap.ca_file {}", path.display()))?
                {
                    roots.add(cert.with_context(|| format!("parsing auth.ldap.ca_file {}", path.display()))?)?;
                }
            }
            None => {
                // Certificates the system store holds but rustls cannot parse are skipped.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Ldap { cfg: cfg.clone(), url, tls: Arc::new(tls) }))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_secs)
    }

    /// A connection bound as the service DN.
    async fn connect(&self) -> Result<ldap3::Ldap, Unavailable> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout())
            .set_starttls(self.cfg.starttls && self.url.starts_with("ldap://"))
            .set_config(Arc::clone(&self.tls));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection closed");
            }
        });
        self.service_bind(&mut ldap).await?;
        Ok(ldap)
    }

    async fn service_bind(&self, ldap: &mut ldap3::Ldap) -> Result<(), Unavailable> {
        if self.cfg.bind_dn.is_empty() {
            return Ok(());
        }
        ldap.with_timeout(self.timeout())
            .simple_bind(&self.cfg.bind_dn, &self.cfg.bind_password)
            .await?
            .success()
            .map_err(|e| Unavailable(format!("binding as auth.ldap.bind_dn: {e}")))?;
        Ok(())
    }

    /// Checks a login name and password: the entry with its groups, or `None` for an
    /// unknown user, an ambiguous filter or a wrong password. An empty password is refused
    /// before any bind (an unauthenticated bind would "succeed").
    pub async fn login(&self, username: &str, password: &str) -> Result<Option<Entry>, Unavailable> {
        // No user name is this long; a filter built from one is only load on the directory.
        if password.is_empty() || username.is_empty() || username.len() > MAX_USERNAME {
            return Ok(None);
        }
        let mut ldap = self.connect().await?;
        let filter = fill(&self.cfg.user_filter, &[("username", username)]);
        let Some(mut entry) = self.find(&mut ldap, &self.cfg.user_base, Scope::Subtree, &filter).await? else {
            let _ = ldap.unbind().await;
            return Ok(None);
        };
        let verified = ldap.with_timeout(self.timeout()).simple_bind(&entry.dn, password).await?.success();
        match verified {
            Ok(_) => {}
            Err(e) if rc(&e).is_some_and(|rc| REFUSED.contains(&rc)) => {
                let _ = ldap.unbind().await;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        // Groups are read with the service's rights, not the user's.
        self.service_bind(&mut ldap).await?;
        entry.groups = self.groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(Some(entry))
    }

    /// The entry at `dn` with its groups, or `None` once it is gone or no longer matches
    /// `user_filter` for `username` (a disabled account, say): for re-checking a directory
    /// user who signs in with an API or refresh token.
    pub async fn lookup(&self, dn: &str, username: &str) -> Result<Option<Entry>, Unavailable> {
        let mut ldap = self.connect().await?;
        let filter = fill(&self.cfg.user_filter, &[("username", username)]);
        let found = match self.find(&mut ldap, dn, Scope::Base, &filter).await {
            Err(e) if rc(&e) == Some(NO_SUCH_OBJECT) => None,
            other => other?,
        };
        let Some(mut entry) = found else {
            let _ = ldap.unbind().await;
            return Ok(None);
        };
        entry.groups = self.groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(Some(entry))
    }

    /// The one entry `filter` finds under `base`; none, or more than one, is `None`.
    async fn find(
        &self,
        ldap: &mut ldap3::Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<Option<Entry>, LdapError> {
        let c = &self.cfg;
        let attrs = [&c.username_attribute, &c.email_attribute, &c.display_name_attribute];
        let (found, _) =
            ldap.with_timeout(self.timeout()).search(base, scope, filter, attrs.to_vec()).await?.success()?;
        if found.len() > 1 {
            tracing::warn!(filter, matches = found.len(), "auth.ldap.user_filter matches more than one entry; refused");
            return Ok(None);
        }
        let Some(raw) = found.into_iter().next() else { return Ok(None) };
        let e = SearchEntry::construct(raw);
        let Some(username) = first(&e.attrs, &c.username_attribute) else {
            tracing::warn!(dn = e.dn, attribute = c.username_attribute, "directory entry lacks the username attribute");
            return Ok(None);
        };
        Ok(Some(Entry {
            username,
            email: first(&e.attrs, &c.email_attribute),
            display_name: first(&e.attrs, &c.display_name_attribute),
            dn: e.dn,
            groups: Vec::new(),
        }))
    }

    async fn groups(&self, ldap: &mut ldap3::Ldap, entry: &Entry) -> Result<Vec<Group>, Unavailable> {
        let c = &self.cfg;
        if c.group_base.is_empty() {
            return Ok(Vec::new());
        }
        let filter = fill(&c.group_filter, &[("dn", &entry.dn), ("username", &entry.username)]);
        let (found, _) = ldap
            .with_timeout(self.timeout())
            .search(&c.group_base, Scope::Subtree, &filter, vec![c.group_name_attribute.as_str()])
            .await?
            .success()?;
        let mut groups: Vec<Group> = found
            .into_iter()
            .filter_map(|raw| {
                let e = SearchEntry::construct(raw);
                first(&e.attrs, &c.group_name_attribute).map(|name| Group { dn: e.dn, name })
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn filters_escape_values_per_rfc4515() {
        assert_eq!(fill("(uid={username})", &[("username", "alice")]), "(uid=alice)");
        assert_eq!(fill("(uid={username})", &[("username", "*)(uid=*")]), "(uid=\\2a\\29\\28uid=\\2a)");
        assert_eq!(fill("(uid={username})", &[("username", "a\\b\0")]), "(uid=a\\5cb\\00)");
        assert_eq!(
            fill("(&(member={dn})(x={username}))", &[("dn", "uid=a(1),dc=x"), ("username", "a")]),
            "(&(member=uid=a\\281\\29,dc=x)(x=a))"
        );
        assert_eq!(fill("(member={dn})", &[("dn", "{username}"), ("username", "x")]), "(member={username})");
        assert_eq!(fill("({x}{username", &[("username", "u")]), "({x}{username");
    }
}
