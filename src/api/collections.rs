//! `/api/v1/collections`, their members, and `/api/v1/repositories`.

use axum::{
    Router,
    body::Bytes,
    extract::Path,
    http::{StatusCode, Uri},
    routing::{get, put},
};
use serde::Deserialize;

use super::{ApiResult, Ctx, body, json, no_content, page_params, paged};
use crate::{manage::MemberKind, state::AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/collections", get(list).post(create))
        .route("/api/v1/collections/{name}", get(show).patch(change).delete(delete))
        .route("/api/v1/collections/{name}/policy", get(show_policy).put(put_policy))
        .route("/api/v1/collections/{name}/members/users/{username}", put(put_user).delete(remove_user))
        .route("/api/v1/collections/{name}/members/teams/{team}", put(put_team).delete(remove_team))
        .route("/api/v1/repositories/{*name}", get(show_repo).delete(delete_repo))
}

#[derive(Deserialize)]
struct NewCollection {
    name: String,
    private: Option<bool>,
}

async fn create(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewCollection = body(&bytes)?;
    let c = ctx.manager().create_collection(&ctx.actor, &b.name, b.private, None).await?;
    Ok(json(StatusCode::CREATED, &c))
}

async fn list(ctx: Ctx, uri: Uri) -> ApiResult {
    let (n, last) = page_params(uri.query())?;
    let (items, more) = ctx.manager().list_collections(&ctx.actor, &last, n).await?;
    let last_name = items.last().map(|c| c.name.clone());
    Ok(paged(uri.path(), n, items, more, last_name))
}

async fn show(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().show_collection(&ctx.actor, &name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    private: bool,
}

async fn change(ctx: Ctx, Path(name): Path<String>, bytes: Bytes) -> ApiResult {
    let b: Change = body(&bytes)?;
    Ok(json(StatusCode::OK, &ctx.manager().set_collection_private(&ctx.actor, &name, b.private).await?))
}

async fn delete(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    ctx.manager().delete_collection(&ctx.actor, &name).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct Role {
    role: String,
}

async fn put_member(ctx: Ctx, name: &str, kind: MemberKind, member: &str, bytes: &Bytes) -> ApiResult {
    let b: Role = body(bytes)?;
    let role = crate::manage::parse_member_role(&b.role)?;
    Ok(json(StatusCode::OK, &ctx.manager().put_member(&ctx.actor, name, kind, member, role).await?))
}

async fn put_user(ctx: Ctx, Path((name, user)): Path<(String, String)>, bytes: Bytes) -> ApiResult {
    put_member(ctx, &name, MemberKind::User, &user, &bytes).await
}

async fn put_team(ctx: Ctx, Path((name, team)): Path<(String, String)>, bytes: Bytes) -> ApiResult {
    put_member(ctx, &name, MemberKind::Team, &team, &bytes).await
}

async fn remove_user(ctx: Ctx, Path((name, user)): Path<(String, String)>) -> ApiResult {
    ctx.manager().remove_member(&ctx.actor, &name, MemberKind::User, &user).await?;
    Ok(no_content())
}

async fn remove_team(ctx: Ctx, Path((name, team)): Path<(String, String)>) -> ApiResult {
    ctx.manager().remove_member(&ctx.actor, &name, MemberKind::Team, &team).await?;
    Ok(no_content())
}

async fn show_repo(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().show_repository(&ctx.actor, &name).await?))
}

async fn delete_repo(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    ctx.manager().delete_repository(&ctx.actor, &name).await?;
    Ok(no_content())
}

async fn show_policy(ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().get_policy(&ctx.actor, &name).await?))
}

/// Replaces the collection's retention and immutable-tag policy (owners and admins).
async fn put_policy(ctx: Ctx, Path(name): Path<String>, bytes: Bytes) -> ApiResult {
    let b: crate::manage::PolicyIn = body(&bytes)?;
    Ok(json(StatusCode::OK, &ctx.manager().set_policy(&ctx.actor, &name, b).await?))
}
