//! `/api/v1/me`, users, API tokens and teams.

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
    ApiError, ApiResult, Ctx, body, json, no_content,
    openapi::{ErrorBody, Me, TeamMembership},
    page_params, paged,
};
use crate::{
    manage::{ManageError, TeamOut, TokenOut, UserOut, UserPatch, parse_role},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{username}", axum::routing::patch(update_user).delete(delete_user))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(delete_token))
        .route("/api/v1/teams", get(list_teams).post(create_team))
        .route("/api/v1/teams/{team}", get(show_team).patch(transfer_team).delete(delete_team))
        .route("/api/v1/teams/{team}/members/{username}", put(add_member).delete(remove_member))
}

fn user_id(ctx: &Ctx) -> Result<i64, ApiError> {
    ctx.actor.user_id.ok_or(ApiError::Unauthorized)
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "users",
    responses(
        (status = 200, description = "the caller", body = Me),
    ),
)]
async fn me(ctx: Ctx) -> ApiResult {
    let a = &ctx.actor;
    Ok(json(
        StatusCode::OK,
        &Me { username: a.username.clone(), role: a.role.as_str().to_owned(), read_only: a.read_only },
    ))
}

#[derive(Deserialize, ToSchema)]
struct NewUser {
    username: String,
    password: String,
    role: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "the created user", body = UserOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 409, description = "the user already exists", body = ErrorBody),
    ),
)]
async fn create_user(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewUser = body(&bytes)?;
    let role = parse_role(b.role.as_deref().unwrap_or("user"))?;
    let u = ctx.manager().create_user(&ctx.actor, &b.username, &b.password, role).await?;
    Ok(json(StatusCode::CREATED, &u))
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(("n" = Option<u32>, Query, description = "page size (default 100, at most 1000)"), ("last" = Option<String>, Query, description = "the last name of the previous page")),
    responses(
        (status = 200, description = "a page of users (admins only)", body = Vec<UserOut>, headers(("Link" = String, description = "the next page, when there is one"))),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
    ),
)]
async fn list_users(ctx: Ctx, uri: Uri) -> ApiResult {
    let (n, last) = page_params(uri.query())?;
    let (users, more) = ctx.manager().list_users(&ctx.actor, &last, n).await?;
    let last_name = users.last().map(|u| u.username.clone());
    Ok(paged(uri.path(), n, users, more, last_name))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserChange {
    role: Option<String>,
    password: Option<String>,
    active: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{username}",
    tag = "users",
    params(("username" = String, Path, description = "a user name")),
    request_body = UserChange,
    responses(
        (status = 200, description = "the changed user", body = UserOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "a password for an account that signs in through the directory", body = ErrorBody),
    ),
)]
async fn update_user(ctx: Ctx, Path(username): Path<String>, bytes: Bytes) -> ApiResult {
    let b: UserChange = body(&bytes)?;
    let patch =
        UserPatch { role: b.role.as_deref().map(parse_role).transpose()?, password: b.password, active: b.active };
    let u = ctx.manager().update_user(&ctx.actor, &username, patch).await?;
    Ok(json(StatusCode::OK, &u))
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}",
    tag = "users",
    params(("username" = String, Path, description = "a user name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the caller themself, or the last owner of a collection", body = ErrorBody),
    ),
)]
async fn delete_user(ctx: Ctx, Path(username): Path<String>) -> ApiResult {
    ctx.manager().delete_user(&ctx.actor, &username).await?;
    Ok(no_content())
}

#[derive(Deserialize, ToSchema)]
struct NewToken {
    name: String,
    #[serde(default)]
    read_only: bool,
    expires_in_days: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "the created token; `token` is its secret, shown only here", body = TokenOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
    ),
)]
async fn create_token(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewToken = body(&bytes)?;
    let t = ctx.manager().create_token(user_id(&ctx)?, &b.name, b.read_only, b.expires_in_days).await?;
    Ok(json(StatusCode::CREATED, &t))
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "the caller's tokens, without their secrets", body = Vec<TokenOut>),
    ),
)]
async fn list_tokens(ctx: Ctx) -> ApiResult {
    let tokens = ctx.manager().list_tokens(user_id(&ctx)?).await?;
    Ok(json(StatusCode::OK, &tokens))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "a token id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn delete_token(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.manager().delete_token(user_id(&ctx)?, &id).await?;
    Ok(no_content())
}

#[derive(Deserialize, ToSchema)]
struct NewTeam {
    name: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/teams",
    tag = "teams",
    request_body = NewTeam,
    responses(
        (status = 201, description = "the created team, owned by the caller", body = TeamOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 409, description = "the team already exists", body = ErrorBody),
    ),
)]
async fn create_team(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewTeam = body(&bytes)?;
    let t = ctx.manager().create_team(&ctx.actor, &b.name, None).await?;
    Ok(json(StatusCode::CREATED, &t))
}

#[utoipa::path(
    get,
    path = "/api/v1/teams",
    tag = "teams",
    params(("n" = Option<u32>, Query, description = "page size (default 100, at most 1000)"), ("last" = Option<String>, Query, description = "the last name of the previous page")),
    responses(
        (status = 200, description = "a page of the teams the caller may see", body = Vec<TeamOut>, headers(("Link" = String, description = "the next page, when there is one"))),
        (status = 400, description = "bad input", body = ErrorBody),
    ),
)]
async fn list_teams(ctx: Ctx, uri: Uri) -> ApiResult {
    let (n, last) = page_params(uri.query())?;
    let (teams, more) = ctx.manager().list_teams(&ctx.actor, &last, n).await?;
    let last_name = teams.last().map(|t| t.name.clone());
    Ok(paged(uri.path(), n, teams, more, last_name))
}

#[utoipa::path(
    get,
    path = "/api/v1/teams/{team}",
    tag = "teams",
    params(("team" = String, Path, description = "a team name")),
    responses(
        (status = 200, description = "the team", body = TeamOut),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
    ),
)]
async fn show_team(ctx: Ctx, Path(team): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().show_team(&ctx.actor, &team).await?))
}

#[derive(Deserialize, ToSchema)]
struct TeamChange {
    owner: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/teams/{team}",
    tag = "teams",
    params(("team" = String, Path, description = "a team name")),
    request_body = TeamChange,
    responses(
        (status = 200, description = "the team with its new owner", body = TeamOut),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the team is managed by the directory", body = ErrorBody),
    ),
)]
async fn transfer_team(ctx: Ctx, Path(team): Path<String>, bytes: Bytes) -> ApiResult {
    let b: TeamChange = body(&bytes)?;
    let owner = b.owner.ok_or_else(|| ApiError::Manage(ManageError::BadRequest("owner is required".into())))?;
    Ok(json(StatusCode::OK, &ctx.manager().transfer_team(&ctx.actor, &team, &owner).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/teams/{team}",
    tag = "teams",
    params(("team" = String, Path, description = "a team name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the team is the last owner of a collection", body = ErrorBody),
    ),
)]
async fn delete_team(ctx: Ctx, Path(team): Path<String>) -> ApiResult {
    ctx.manager().delete_team(&ctx.actor, &team).await?;
    Ok(no_content())
}

#[utoipa::path(
    put,
    path = "/api/v1/teams/{team}/members/{username}",
    operation_id = "add_team_member",
    tag = "teams",
    params(("team" = String, Path, description = "a team name"), ("username" = String, Path, description = "a user name")),
    responses(
        (status = 200, description = "the membership", body = TeamMembership),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the team is managed by the directory", body = ErrorBody),
    ),
)]
async fn add_member(ctx: Ctx, Path((team, username)): Path<(String, String)>) -> ApiResult {
    ctx.manager().add_team_member(&ctx.actor, &team, &username).await?;
    Ok(json(StatusCode::OK, &TeamMembership { team, user: username }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/teams/{team}/members/{username}",
    operation_id = "remove_team_member",
    tag = "teams",
    params(("team" = String, Path, description = "a team name"), ("username" = String, Path, description = "a user name")),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "unknown or not visible to the caller", body = ErrorBody),
        (status = 409, description = "the team is managed by the directory", body = ErrorBody),
    ),
)]
async fn remove_member(ctx: Ctx, Path((team, username)): Path<(String, String)>) -> ApiResult {
    ctx.manager().remove_team_member(&ctx.actor, &team, &username).await?;
    Ok(no_content())
}
