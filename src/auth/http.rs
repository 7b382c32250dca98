//! The token endpoints: `GET /token` (Docker token auth), `POST /token` (OAuth2 form, as
//! containerd and docker's refresh flow use), and `GET /token/jwks.json`.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{FromRef, State},
    http::{Extensions, HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::STANDARD};

use super::{
    credentials::{Authenticated, CredentialError},
    password, scope,
    service::TokenService,
    throttle::LoginError,
    token::rfc3339,
};
use crate::oci::error::OciError;

/// The token endpoints, for any router state that carries a [`TokenService`].
pub fn routes<S>() -> Router<S>
where
    TokenService: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/token", get(get_token).post(post_token)).route("/token/jwks.json", get(jwks))
}

fn login_fail(e: LoginError) -> OciError {
    match e {
        LoginError::Invalid => fail(CredentialError::Invalid),
        LoginError::Throttled(secs) => OciError::too_many_requests(secs),
        LoginError::Internal(e) => internal(e),
    }
}

/// The client's address as resolved by the access middleware (the peer, or the
/// `X-Forwarded-For` client behind a trusted proxy), when the request came over a socket.
pub fn client_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<crate::ops::addr::ClientAddr>().map(|c| c.0)
}

fn fail(e: CredentialError) -> OciError {
    match e {
        CredentialError::Invalid => {
            crate::ops::metrics::token_refused("credentials");
            OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid username or password")
        }
        CredentialError::Busy(_) => OciError::too_many_requests(password::BUSY_RETRY_SECS),
        CredentialError::Internal(e) => internal(e),
    }
}

fn internal(e: anyhow::Error) -> OciError {
    crate::ops::metrics::internal_error(&e);
    tracing::error!(error = format!("{e:#}"), "token service error");
    OciError::internal()
}

/// `(username, secret)` from a Basic `Authorization` header.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn check_anonymous(tokens: &TokenService, who: Option<&Authenticated>) -> Result<(), OciError> {
    if who.is_none() && !tokens.anonymous_allowed() {
        crate::ops::metrics::token_refused("anonymous");
        return Err(OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required"));
    }
    Ok(())
}

async fn get_token(
    State(tokens): State<TokenService>,
    uri: Uri,
    headers: HeaderMap,
    ext: Extensions,
) -> Result<Response, OciError> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let param = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let who = match basic(&headers) {
        Some((u, p)) => Some(tokens.login(&u, &p, client_ip(&ext)).await.map_err(login_fail)?),
        None => None,
    };
    check_anonymous(&tokens, who.as_ref())?;
    let scopes = scope::parse_all(pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()));
    let issued = tokens.issue(who.as_ref(), &scopes).await.map_err(internal)?;
    crate::ops::metrics::token_issued();
    let mut body = serde_json::json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": tokens.settings().token_ttl_secs,
        "issued_at": rfc3339(issued.claims.iat),
    });
    if let (Some(w), Some("true")) = (&who, param("offline_token")) {
        body["refresh_token"] = tokens.mint_refresh_token(w).await.map_err(fail)?.into();
    }
    Ok(Json(body).into_response())
}

async fn post_token(State(tokens): State<TokenService>, ext: Extensions, body: Bytes) -> Result<Response, OciError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let param = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let bad = |m: &str| OciError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", m);
    let (who, refresh) = match param("grant_type") {
        Some("password") => {
            let (Some(u), Some(p)) = (param("username"), param("password")) else {
                return Err(bad("username and password are required"));
            };
            let who = tokens.login(u, p, client_ip(&ext)).await.map_err(login_fail)?;
            let refresh = if param("access_type") == Some("offline") {
                Some(tokens.mint_refresh_token(&who).await.map_err(fail)?)
            } else {
                None
            };
            (who, refresh)
        }
        Some("refresh_token") => {
            let rt = param("refresh_token").ok_or_else(|| bad("refresh_token is required"))?;
            // Refresh tokens are not rotated: hand back the same one.
            (tokens.refresh_token(rt).await.map_err(fail)?, Some(rt.to_owned()))
        }
        _ => return Err(bad("grant_type must be password or refresh_token")),
    };
    crate::ops::context::set_principal(&who.user.username);
    let scope_param = param("scope").unwrap_or("");
    let issued = tokens.issue(Some(&who), &scope::parse_all([scope_param])).await.map_err(internal)?;
    crate::ops::metrics::token_issued();
    let mut out = serde_json::json!({
        "access_token": issued.token,
        "token": issued.token,
        "scope": scope_param,
        "expires_in": tokens.settings().token_ttl_secs,
        "issued_at": rfc3339(issued.claims.iat),
    });
    if let Some(r) = refresh {
        out["refresh_token"] = r.into();
    }
    Ok(Json(out).into_response())
}

async fn jwks(State(tokens): State<TokenService>) -> Json<serde_json::Value> {
    Json(tokens.jwks())
}
