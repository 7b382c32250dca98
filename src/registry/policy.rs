//! A collection's retention and immutable-tag policy, compiled from its stored form: which
//! tags retention drops, which tags may never move or go, and how long untagged manifests
//! stay. Pure, so the rules are tested as tables.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::db::{gc::TagRow, policies::PolicyRow};

#[derive(Clone, Debug, Default)]
pub struct Policy {
    keep_newest: Option<usize>,
    keep: Option<GlobSet>,
    immutable: Option<GlobSet>,
    /// Seconds after its last push at which an untagged manifest goes (overrides `gc.untagged`).
    pub untagged_after_secs: Option<u64>,
}

/// A glob set, or `None` for no patterns; an invalid pattern is named in the error.
fn globs(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

impl Policy {
    pub fn compile(row: &PolicyRow) -> Result<Policy, String> {
        Ok(Policy {
            keep_newest: row.keep_newest.map(|n| n.max(0) as usize),
            keep: globs(&row.keep_patterns)?,
            immutable: globs(&row.immutable_patterns)?,
            untagged_after_secs: row.untagged_after_secs.map(|s| s.max(0) as u64),
        })
    }

    /// Whether the tag may never be moved to another manifest nor deleted.
    pub fn is_immutable(&self, tag: &str) -> bool {
        self.immutable.as_ref().is_some_and(|g| g.is_match(tag))
    }

    /// The tags retention drops: with a `keep_newest` or keep patterns set, every tag that
    /// is neither among the newest N (by last update), nor matches a keep pattern, nor is
    /// immutable. Without either, none.
    pub fn retention_victims<'a>(&self, tags: &'a [TagRow]) -> Vec<&'a TagRow> {
        if self.keep_newest.is_none() && self.keep.is_none() {
            return vec![];
        }
        let mut newest: Vec<&TagRow> = tags.iter().collect();
        newest.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.name.cmp(&b.name)));
        let n = self.keep_newest.unwrap_or(0);
        newest
            .into_iter()
            .enumerate()
            .filter(|(i, t)| {
                *i >= n && !self.keep.as_ref().is_some_and(|g| g.is_match(&t.name)) && !self.is_immutable(&t.name)
            })
            .map(|(_, t)| t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, updated_at: i64) -> TagRow {
        TagRow { name: name.into(), digest: format!("sha256:{name}"), updated_at }
    }

    fn policy(keep_newest: Option<i64>, keep: &[&str], immutable: &[&str]) -> Policy {
        let strings = |v: &[&str]| v.iter().map(std::string::ToString::to_string).collect();
        Policy::compile(&PolicyRow {
            keep_newest,
            keep_patterns: strings(keep),
            untagged_after_secs: None,
            immutable_patterns: strings(immutable),
        })
        .unwrap()
    }

    #[test]
    fn retention_table() {
        let tags = [tag("v1", 10), tag("v2", 20), tag("v3", 30), tag("latest", 40), tag("release-1", 5)];
        let names = |p: &Policy| {
            let mut v: Vec<&str> = p.retention_victims(&tags).iter().map(|t| t.name.as_str()).collect();
            v.sort();
            v
        };
        // (keep_newest, keep patterns, immutable patterns) -> tags dropped
        type Row<'a> = (Option<i64>, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let table: &[Row] = &[
            (None, &[], &[], &[]),
            (None, &[], &["v*"], &[]),
            (Some(2), &[], &[], &["release-1", "v1", "v2"]),
            (Some(2), &["release-*"], &[], &["v1", "v2"]),
            (Some(0), &["v?"], &[], &["latest", "release-1"]),
            (Some(1), &[], &["v1"], &["release-1", "v2", "v3"]),
            (Some(10), &[], &[], &[]),
        ];
        for (n, keep, immutable, dropped) in table {
            assert_eq!(names(&policy(*n, keep, immutable)), *dropped, "{n:?} {keep:?} {immutable:?}");
        }
    }

    #[test]
    fn immutable_patterns() {
        let p = policy(None, &[], &["v*.*.*", "stable"]);
        assert!(p.is_immutable("v1.2.3") && p.is_immutable("stable"));
        assert!(!p.is_immutable("v1") && !p.is_immutable("latest") && !p.is_immutable("stable2"));
        assert!(!Policy::default().is_immutable("anything"));
        assert!(Policy::compile(&PolicyRow { keep_patterns: vec!["[".into()], ..Default::default() }).is_err());
    }
}
