//! Parsing a request (method, path, the query parameters that change what it needs) into an
//! [`Endpoint`], once and purely, and the access each endpoint needs (DESIGN §4).
//!
//! Every decision about the shape of a path is made here, and nothing is normalised: the
//! path is taken byte for byte as it arrived (never percent-decoded), so `/v2//a/b`,
//! `/v2/a/./b`, `/v2/a%2Fb`, `/v2/A/b` and trailing slashes can never alias a valid name.
//! Routes are matched from the end of the path because a repository name may itself
//! contain `blobs` or `manifests`; whatever is left must then pass the name grammar
//! (else 400 `NAME_INVALID`), and a path that matches no route is 404 `NAME_UNKNOWN`.

use axum::http::Method;

use super::{Query, error::OciError};
use crate::{
    auth::rules::Actions,
    digest::Digest,
    names::{NameError, Reference, RepoName, UploadId},
};

/// One request the Distribution API serves: the route and the method together.
#[derive(Debug, PartialEq)]
pub enum Endpoint {
    /// `GET`/`HEAD /v2/`.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/<name>/tags/list`.
    Tags(RepoName),
    /// `GET /v2/<name>/referrers/<digest>`.
    Referrers(RepoName, Digest),
    /// `GET`/`HEAD /v2/<name>/manifests/<reference>`; `None` for a tag that cannot exist.
    GetManifest(RepoName, Option<Reference>),
    PutManifest(RepoName, Reference),
    DeleteManifest(RepoName, Reference),
    /// `GET`/`HEAD /v2/<name>/blobs/<digest>`.
    GetBlob(RepoName, Digest),
    DeleteBlob(RepoName, Digest),
    /// `POST /v2/<name>/blobs/uploads/`, with what the query asks to mount.
    StartUpload(RepoName, Mount),
    /// `GET /v2/<name>/blobs/uploads/<id>`.
    UploadStatus(RepoName, UploadId),
    /// `PATCH`.
    UploadChunk(RepoName, UploadId),
    /// `PUT ?digest=`.
    UploadFinish(RepoName, UploadId),
    /// `DELETE`.
    UploadCancel(RepoName, UploadId),
}

/// What an upload POST asks to mount.
#[derive(Debug, PartialEq)]
pub enum Mount {
    /// No `mount`.
    No,
    /// A `from` that is not a repository name: never mounts, an ordinary session instead.
    Invalid,
    /// `mount=<digest>&from=<name>`.
    From(Digest, RepoName),
    /// `mount=<digest>` without `from`: any repository the caller may pull.
    Anywhere(Digest),
}

/// Something a token grants access to.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Repository(RepoName),
    /// `registry:catalog:*`.
    Catalog,
}

impl Resource {
    /// The challenge scope asking for `actions` here.
    pub fn scope(&self, actions: Actions) -> String {
        match self {
            Resource::Repository(r) => format!("repository:{r}:{actions}"),
            Resource::Catalog => "registry:catalog:*".to_owned(),
        }
    }
}

/// How a need is met.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// The token must grant `actions` (or the alternative).
    Grant,
    /// The token must carry an entry for the resource; whether it grants `actions` only
    /// decides what the request does (a mount's source: without pull, no mount).
    Entry,
}

/// One resource a request needs, and the actions it asks for in the challenge.
#[derive(Clone, Debug, PartialEq)]
pub struct Need {
    pub resource: Resource,
    pub actions: Actions,
    /// Also sufficient instead of `actions` (an upload cancel: `delete` or `push`).
    pub or: Option<Actions>,
    pub rule: Rule,
}

impl Need {
    fn grant(resource: Resource, actions: Actions) -> Need {
        Need { resource, actions, or: None, rule: Rule::Grant }
    }
    fn pull(repo: &RepoName) -> Need {
        Need::grant(Resource::Repository(repo.clone()), Actions::PULL)
    }
    fn push(repo: &RepoName) -> Need {
        Need::grant(Resource::Repository(repo.clone()), Actions::PULL.union(Actions::PUSH))
    }
    fn delete(repo: &RepoName) -> Need {
        Need::grant(Resource::Repository(repo.clone()), Actions::DELETE)
    }
}

impl Endpoint {
    /// Parses a request. `path` is the URI path as received, starting with `/v2`.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Result<Endpoint, OciError> {
        let route = route(path)?;
        let m = method;
        let read = m == Method::GET || m == Method::HEAD;
        Ok(match route {
            Route::Base if read => Endpoint::Base,
            Route::Catalog if m == Method::GET => Endpoint::Catalog,
            Route::Tags(repo) if m == Method::GET => Endpoint::Tags(repo),
            Route::Referrers(repo, d) if m == Method::GET => Endpoint::Referrers(repo, d),
            Route::Manifest(repo, r) if read => Endpoint::GetManifest(repo, reference(r, true)?),
            Route::Manifest(repo, r) if m == Method::PUT => {
                Endpoint::PutManifest(repo, required(reference(r, false)?)?)
            }
            Route::Manifest(repo, r) if m == Method::DELETE => {
                Endpoint::DeleteManifest(repo, required(reference(r, false)?)?)
            }
            Route::Blob(repo, d) if read => Endpoint::GetBlob(repo, d),
            Route::Blob(repo, d) if m == Method::DELETE => Endpoint::DeleteBlob(repo, d),
            Route::UploadStart(repo) if m == Method::POST => Endpoint::StartUpload(repo, mount(query)?),
            Route::Upload(repo, id) if m == Method::GET => Endpoint::UploadStatus(repo, id),
            Route::Upload(repo, id) if m == Method::PATCH => Endpoint::UploadChunk(repo, id),
            Route::Upload(repo, id) if m == Method::PUT => Endpoint::UploadFinish(repo, id),
            Route::Upload(repo, id) if m == Method::DELETE => Endpoint::UploadCancel(repo, id),
            _ => return Err(OciError::unsupported("method not allowed on this endpoint")),
        })
    }

    /// The access the endpoint needs (DESIGN §4): exactly its challenge scopes. GET/HEAD
    /// need `pull`, POST/PATCH/PUT `pull,push`, DELETE `delete`, except an upload's cancel,
    /// which `push` also allows (the session is bound to its `sub` either way); a mount
    /// also asks for `pull` on its source. The base endpoint needs only a valid token.
    pub fn needs(&self) -> Vec<Need> {
        use Endpoint as E;
        match self {
            E::Base => vec![],
            E::Catalog => vec![Need { rule: Rule::Entry, ..Need::grant(Resource::Catalog, Actions::ALL) }],
            E::Tags(r) | E::Referrers(r, _) | E::GetManifest(r, _) | E::GetBlob(r, _) | E::UploadStatus(r, _) => {
                vec![Need::pull(r)]
            }
            E::PutManifest(r, _) | E::UploadChunk(r, _) | E::UploadFinish(r, _) => vec![Need::push(r)],
            E::StartUpload(r, Mount::From(_, from)) => {
                vec![Need::push(r), Need { rule: Rule::Entry, ..Need::pull(from) }]
            }
            E::StartUpload(r, _) => vec![Need::push(r)],
            E::DeleteManifest(r, _) | E::DeleteBlob(r, _) => vec![Need::delete(r)],
            E::UploadCancel(r, _) => vec![Need { or: Some(Actions::PUSH), ..Need::delete(r) }],
        }
    }
}

/// The path's shape, before the method is known.
enum Route<'a> {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, &'a str),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, UploadId),
    Referrers(RepoName, Digest),
}

fn name(s: &str) -> Result<RepoName, OciError> {
    s.parse().map_err(|_| OciError::name_invalid())
}

fn digest(s: &str) -> Result<Digest, OciError> {
    s.parse().map_err(|_| OciError::digest_invalid("invalid digest"))
}

/// A manifest reference. A malformed digest is `DIGEST_INVALID`; a malformed tag is
/// `TAG_INVALID`, except on a read (`unknown_ok`), where a tag that cannot exist is simply
/// not there (`None`, answered 404 `MANIFEST_UNKNOWN` once access is checked).
fn reference(s: &str, unknown_ok: bool) -> Result<Option<Reference>, OciError> {
    match s.parse() {
        Ok(r) => Ok(Some(r)),
        Err(NameError::Digest(_)) => Err(OciError::digest_invalid("invalid digest")),
        Err(_) if unknown_ok => Ok(None),
        Err(_) => Err(OciError::tag_invalid()),
    }
}

fn required(r: Option<Reference>) -> Result<Reference, OciError> {
    r.ok_or_else(OciError::tag_invalid)
}

/// `mount`/`from` of an upload POST. A malformed `mount` digest is `DIGEST_INVALID`; a
/// `from` that is not a repository name never mounts (DESIGN §5: an ordinary session).
fn mount(query: &Query) -> Result<Mount, OciError> {
    let Some(m) = query.get("mount") else {
        return Ok(Mount::No);
    };
    let digest = m.parse().map_err(|_| OciError::digest_invalid("invalid mount digest"))?;
    Ok(match query.get("from") {
        None => Mount::Anywhere(digest),
        Some(from) => match from.parse() {
            Ok(from) => Mount::From(digest, from),
            Err(_) => Mount::Invalid,
        },
    })
}

/// The route of a path as received (`/v2` or `/v2/…`).
fn route(path: &str) -> Result<Route<'_>, OciError> {
    let path = match path.strip_prefix("/v2") {
        Some("" | "/") => return Ok(Route::Base),
        // Exactly one slash is taken: `/v2//a` leaves `/a`, which is no name.
        Some(rest) => rest.strip_prefix('/').ok_or_else(OciError::not_found)?,
        None => return Err(OciError::not_found()),
    };
    if path == "_catalog" {
        return Ok(Route::Catalog);
    }
    if let Some(repo) = path.strip_suffix("/tags/list") {
        return Ok(Route::Tags(name(repo)?));
    }
    // The spec's POST URL ends in a slash; without it is accepted too (as Distribution).
    if let Some(repo) = path.strip_suffix("/blobs/uploads/").or_else(|| path.strip_suffix("/blobs/uploads")) {
        return Ok(Route::UploadStart(name(repo)?));
    }
    let (head, last) = path.rsplit_once('/').ok_or_else(OciError::not_found)?;
    if let Some(repo) = head.strip_suffix("/blobs/uploads") {
        let repo = name(repo)?;
        let id = last.parse().map_err(|_: NameError| OciError::upload_unknown())?;
        return Ok(Route::Upload(repo, id));
    }
    if let Some(repo) = head.strip_suffix("/blobs") {
        return Ok(Route::Blob(name(repo)?, digest(last)?));
    }
    if let Some(repo) = head.strip_suffix("/manifests") {
        return Ok(Route::Manifest(name(repo)?, last));
    }
    if let Some(repo) = head.strip_suffix("/referrers") {
        return Ok(Route::Referrers(name(repo)?, digest(last)?));
    }
    Err(OciError::not_found())
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
