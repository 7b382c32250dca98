//! `/api/v1/collections`, their members, and `/api/v1/repositories`.

use axum::{
    Router,
    body::Bytes,
    extract::Path,
    http::{StatusCode, Uri},
    routing::{get, put},
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    ApiResult, Ctx, body, json, no_content,
    openapi::{CollectionMembership, ErrorBody},
    page_params, paged,
};
use crate::{
    manage::{CollectionOut, CollectionSummary, MemberKind, PolicyIn, PolicyOut, RepositoryOut},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/collections", get(list).post(create))
        .route("/api/v1/collections/{name}", get(show).patch(change).delete(delete))
        .route("/api/v1/collections/{name}/policy", get(show_policy).put(put_policy))
        .route("/api/v1/collections/{name}/members/users/{username}", put(put_user).delete(remove_user))
        .route("/api/v1/collections/{name}/members/teams/{team}", put(put_team).delete(remove_team))
        .route("/api/v1/repositories/{*name}", get(show_repo).delete(delete_repo))
}

#[derive(Deserialize, ToSchema)]
struct NewCollection {
    name: String,
    private: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/api/v1/collections",
    operation_id = "create_collection",
    tag = "collections",
    request_body = NewCollection,
    responses(
        (status = 201, description = "the created collection, owned by the caller", body = CollectionOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 409, description = "the collection already exists", body = ErrorBody),
    ),
)]
async fn create(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewCollection = body(&bytes)?;
    let c = ctx.manager().create_collection(&ctx.actor, &b.name, b.private, None).await?;
    Ok(json(StatusCode::CREATED, &c))
}

#[utoipa::path(
    get,
    path = "/api/v1/collections",
    operation_id = "list_collections",
    tag = "collections",
    params(("n" = Option<u32>, Query, description = "page size (default 100, at most 1000)"), ("last" = Option<String>, Query, description = "the last name of the previous page")),
    responses(
        (status = 200, description = "a page of the collections the caller may see", body = Vec<CollectionSummary>, headers(("Link" = String, description = "the next page, when there is one"))),
        (status = 400, description = "bad input", body = ErrorBody),
    ),
)]
async fn list(ctx: Ctx, uri: Uri) -> ApiResult {
    let (n, last) = page_params(uri.query())?;
    let (items, more) = ctx.manager().list_collections(&ctx.actor, &last, n).await?;
    let last_name = items.last().map(|c| c.name.clone());
    Ok(paged(uri.path(), n, items, more, last_name))
}

#[utoipa::path(
    get,
    path = "/api/v1/collections/{name}",
    operation_id = "show_collection",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name")),
    responses(
        (status = 200, description = "the collection with its members and repositories", body = CollectionOut),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn show(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().show_collection(&ctx.actor, &name).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CollectionChange)]
#[serde(deny_unknown_fields)]
struct Change {
    private: bool,
}

#[utoipa::path(
    patch,
    path = "/api/v1/collections/{name}",
    operation_id = "change_collection",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name")),
    request_body = Change,
    responses(
        (status = 200, description = "the changed collection", body = CollectionOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn change(ctx: Ctx, Path(name): Path<String>, bytes: Bytes) -> ApiResult {
    let b: Change = body(&bytes)?;
    Ok(json(StatusCode::OK, &ctx.manager().set_collection_private(&ctx.actor, &name, b.private).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/collections/{name}",
    operation_id = "delete_collection",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name")),
    responses(
        (status = 204, description = "deleted with its repositories"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn delete(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    ctx.manager().delete_collection(&ctx.actor, &name).await?;
    Ok(no_content())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = MemberRole)]
struct Role {
    /// `owner` or `contributor`.
    role: String,
}

async fn put_member(ctx: Ctx, name: &str, kind: MemberKind, member: &str, bytes: &Bytes) -> ApiResult {
    let b: Role = body(bytes)?;
    let role = crate::manage::parse_member_role(&b.role)?;
    Ok(json(StatusCode::OK, &ctx.manager().put_member(&ctx.actor, name, kind, member, role).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/collections/{name}/members/users/{username}",
    operation_id = "put_collection_user",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name"), ("username" = String, Path, description = "a user name")),
    request_body = Role,
    responses(
        (status = 200, description = "the membership", body = CollectionMembership),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the collection would be left without an owner", body = ErrorBody),
    ),
)]
async fn put_user(ctx: Ctx, Path((name, user)): Path<(String, String)>, bytes: Bytes) -> ApiResult {
    put_member(ctx, &name, MemberKind::User, &user, &bytes).await
}

#[utoipa::path(
    put,
    path = "/api/v1/collections/{name}/members/teams/{team}",
    operation_id = "put_collection_team",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name"), ("team" = String, Path, description = "a team name")),
    request_body = Role,
    responses(
        (status = 200, description = "the membership", body = CollectionMembership),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the collection would be left without an owner", body = ErrorBody),
    ),
)]
async fn put_team(ctx: Ctx, Path((name, team)): Path<(String, String)>, bytes: Bytes) -> ApiResult {
    put_member(ctx, &name, MemberKind::Team, &team, &bytes).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/collections/{name}/members/users/{username}",
    operation_id = "remove_collection_user",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name"), ("username" = String, Path, description = "a user name")),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the collection would be left without an owner", body = ErrorBody),
    ),
)]
async fn remove_user(ctx: Ctx, Path((name, user)): Path<(String, String)>) -> ApiResult {
    ctx.manager().remove_member(&ctx.actor, &name, MemberKind::User, &user).await?;
    Ok(no_content())
}

#[utoipa::path(
    delete,
    path = "/api/v1/collections/{name}/members/teams/{team}",
    operation_id = "remove_collection_team",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name"), ("team" = String, Path, description = "a team name")),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the collection would be left without an owner", body = ErrorBody),
    ),
)]
async fn remove_team(ctx: Ctx, Path((name, team)): Path<(String, String)>) -> ApiResult {
    ctx.manager().remove_member(&ctx.actor, &name, MemberKind::Team, &team).await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/api/v1/repositories/{name}",
    operation_id = "show_repository",
    tag = "repositories",
    params(("name" = String, Path, description = "a repository name (`collection/path`, may contain `/`)")),
    responses(
        (status = 200, description = "the repository with its tags", body = RepositoryOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn show_repo(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().show_repository(&ctx.actor, &name).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/repositories/{name}",
    operation_id = "delete_repository",
    tag = "repositories",
    params(("name" = String, Path, description = "a repository name (`collection/path`, may contain `/`)")),
    responses(
        (status = 204, description = "deleted with its manifests and tags (owners and admins)"),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn delete_repo(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    ctx.manager().delete_repository(&ctx.actor, &name).await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/api/v1/collections/{name}/policy",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name")),
    responses(
        (status = 200, description = "the retention and immutable-tag policy", body = PolicyOut),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn show_policy(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().get_policy(&ctx.actor, &name).await?))
}

/// Replaces the collection's retention and immutable-tag policy (owners and admins).
#[utoipa::path(
    put,
    path = "/api/v1/collections/{name}/policy",
    tag = "collections",
    params(("name" = String, Path, description = "a collection name")),
    request_body = PolicyIn,
    responses(
        (status = 200, description = "the new policy", body = PolicyOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn put_policy(ctx: Ctx, Path(name): Path<String>, bytes: Bytes) -> ApiResult {
    let b: crate::manage::PolicyIn = body(&bytes)?;
    Ok(json(StatusCode::OK, &ctx.manager().set_policy(&ctx.actor, &name, b).await?))
}
