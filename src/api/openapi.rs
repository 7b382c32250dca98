//! The OpenAPI 3.1 document of `/api/v1`, served at `GET /api/v1/openapi.json` without
//! credentials (it describes the API and reveals no data). It is derived by `utoipa` from the
//! `#[utoipa::path]` attribute on each handler and the `ToSchema` derives of the request and
//! response types, so a handler and its description sit side by side; the types here exist
//! only to name JSON shapes that handlers build with `json!`.

use std::sync::LazyLock;

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        self, RefOr,
        response::ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::{collections, people};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(serve))
}

/// The document, serialized once: it is the same for every request.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));

async fn serve() -> Response {
    let mut r = (StatusCode::OK, DOCUMENT.as_str()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The document: every handler of `/api/v1` is listed here (the test in `tests/it/openapi.rs`
/// compares the paths and methods with the router and DESIGN §8).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "berth management API",
        description = "Users, API tokens, teams, collections and repositories of a berth registry \
            (DESIGN §8). Lists are JSON arrays sorted by name, paged with `n` (default 100, at most \
            1000) and `last`; a `Link: <…>; rel=\"next\"` header names the next page. Bearer takes \
            API tokens only; a read-only token may only GET. Anything the caller may not see is \
            404, as if it did not exist."
    ),
    paths(
        people::me,
        people::create_user, people::list_users, people::update_user, people::delete_user,
        people::create_token, people::list_tokens, people::delete_token,
        people::create_team, people::list_teams, people::show_team, people::transfer_team,
        people::delete_team, people::add_member, people::remove_member,
        collections::create, collections::list, collections::show, collections::change,
        collections::delete, collections::show_policy, collections::put_policy,
        collections::put_user, collections::put_team, collections::remove_user, collections::remove_team,
        collections::show_repo, collections::delete_repo,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Common),
    security(("basic" = []), ("bearer" = [])),
    tags(
        (name = "users", description = "Accounts and the caller's own identity"),
        (name = "tokens", description = "The caller's API tokens"),
        (name = "teams", description = "Teams and their members"),
        (name = "collections", description = "Collections, their members and policies"),
        (name = "repositories", description = "Repositories and their tags"),
    )
)]
pub struct ApiDoc;

/// Every error: `error` is a stable code (`bad_request`, `unauthorized`, `forbidden`,
/// `not_found`, `conflict`, `too_many_requests`, `unavailable`, `internal`), `message` a
/// human-readable sentence.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "not_found")]
    pub error: String,
    #[schema(example = "collection team-a not found")]
    pub message: String,
}

/// The caller, as `GET /api/v1/me` answers.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub username: String,
    /// `superuser`, `admin` or `user`.
    pub role: String,
    /// Whether the request came with a read-only API token.
    pub read_only: bool,
}

/// A team membership, as `PUT /api/v1/teams/{team}/members/{username}` answers.
#[derive(Serialize, ToSchema)]
pub struct TeamMembership {
    pub team: String,
    pub user: String,
}

/// A collection member: a user or a team.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum MemberRef {
    User { user: String },
    Team { team: String },
}

/// A collection membership, as a PUT of a member answers: `user` or `team` names the member.
#[derive(Serialize, ToSchema)]
pub struct CollectionMembership {
    pub collection: String,
    pub user: Option<String>,
    pub team: Option<String>,
    /// `owner` or `contributor`.
    pub role: String,
}

/// Adds the security schemes, and the responses every handler can give because each one
/// authenticates through `Ctx` first: 401, 429 (failed logins throttled, with `Retry-After`)
/// and 503 (the directory of the caller's account does not answer).
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("`user:password` or `user:api-token`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token (`POST /api/v1/tokens` or `berth token create`)"))
                    .build(),
            ),
        );
        let common = [
            ("401", "missing or invalid credentials"),
            ("429", "too many failed logins from this address or for this user; see `Retry-After`"),
            ("503", "the directory holding the caller's account does not answer"),
        ];
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                for (status, description) in common {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/json", error_content())
                                .build(),
                        )
                    });
                }
            }
        }
    }
}

fn error_content() -> openapi::Content {
    openapi::ContentBuilder::new().schema(Some(openapi::Ref::from_schema_name("ErrorBody"))).build()
}
