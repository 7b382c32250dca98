//! Who is looking ([`Viewer`]: a session's user, else anonymous) and what a form posted
//! ([`Posted`]: the fields, accepted only with the session's CSRF secret).

use std::sync::{Arc, OnceLock};

use axum::{
    body::to_bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{Method, request::Parts},
};

use super::{UiError, session::Session};
use crate::{
    auth::rules::{AccountRole, Role},
    manage::{Actor, Manager},
    registry::Caller,
    state::AppState,
};

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What the page frame shows about the viewer (the header's user name and sign-out form).
#[derive(Clone, Debug, Default)]
pub struct Chrome {
    pub username: Option<String>,
    pub csrf: Option<String>,
    pub superuser: bool,
    /// A notice left by the previous form post.
    pub flash: Option<&'static str>,
}

/// Filled by the [`Viewer`] extractor, read by the error renderer, so an error page has the
/// same frame as any other page of that viewer.
#[derive(Clone, Default)]
pub struct ChromeSlot(pub Arc<OnceLock<Chrome>>);

/// The principal of a web-interface request.
#[derive(Clone)]
pub struct Viewer {
    pub app: AppState,
    pub actor: Actor,
    pub session: Option<Session>,
    /// The notice the `berth_flash` cookie names, if any.
    pub flash: Option<&'static str>,
}

impl Viewer {
    pub fn manager(&self) -> Manager<'_> {
        Manager { db: &self.app.db, auth: &self.app.config.auth }
    }

    /// The registry's view of the viewer: a caller whose authority is judged now.
    pub fn caller(&self) -> Caller {
        Caller { sub: self.actor.username.clone(), iat: crate::db::now() }
    }

    pub fn chrome(&self) -> Chrome {
        match &self.session {
            Some(s) => Chrome {
                username: Some(s.username.clone()),
                csrf: Some(s.csrf.clone()),
                superuser: s.role == AccountRole::Superuser,
                flash: self.flash,
            },
            None => Chrome { flash: self.flash, ..Chrome::default() },
        }
    }

    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    /// The signed-in user's id; anonymous viewers are sent to sign in.
    pub fn user_id(&self) -> Result<i64, UiError> {
        self.session.as_ref().map(|s| s.user_id).ok_or(UiError::SignIn(String::new()))
    }

    pub fn is_staff(&self) -> bool {
        self.actor.role.is_staff()
    }
}

fn anonymous() -> Actor {
    Actor { user_id: None, username: String::new(), role: Role::Anonymous, read_only: false }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Viewer, UiError> {
        let session = super::session::current(&app.tokens, &parts.headers).await?;
        let actor = match &session {
            Some(s) => {
                crate::ops::context::set_principal(&s.username);
                Actor { user_id: Some(s.user_id), username: s.username.clone(), role: s.role.into(), read_only: false }
            }
            // A private registry shows anonymous nothing but the sign-in form.
            None if app.config.auth.private_registry => {
                // Back to the page after signing in; a form post is not repeated.
                let next = match parts.method {
                    Method::GET => parts.uri.path_and_query().map_or("/ui/", |p| p.as_str()),
                    _ => "/ui/",
                };
                return Err(UiError::SignIn(next.to_owned()));
            }
            None => anonymous(),
        };
        let flash =
            super::session::cookie(&parts.headers, super::flash::COOKIE).and_then(super::flash::Flash::message_of);
        let v = Viewer { app: app.clone(), actor, session, flash };
        if let Some(slot) = parts.extensions.get::<ChromeSlot>() {
            let _ = slot.0.set(v.chrome());
        }
        Ok(v)
    }
}

/// Form fields, in order.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A field that must be present and not blank (400 otherwise).
    pub fn text(&self, name: &str) -> Result<&str, UiError> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| UiError::bad(format!("{name} is required")))
    }

    /// A checkbox: checked when present with any value but `false`/`0`/`off`.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !matches!(v, "false" | "0" | "off"))
    }
}

/// A state-changing form post from a signed-in viewer, whose `csrf` field matched.
pub struct Posted {
    pub v: Viewer,
    pub form: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = UiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Posted, UiError> {
        let (mut parts, body) = req.into_parts();
        let v = Viewer::from_request_parts(&mut parts, app).await?;
        let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| UiError::bad("form too large or unreadable"))?;
        let form = Fields::parse(&bytes);
        let ok = match (&v.session, form.get("csrf")) {
            (Some(s), Some(sent)) => super::session::same_secret(&s.csrf, sent),
            _ => false,
        };
        if !ok {
            return Err(UiError::Csrf);
        }
        Ok(Posted { v, form })
    }
}
