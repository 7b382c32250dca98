//! What a caller may see across repositories: the catalog, and (for a mount without
//! `from`, in `blobs.rs`) the repositories it may take a blob from. Visibility follows DESIGN §3 and is applied in the
//! database, so a listing never loads what it must not show.

use super::{Caller, Registry, Result};
use crate::db::{repos, repos::CatalogScope, users};

impl Registry {
    /// Which repositories `caller` may pull: staff all, a user the public collections and
    /// those they are a member of, anonymous the public ones unless the registry is private
    /// (`public` false), an inactive or deleted user nothing.
    pub(super) async fn visibility(&self, caller: &Caller, public: bool) -> Result<CatalogScope> {
        if caller.sub.is_empty() {
            return Ok(if public { CatalogScope::Public } else { CatalogScope::Nothing });
        }
        Ok(match users::by_name(&self.db, &caller.sub).await? {
            Some(u) if u.active && u.role.is_staff() => CatalogScope::All,
            Some(u) if u.active => CatalogScope::User(u.id),
            _ => CatalogScope::Nothing,
        })
    }

    /// Up to `n` repository names after `last`, byte-sorted, that `caller` may pull.
    pub async fn catalog(&self, caller: &Caller, public: bool, last: &str, n: u32) -> Result<Vec<String>> {
        let scope = self.visibility(caller, public).await?;
        Ok(repos::catalog(&self.db, &scope, last, i64::from(n)).await?)
    }
}
