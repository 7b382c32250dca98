//! Management domain: users, API tokens, teams, collections, members and repositories.
//! The JSON API (`crate::api`) and the CLI both call these functions; nothing here sees
//! HTTP types. Every function takes the acting principal and applies DESIGN §3 and §8.

mod collections;
mod policies;
mod teams;
mod users;

pub use collections::*;
pub use policies::*;
pub use teams::*;
pub use users::*;

use crate::{
    auth::{
        credentials::Authenticated,
        rules::{self, Actions, Collection, Principal, Role, Settings},
    },
    config::AuthConfig,
    db::{Db, collections::CollectionView, repos::CatalogScope},
};

/// Who performs a management action.
#[derive(Clone, Debug)]
pub struct Actor {
    /// `None` for the CLI, which acts as the system with superuser rights.
    pub user_id: Option<i64>,
    pub username: String,
    pub role: Role,
    pub read_only: bool,
}

impl Actor {
    /// The CLI: direct database access is already full control.
    pub fn system() -> Actor {
        Actor { user_id: None, username: String::new(), role: Role::Superuser, read_only: false }
    }

    pub fn from_authenticated(a: &Authenticated) -> Actor {
        Actor { user_id: Some(a.user.id), username: a.user.username.clone(), role: a.role, read_only: a.read_only }
    }

    fn principal(&self) -> Principal {
        Principal { role: self.role, read_only: self.read_only }
    }

    fn is_superuser(&self) -> bool {
        self.role == Role::Superuser
    }

    fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    /// What the catalog-style listings may show this actor.
    fn scope(&self) -> CatalogScope {
        match (self.is_staff(), self.user_id) {
            (true, _) => CatalogScope::All,
            (false, Some(id)) => CatalogScope::User(id),
            (false, None) => CatalogScope::Public,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not allowed")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ManageError {
    fn from(e: sqlx::Error) -> Self {
        ManageError::Internal(e.into())
    }
}

pub type Result<T> = std::result::Result<T, ManageError>;

/// The management context: database and the registry settings.
pub struct Manager<'a> {
    pub db: &'a Db,
    pub auth: &'a AuthConfig,
}

impl Manager<'_> {
    fn settings(&self) -> Settings {
        Settings { user_collections: self.auth.user_collections, private_registry: self.auth.private_registry }
    }

    /// The actions the actor gets in a collection (ALL means it may manage it).
    fn granted(&self, actor: &Actor, view: Option<&CollectionView>) -> Actions {
        let c = view.map_or(Collection::ABSENT, |v| Collection {
            exists: true,
            private: v.private,
            membership: v.membership,
        });
        rules::grant(actor.principal(), c, self.settings(), Actions::ALL)
    }

    /// Whether the actor may create collections and teams.
    pub fn may_create(&self, actor: &Actor) -> bool {
        rules::may_create_collection(actor.principal(), self.settings())
    }
}

/// `(items, has_more)` from a query that fetched `n + 1` rows.
pub fn page<T>(mut rows: Vec<T>, n: u32) -> (Vec<T>, bool) {
    let more = rows.len() > n as usize;
    rows.truncate(n as usize);
    (rows, more)
}
