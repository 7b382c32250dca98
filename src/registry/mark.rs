//! Mark and sweep for one repository, pure: from its manifests, tags, references and blob
//! links, and the rules in force, what a collection pass removes. `registry::gc` then
//! carries the plan out with conditional statements (or only reports it, on a dry run).
//!
//! Live manifests are marked from roots — a tag (that retention keeps), a top-level
//! untagged manifest that the untagged policy keeps (not an index's child, nor a referrer
//! of a manifest that is here: those follow their parent or subject), anything pushed
//! within the grace period — through index
//! children, referrers (manifests whose `subject` is live) and subjects (a live referrer
//! keeps what it refers to). A link goes when no surviving manifest references the blob and
//! the link is older than the grace period.

use std::collections::{HashMap, HashSet};

use crate::db::gc::{LinkRow, ManifestNode, RepoGraph, TagRow};

/// The rules for one repository, as of one pass.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Links and manifests pushed at or after this are young: always kept.
    pub grace_cutoff: i64,
    /// Untagged manifests pushed before this go; `None` keeps them all.
    pub untagged_cutoff: Option<i64>,
}

/// What a pass removes from one repository.
#[derive(Debug, Default)]
pub struct RepoPlan<'a> {
    pub tags: Vec<&'a TagRow>,
    pub manifests: Vec<&'a ManifestNode>,
    pub links: Vec<&'a LinkRow>,
}

/// Plans one repository: `dropped_tags` are the tags retention removes.
pub fn plan<'a>(g: &'a RepoGraph, dropped_tags: Vec<&'a TagRow>, rules: Rules) -> RepoPlan<'a> {
    let dropped: HashSet<&str> = dropped_tags.iter().map(|t| t.name.as_str()).collect();
    let mut tagged_before = HashSet::new();
    let mut tagged_after = HashSet::new();
    for t in &g.tags {
        tagged_before.insert(t.digest.as_str());
        if !dropped.contains(t.name.as_str()) {
            tagged_after.insert(t.digest.as_str());
        }
    }
    let present: HashSet<&str> = g.manifests.iter().map(|m| m.digest.as_str()).collect();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (parent, child) in &g.refs {
        children.entry(parent.as_str()).or_default().push(child.as_str());
    }
    let mut referrers: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &g.manifests {
        if let Some(s) = &m.subject {
            referrers.entry(s.as_str()).or_default().push(m.digest.as_str());
        }
    }
    // Only a top-level untagged manifest can be kept for being untagged. An index's child
    // lives and dies with its index, and an untagged referrer (a signature, an SBOM) whose
    // subject is here with its subject — or it would keep that subject forever.
    let has_parent: HashSet<&str> =
        g.refs.iter().filter(|(p, _)| present.contains(p.as_str())).map(|(_, c)| c.as_str()).collect();
    let untagged_root = |m: &ManifestNode| {
        !tagged_before.contains(m.digest.as_str())
            && !has_parent.contains(m.digest.as_str())
            && !m.subject.as_deref().is_some_and(|s| present.contains(s))
            && rules.untagged_cutoff.is_none_or(|c| m.pushed_at >= c)
    };
    let root = |m: &ManifestNode| {
        tagged_after.contains(m.digest.as_str()) || m.pushed_at >= rules.grace_cutoff || untagged_root(m)
    };
    let mut live: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = g.manifests.iter().filter(|m| root(m)).map(|m| m.digest.as_str()).collect();
    let subject_of: HashMap<&str, &str> =
        g.manifests.iter().filter_map(|m| m.subject.as_deref().map(|s| (m.digest.as_str(), s))).collect();
    while let Some(d) = todo.pop() {
        if !present.contains(d) || !live.insert(d) {
            continue;
        }
        todo.extend(children.get(d).into_iter().flatten());
        todo.extend(referrers.get(d).into_iter().flatten());
        todo.extend(subject_of.get(d));
    }
    let manifests: Vec<&ManifestNode> = g.manifests.iter().filter(|m| !live.contains(m.digest.as_str())).collect();
    let referenced: HashSet<&str> =
        g.refs.iter().filter(|(parent, _)| live.contains(parent.as_str())).map(|(_, c)| c.as_str()).collect();
    let links = g
        .links
        .iter()
        .filter(|l| !referenced.contains(l.digest.as_str()) && l.linked_at < rules.grace_cutoff)
        .collect();
    RepoPlan { tags: dropped_tags, manifests, links }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: i64 = 100;
    const NOW: i64 = 10_000;

    fn m(digest: &str, pushed_at: i64, subject: Option<&str>) -> ManifestNode {
        ManifestNode { digest: digest.into(), pushed_at, subject: subject.map(Into::into), size: 10 }
    }

    fn tag(name: &str, digest: &str) -> TagRow {
        TagRow { name: name.into(), digest: digest.into(), updated_at: OLD }
    }

    fn link(digest: &str, linked_at: i64) -> LinkRow {
        LinkRow { digest: digest.into(), size: 1, linked_at }
    }

    /// idx -> (amd, arm); amd -> (cfg1, layer-shared); arm -> (cfg2, layer-shared);
    /// sig has subject idx; old -> (cfg-old, layer-old); `stray` is linked by nothing.
    fn graph() -> RepoGraph {
        let refs = [
            ("idx", "amd"),
            ("idx", "arm"),
            ("amd", "cfg1"),
            ("amd", "layer-shared"),
            ("arm", "cfg2"),
            ("arm", "layer-shared"),
            ("old", "cfg-old"),
            ("old", "layer-old"),
        ];
        RepoGraph {
            manifests: vec![
                m("idx", OLD, None),
                m("amd", OLD, None),
                m("arm", OLD, None),
                m("sig", OLD, Some("idx")),
                m("old", OLD, None),
            ],
            tags: vec![tag("latest", "idx"), tag("v0", "old")],
            refs: refs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            links: ["cfg1", "cfg2", "layer-shared", "cfg-old", "layer-old", "stray"]
                .iter()
                .map(|d| link(d, OLD))
                .collect(),
        }
    }

    fn names<T>(items: &[&T], f: impl Fn(&T) -> &str) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(|i| f(i).to_owned()).collect();
        v.sort();
        v
    }

    fn run(g: &RepoGraph, drop: &[&str], untagged_cutoff: Option<i64>) -> (Vec<String>, Vec<String>) {
        let dropped = g.tags.iter().filter(|t| drop.contains(&t.name.as_str())).collect();
        let p = plan(g, dropped, Rules { grace_cutoff: NOW - 60, untagged_cutoff });
        (names(&p.manifests, |m| &m.digest), names(&p.links, |l| &l.digest))
    }

    #[test]
    fn tagged_images_keep_children_referrers_and_layers() {
        // Untagged manifests kept: only the stray link goes.
        assert_eq!(run(&graph(), &[], None), (vec![], vec!["stray".into()]));
        // Untagged ones expire, but everything here is tagged or reachable.
        assert_eq!(run(&graph(), &[], Some(NOW)), (vec![], vec!["stray".into()]));
    }

    #[test]
    fn a_dropped_tag_frees_its_image_but_not_shared_layers() {
        let (manifests, links) = run(&graph(), &["v0"], None);
        assert_eq!(manifests, ["old"]);
        assert_eq!(links, ["cfg-old", "layer-old", "stray"]);
        // Dropping the index's tag takes the index, its children and its untagged referrer,
        // even while untagged manifests are otherwise kept.
        let (manifests, links) = run(&graph(), &["latest", "v0"], None);
        assert_eq!(manifests, ["amd", "arm", "idx", "old", "sig"]);
        assert_eq!(links.len(), 6);
    }

    #[test]
    fn untagged_manifests_go_after_their_duration() {
        let mut g = graph();
        g.tags.retain(|t| t.name != "v0");
        // Untagged since long, kept by "keep".
        assert_eq!(run(&g, &[], None).0, Vec::<String>::new());
        // Pushed before the cutoff: goes with its blobs.
        assert_eq!(
            run(&g, &[], Some(OLD + 1)),
            (vec!["old".into()], vec!["cfg-old".into(), "layer-old".into(), "stray".into()])
        );
        // Pushed after it: stays.
        assert_eq!(run(&g, &[], Some(OLD)).0, Vec::<String>::new());
    }

    #[test]
    fn young_things_stay_whatever_the_rules() {
        let mut g = graph();
        g.tags.clear();
        g.manifests.push(m("fresh", NOW, None));
        g.refs.push(("fresh".into(), "layer-new".into()));
        g.links.push(link("layer-new", NOW));
        g.links.push(link("upload-in-progress", NOW));
        let (manifests, links) = run(&g, &[], Some(NOW));
        assert!(!manifests.contains(&"fresh".to_string()), "{manifests:?}");
        assert!(!links.iter().any(|l| l == "layer-new" || l == "upload-in-progress"), "{links:?}");
        assert_eq!(manifests, ["amd", "arm", "idx", "old", "sig"]);
    }

    #[test]
    fn a_kept_referrer_keeps_its_subject() {
        let mut g = graph();
        g.tags = vec![tag("sig-tag", "sig")];
        let (manifests, _) = run(&g, &[], Some(NOW));
        assert_eq!(manifests, ["old"], "the tagged signature keeps the index and its children");
    }
}
