//! Parsing a `/v2/…` path into an [`Endpoint`], once and purely. Routes are matched from
//! the end of the path because a repository name may itself contain `blobs` or `manifests`.

use axum::http::Method;

use super::error::OciError;
use crate::{
    auth::rules::Actions,
    digest::Digest,
    names::{NameError, Reference, RepoName, UploadId},
};

#[derive(Debug, PartialEq)]
pub enum Endpoint {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, UploadId),
    Referrers(RepoName, Digest),
}

impl Endpoint {
    /// The repository the endpoint acts on, if any.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Endpoint::Base | Endpoint::Catalog => None,
            Endpoint::Tags(r)
            | Endpoint::Manifest(r, _)
            | Endpoint::Blob(r, _)
            | Endpoint::UploadStart(r)
            | Endpoint::Upload(r, _)
            | Endpoint::Referrers(r, _) => Some(r),
        }
    }
}

/// The actions a method needs on a repository (DESIGN §4 challenge scopes).
pub fn actions_for(method: &Method) -> Actions {
    match *method {
        Method::GET | Method::HEAD => Actions::PULL,
        Method::DELETE => Actions::DELETE,
        _ => Actions::PULL.union(Actions::PUSH),
    }
}

fn name(s: &str) -> Result<RepoName, OciError> {
    s.parse().map_err(|_| OciError::name_invalid())
}

fn digest(s: &str) -> Result<Digest, OciError> {
    s.parse().map_err(|_| OciError::digest_invalid("invalid digest"))
}

/// Parses the part of the path after `/v2/`.
pub fn parse(path: &str) -> Result<Endpoint, OciError> {
    if path.is_empty() {
        return Ok(Endpoint::Base);
    }
    if path == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    if let Some(repo) = path.strip_suffix("/tags/list") {
        return Ok(Endpoint::Tags(name(repo)?));
    }
    if let Some(repo) = path.strip_suffix("/blobs/uploads/").or_else(|| path.strip_suffix("/blobs/uploads")) {
        return Ok(Endpoint::UploadStart(name(repo)?));
    }
    let (head, last) = path.rsplit_once('/').ok_or_else(OciError::not_found)?;
    if let Some(repo) = head.strip_suffix("/blobs/uploads") {
        let repo = name(repo)?;
        let id = last.parse().map_err(|_: NameError| OciError::upload_unknown())?;
        return Ok(Endpoint::Upload(repo, id));
    }
    if let Some(repo) = head.strip_suffix("/blobs") {
        return Ok(Endpoint::Blob(name(repo)?, digest(last)?));
    }
    if let Some(repo) = head.strip_suffix("/manifests") {
        let repo = name(repo)?;
        let reference = last.parse().map_err(|e| match e {
            NameError::Digest(_) => OciError::digest_invalid("invalid digest"),
            _ => OciError::tag_invalid(),
        })?;
        return Ok(Endpoint::Manifest(repo, reference));
    }
    if let Some(repo) = head.strip_suffix("/referrers") {
        return Ok(Endpoint::Referrers(name(repo)?, digest(last)?));
    }
    Err(OciError::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const U: &str = "6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11";

    fn code(path: &str) -> &'static str {
        parse(path).unwrap_err().code()
    }

    #[test]
    fn spec_endpoints() {
        assert_eq!(parse("").unwrap(), Endpoint::Base);
        assert_eq!(parse("_catalog").unwrap(), Endpoint::Catalog);
        assert!(matches!(parse("a/b/tags/list").unwrap(), Endpoint::Tags(r) if r.as_str() == "a/b"));
        assert!(
            matches!(parse("a/manifests/latest").unwrap(), Endpoint::Manifest(r, Reference::Tag(_)) if r.as_str() == "a")
        );
        assert!(matches!(parse(&format!("a/manifests/{D}")).unwrap(), Endpoint::Manifest(_, Reference::Digest(_))));
        assert!(matches!(parse(&format!("a/blobs/{D}")).unwrap(), Endpoint::Blob(..)));
        assert!(matches!(parse("a/blobs/uploads/").unwrap(), Endpoint::UploadStart(_)));
        assert!(matches!(parse("a/blobs/uploads").unwrap(), Endpoint::UploadStart(_)));
        assert!(matches!(parse(&format!("a/blobs/uploads/{U}")).unwrap(), Endpoint::Upload(..)));
        assert!(matches!(parse(&format!("a/referrers/{D}")).unwrap(), Endpoint::Referrers(..)));
    }

    #[test]
    fn names_containing_route_words() {
        assert!(
            matches!(parse("x/blobs/manifests/tags/list").unwrap(), Endpoint::Tags(r) if r.as_str() == "x/blobs/manifests")
        );
        assert!(
            matches!(parse(&format!("manifests/blobs/blobs/{D}")).unwrap(), Endpoint::Blob(r, _) if r.as_str() == "manifests/blobs")
        );
        assert!(
            matches!(parse("blobs/uploads/manifests/v1").unwrap(), Endpoint::Manifest(r, _) if r.as_str() == "blobs/uploads")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(code("UPPER/tags/list"), "NAME_INVALID");
        assert_eq!(code("a/blobs/sha256:zz"), "DIGEST_INVALID");
        assert_eq!(code("a/manifests/sha256:zz"), "DIGEST_INVALID");
        assert_eq!(code("a/manifests/-bad"), "TAG_INVALID");
        assert_eq!(code("a/blobs/uploads/not-a-uuid"), "BLOB_UPLOAD_UNKNOWN");
        assert_eq!(code("a/whatever"), "UNSUPPORTED");
        assert_eq!(code("a//manifests/x"), "NAME_INVALID");
    }
}
