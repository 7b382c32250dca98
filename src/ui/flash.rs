//! One-time notices after a form did its work ("Tag deleted."). The redirect sets a short
//! cookie naming a fixed message (never text from the request), the next page shows it and
//! the answer clears the cookie.

use axum::{http::header, response::Response};

use super::{Viewer, layout, session};

pub const COOKIE: &str = "berth_flash";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flash {
    CollectionCreated,
    VisibilitySaved,
    CollectionDeleted,
    MemberSaved,
    MemberRemoved,
    RepositoryDeleted,
    TagDeleted,
    ManifestDeleted,
    TeamCreated,
    TeamDeleted,
    TokenRevoked,
    PasswordChanged,
    UserCreated,
    UserSaved,
}

const ALL: [(Flash, &str, &str); 14] = [
    (Flash::CollectionCreated, "collection-created", "Collection created."),
    (Flash::VisibilitySaved, "visibility-saved", "Visibility saved."),
    (Flash::CollectionDeleted, "collection-deleted", "Collection deleted."),
    (Flash::MemberSaved, "member-saved", "Member saved."),
    (Flash::MemberRemoved, "member-removed", "Member removed."),
    (Flash::RepositoryDeleted, "repository-deleted", "Repository deleted."),
    (Flash::TagDeleted, "tag-deleted", "Tag deleted."),
    (Flash::ManifestDeleted, "manifest-deleted", "Manifest and its tags deleted."),
    (Flash::TeamCreated, "team-created", "Team created."),
    (Flash::TeamDeleted, "team-deleted", "Team deleted."),
    (Flash::TokenRevoked, "token-revoked", "Token revoked."),
    (Flash::PasswordChanged, "password-changed", "Password changed; your other sessions were signed out."),
    (Flash::UserCreated, "user-created", "User created."),
    (Flash::UserSaved, "user-saved", "User saved."),
];

impl Flash {
    fn key(self) -> &'static str {
        ALL.iter().find(|(f, _, _)| *f == self).map_or("", |(_, k, _)| k)
    }

    /// The message a cookie value names; unknown values name none.
    pub fn message_of(key: &str) -> Option<&'static str> {
        ALL.iter().find(|(_, k, _)| *k == key).map(|(_, _, m)| *m)
    }
}

/// Post/redirect/get with a notice for the next page.
pub fn redirect(v: &Viewer, location: &str, flash: Flash) -> Response {
    let mut r = layout::see_other(location);
    let cookie = session::set_cookie(COOKIE, flash.key(), "/ui", 60, v.app.secure_cookies());
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_messages() {
        for (f, key, message) in ALL {
            assert_eq!(f.key(), key);
            assert_eq!(Flash::message_of(key), Some(message));
        }
        assert_eq!(Flash::message_of("<script>"), None);
    }
}
