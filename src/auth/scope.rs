//! Parsing of token-request scopes: `repository:<name>:<actions>` and `registry:catalog:*`.
//! A name may hold `host:port`, so a scope splits on its first and last colon only.

use super::rules::Actions;
use crate::names::RepoName;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A repository scope; `name` is `None` when it fails the name grammar (gets `[]`).
    Repository {
        raw_name: String,
        name: Option<RepoName>,
        actions: Actions,
    },
    Catalog,
}

/// Parses every scope in the given `scope` values (each may hold several, space-separated).
/// Unknown resource types are dropped.
pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Scope> {
    values.into_iter().flat_map(|v| v.split_whitespace()).filter_map(parse_one).collect()
}

fn parse_one(s: &str) -> Option<Scope> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    match kind {
        "repository" | "repository(plugin)" => Some(Scope::Repository {
            raw_name: name.to_owned(),
            name: name.parse().ok(),
            actions: Actions::parse_list(actions),
        }),
        "registry" if name == "catalog" => Some(Scope::Catalog),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let s = parse_all(["repository:lab/tools:pull,push registry:catalog:*", "repository(plugin):x:pull"]);
        assert_eq!(s.len(), 3);
        assert!(
            matches!(&s[0], Scope::Repository { name: Some(n), actions, .. } if n.as_str() == "lab/tools" && *actions == Actions::parse_list("pull,push"))
        );
        assert_eq!(s[1], Scope::Catalog);
        assert!(matches!(&s[2], Scope::Repository { name: Some(n), .. } if n.as_str() == "x"));
    }

    #[test]
    fn host_port_and_invalid_names() {
        let s = parse_all(["repository:localhost:5000/foo:pull"]);
        assert!(matches!(&s[0], Scope::Repository { raw_name, name: None, .. } if raw_name == "localhost:5000/foo"));
        let s = parse_all(["repository:UPPER:pull"]);
        assert!(matches!(&s[0], Scope::Repository { name: None, .. }));
    }

    #[test]
    fn drops_unknown() {
        assert!(parse_all(["foo:bar:baz", "nocolons", "registry:other:*", ""]).is_empty());
    }
}
