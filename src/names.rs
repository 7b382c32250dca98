//! Validated identifiers: repository names, collection names, tags, references and
//! upload ids. Each is checked once where it enters and carried as a newtype after.

use std::{fmt, str::FromStr};

use crate::digest::{Digest, DigestError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid repository name")]
    Repo,
    #[error("invalid tag")]
    Tag,
    #[error("invalid digest")]
    Digest(#[from] DigestError),
    #[error("invalid upload id")]
    Upload,
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        let c = b[i];
        while i < b.len() && b[i] == c {
            i += 1;
        }
        let run = i - start;
        let ok = match c {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        // Two different separators in a row (`_-`, `.-`) are not allowed either.
        if !ok || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Declares a validated string newtype with `as_str` and `Display`.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A repository name per the OCI grammar, at most 255 characters.
    RepoName
);
string_newtype!(
    /// A collection name: one repository-name component.
    CollectionName
);
string_newtype!(
    /// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    Tag
);
string_newtype!(
    /// An upload session id (a UUID in its hyphenated lower-case form).
    UploadId
);

impl RepoName {
    /// The collection: the first path component.
    pub fn collection(&self) -> CollectionName {
        CollectionName(self.0.split('/').next().unwrap_or_default().to_owned())
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > 255 || !s.split('/').all(is_component) {
            return Err(NameError::Repo);
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl FromStr for CollectionName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.len() > 255 || !is_component(s) {
            return Err(NameError::Repo);
        }
        Ok(CollectionName(s.to_owned()))
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let first_ok = b.first().is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let rest_ok = b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
        if !first_ok || !rest_ok || b.len() > 128 {
            return Err(NameError::Tag);
        }
        Ok(Tag(s.to_owned()))
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.contains(':') { Ok(Reference::Digest(s.parse()?)) } else { Ok(Reference::Tag(s.parse()?)) }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

impl UploadId {
    pub fn new_random() -> UploadId {
        UploadId(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

impl FromStr for UploadId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let u = uuid::Uuid::try_parse(s).map_err(|_| NameError::Upload)?;
        let canonical = u.hyphenated().to_string();
        if canonical != s {
            return Err(NameError::Upload);
        }
        Ok(UploadId(canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        for ok in ["a", "alpine", "lab/tools/fmt", "a.b_c__d---e/f0", "127.0.0.1/x", "my-repo/blobs/manifests"] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
        for bad in ["", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a_", "a:b", "a b", &"a".repeat(256)] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
        assert_eq!("lab/tools/fmt".parse::<RepoName>().unwrap().collection().as_str(), "lab");
        assert_eq!("alpine".parse::<RepoName>().unwrap().collection().as_str(), "alpine");
    }

    #[test]
    fn tags() {
        for ok in ["latest", "_x", "v1.2.3-rc_1", &"a".repeat(128)] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!("latest".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!("sha256:abc".parse::<Reference>(), Err(NameError::Digest(_))));
        assert!(matches!("bad tag".parse::<Reference>(), Err(NameError::Tag)));
    }

    #[test]
    fn upload_ids() {
        let id = UploadId::new_random();
        assert_eq!(id.as_str().parse::<UploadId>().unwrap(), id);
        assert!("../../etc".parse::<UploadId>().is_err());
        assert!(id.as_str().to_uppercase().parse::<UploadId>().is_err());
    }
}
