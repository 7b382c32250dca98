//! A collection's retention and immutable-tag policy (issue 10): read by whoever sees the
//! collection, set by its owners (and admins). Retention runs with garbage collection.

use serde::{Deserialize, Serialize};

use super::{Actor, ManageError, Manager, Result};
use crate::{db::policies::PolicyRow, registry::policy::Policy};

/// A policy as sent: every field optional; a PUT replaces the whole policy.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyIn {
    /// Retention keeps the newest N tags (by last push)…
    pub keep_newest: Option<i64>,
    /// …and those matching these globs; with either set, it drops every other tag.
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// Untagged manifests go this long after their last push: `"7d"`, `"12h"`, or seconds.
    pub untagged_after: Option<DurationIn>,
    /// Tags matching these globs can be neither moved nor deleted.
    #[serde(default)]
    pub immutable_tags: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DurationIn {
    Secs(u64),
    Text(String),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyOut {
    pub collection: String,
    pub keep_newest: Option<i64>,
    pub keep_tags: Vec<String>,
    pub untagged_after_secs: Option<i64>,
    pub immutable_tags: Vec<String>,
}

fn out(collection: &str, row: PolicyRow) -> PolicyOut {
    PolicyOut {
        collection: collection.to_owned(),
        keep_newest: row.keep_newest,
        keep_tags: row.keep_patterns,
        untagged_after_secs: row.untagged_after_secs,
        immutable_tags: row.immutable_patterns,
    }
}

impl PolicyIn {
    fn validate(self) -> Result<PolicyRow> {
        let bad = |m: String| ManageError::BadRequest(m);
        if self.keep_newest.is_some_and(|n| n < 0) {
            return Err(bad("keep_newest must not be negative".into()));
        }
        let untagged_after_secs = match self.untagged_after {
            None => None,
            Some(DurationIn::Secs(s)) => Some(s),
            Some(DurationIn::Text(t)) => {
                Some(humantime::parse_duration(&t).map_err(|e| bad(format!("untagged_after {t:?}: {e}")))?.as_secs())
            }
        };
        let row = PolicyRow {
            keep_newest: self.keep_newest,
            keep_patterns: self.keep_tags,
            untagged_after_secs: untagged_after_secs.map(|s| s.min(i64::MAX as u64) as i64),
            immutable_patterns: self.immutable_tags,
        };
        Policy::compile(&row).map_err(bad)?;
        Ok(row)
    }
}

impl Manager<'_> {
    pub async fn get_policy(&self, actor: &Actor, name: &str) -> Result<PolicyOut> {
        let (view, _) = self.collection_for(actor, name).await?;
        Ok(out(name, crate::db::policies::get(self.db, view.id).await?.unwrap_or_default()))
    }

    pub async fn set_policy(&self, actor: &Actor, name: &str, policy: PolicyIn) -> Result<PolicyOut> {
        let view = self.managed_collection(actor, name).await?;
        let row = policy.validate()?;
        crate::db::policies::put(self.db, view.id, &row).await?;
        Ok(out(name, row))
    }
}
