//! The set of configuration keys, derived from [`Config`]'s serialized defaults so it
//! cannot drift from the struct: unknown keys in a file or in `BERTH_*` variables are
//! refused with the nearest known key, and `config check` lists every key.

use std::{collections::BTreeSet, path::Path};

use figment::{
    Provider,
    value::{Dict, Value},
};

use super::{Config, ConfigError};

/// Where a provider's keys come from, for the error message.
pub enum Origin<'a> {
    File(&'a Path),
    Env,
}

/// Dotted paths of the leaves (`auth.private_registry`) and tables (`storage.s3`).
struct Known {
    leaves: BTreeSet<String>,
    tables: BTreeSet<String>,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// `(dotted key, value)` for every leaf of a serialized config, in key order.
fn flatten(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(v, &join(prefix, k), out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn known() -> Known {
    let mut leaves = BTreeSet::new();
    let mut tables = BTreeSet::new();
    let mut all = Vec::new();
    flatten(&serde_json::to_value(Config::default()).unwrap_or_default(), "", &mut all);
    for (key, _) in all {
        let mut parts: Vec<&str> = key.split('.').collect();
        parts.pop();
        for n in 1..=parts.len() {
            tables.insert(parts[..n].join("."));
        }
        leaves.insert(key);
    }
    Known { leaves, tables }
}

fn unknown_in(dict: &Dict, prefix: &str, known: &Known, out: &mut Vec<String>) {
    for (k, v) in dict {
        let path = join(prefix, k);
        if known.tables.contains(&path) {
            // A scalar where a table belongs is a type error, reported by the extraction.
            if let Value::Dict(_, inner) = v {
                unknown_in(inner, &path, known, out);
            }
        } else if known.leaves.contains(&path) {
            continue;
        } else if let Value::Dict(_, inner) = v
            && !inner.is_empty()
        {
            // An unknown table: name the keys inside it, each with its nearest known key.
            unknown_in(inner, &path, known, out);
        } else {
            out.push(path);
        }
    }
}

/// The known key closest in spelling to `key`.
fn nearest<'a>(key: &str, known: &'a Known) -> Option<&'a str> {
    known.leaves.iter().min_by_key(|k| strsim::damerau_levenshtein(key, k)).map(String::as_str)
}

/// `auth.private_registry` as an environment variable.
pub fn env_name(key: &str) -> String {
    format!("BERTH_{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// Refuses any key of `provider` that `Config` does not have.
pub fn check_unknown(provider: &impl Provider, origin: Origin<'_>) -> Result<(), ConfigError> {
    let data = provider.data().map_err(Box::new)?;
    let known = known();
    let mut unknown = Vec::new();
    for dict in data.values() {
        unknown_in(dict, "", &known, &mut unknown);
    }
    if unknown.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = unknown
        .iter()
        .map(|key| {
            let near = nearest(key, &known).unwrap_or("listen");
            match &origin {
                Origin::File(file) => {
                    format!("unknown key {key} in {}; did you mean {near}?", file.display())
                }
                Origin::Env => {
                    format!("unknown setting {}; did you mean {} ({near})?", env_name(key), env_name(near))
                }
            }
        })
        .collect();
    Err(ConfigError::Invalid(problems.join("; ")))
}

/// Keys whose values are secret: shown as `<redacted>` when set.
const SECRETS: &[&str] =
    &["initial_admin_password", "metrics.token", "storage.s3.secret_access_key", "auth.ldap.bind_password"];

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Every key with its value, one `key = value` line each in key order, secrets redacted;
/// unset optional keys appear as comments.
pub fn listing(config: &Config) -> String {
    let mut all = Vec::new();
    flatten(&serde_json::to_value(config).unwrap_or_default(), "", &mut all);
    let mut out = String::new();
    for (key, value) in all {
        let shown = match value {
            serde_json::Value::Null => {
                out.push_str(&format!("# {key} = (unset)\n"));
                continue;
            }
            serde_json::Value::String(s) if SECRETS.contains(&key.as_str()) && !s.is_empty() => {
                "\"<redacted>\"".to_owned()
            }
            serde_json::Value::String(s) if key == "database.url" => {
                serde_json::Value::String(redact_url(&s)).to_string()
            }
            serde_json::Value::Array(mut providers) if key == "auth.oidc" => {
                for p in &mut providers {
                    if let Some(secret) =
                        p.get_mut("client_secret").filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
                    {
                        *secret = "<redacted>".into();
                    }
                }
                serde_json::Value::Array(providers).to_string()
            }
            other => other.to_string(),
        };
        out.push_str(&format!("{key} = {shown}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_cover_the_struct() {
        let k = known();
        for key in ["listen", "auth.private_registry", "storage.s3.region", "limits.body_idle_secs", "gc.interval_secs"]
        {
            assert!(k.leaves.contains(key), "{key}");
        }
        assert!(k.tables.contains("storage.s3") && k.tables.contains("auth"));
        assert!(!k.leaves.contains("storage.s3"));
    }

    #[test]
    fn nearest_key() {
        let k = known();
        assert_eq!(nearest("auth.private_registy", &k), Some("auth.private_registry"));
        assert_eq!(nearest("lisen", &k), Some("listen"));
        assert_eq!(nearest("storage.s3.regoin", &k), Some("storage.s3.region"));
    }

    #[test]
    fn reference_documents_every_key() {
        let doc = include_str!("../../docs/configuration.md");
        for key in known().leaves {
            assert!(doc.contains(&format!("| `{key}` |")), "docs/configuration.md lacks a row for {key}");
        }
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("storage.s3.access_key_id"), "BERTH_STORAGE__S3__ACCESS_KEY_ID");
    }
}
