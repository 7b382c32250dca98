//! `/api/v1/me`, users, API tokens and teams.

use axum::{
    Router,
    body::Bytes,
    extract::Path,
    http::{StatusCode, Uri},
    routing::{get, put},
};
use serde::Deserialize;

use super::{ApiError, ApiResult, Ctx, body, json, no_content, page_params, paged};
use crate::{
    manage::{ManageError, UserPatch, parse_role},
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

async fn me(ctx: Ctx) -> ApiResult {
    let a = &ctx.actor;
    let role = a.role.as_str();
    Ok(json(StatusCode::OK, &serde_json::json!({ "username": a.username, "role": role, "read_only": a.read_only })))
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    password: String,
    role: Option<String>,
}

async fn create_user(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewUser = body(&bytes)?;
    let role = parse_role(b.role.as_deref().unwrap_or("user"))?;
    let u = ctx.manager().create_user(&ctx.actor, &b.username, &b.password, role).await?;
    Ok(json(StatusCode::CREATED, &u))
}

async fn list_users(ctx: Ctx, uri: Uri) -> ApiResult {
    let (n, last) = page_params(uri.query())?;
    let (users, more) = ctx.manager().list_users(&ctx.actor, &last, n).await?;
    let last_name = users.last().map(|u| u.username.clone());
    Ok(paged(uri.path(), n, users, more, last_name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    role: Option<String>,
    password: Option<String>,
    active: Option<bool>,
}

async fn update_user(ctx: Ctx, Path(username): Path<String>, bytes: Bytes) -> ApiResult {
    let b: UserChange = body(&bytes)?;
    let patch =
        UserPatch { role: b.role.as_deref().map(parse_role).transpose()?, password: b.password, active: b.active };
    let u = ctx.manager().update_user(&ctx.actor, &username, patch).await?;
    Ok(json(StatusCode::OK, &u))
}

async fn delete_user(ctx: Ctx, Path(username): Path<String>) -> ApiResult {
    ctx.manager().delete_user(&ctx.actor, &username).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    #[serde(default)]
    read_only: bool,
    expires_in_days: Option<u32>,
}

async fn create_token(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewToken = body(&bytes)?;
    let t = ctx.manager().create_token(user_id(&ctx)?, &b.name, b.read_only, b.expires_in_days).await?;
    Ok(json(StatusCode::CREATED, &t))
}

async fn list_tokens(ctx: Ctx) -> ApiResult {
    let tokens = ctx.manager().list_tokens(user_id(&ctx)?).await?;
    Ok(json(StatusCode::OK, &tokens))
}

async fn delete_token(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.manager().delete_token(user_id(&ctx)?, &id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct NewTeam {
    name: String,
}

async fn create_team(ctx: Ctx, bytes: Bytes) -> ApiResult {
    let b: NewTeam = body(&bytes)?;
    let t = ctx.manager().create_team(&ctx.actor, &b.name, None).await?;
    Ok(json(StatusCode::CREATED, &t))
}

async fn list_teams(ctx: Ctx, uri: Uri) -> ApiResult {
    let (n, last) = page_params(uri.query())?;
    let (teams, more) = ctx.manager().list_teams(&ctx.actor, &last, n).await?;
    let last_name = teams.last().map(|t| t.name.clone());
    Ok(paged(uri.path(), n, teams, more, last_name))
}

async fn show_team(ctx: Ctx, Path(team): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &ctx.manager().show_team(&ctx.actor, &team).await?))
}

#[derive(Deserialize)]
struct TeamChange {
    owner: Option<String>,
}

async fn transfer_team(ctx: Ctx, Path(team): Path<String>, bytes: Bytes) -> ApiResult {
    let b: TeamChange = body(&bytes)?;
    let owner = b.owner.ok_or_else(|| ApiError::Manage(ManageError::BadRequest("owner is required".into())))?;
    Ok(json(StatusCode::OK, &ctx.manager().transfer_team(&ctx.actor, &team, &owner).await?))
}

async fn delete_team(ctx: Ctx, Path(team): Path<String>) -> ApiResult {
    ctx.manager().delete_team(&ctx.actor, &team).await?;
    Ok(no_content())
}

async fn add_member(ctx: Ctx, Path((team, username)): Path<(String, String)>) -> ApiResult {
    ctx.manager().add_team_member(&ctx.actor, &team, &username).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "team": team, "user": username })))
}

async fn remove_member(ctx: Ctx, Path((team, username)): Path<(String, String)>) -> ApiResult {
    ctx.manager().remove_team_member(&ctx.actor, &team, &username).await?;
    Ok(no_content())
}
