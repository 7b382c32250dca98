//! Collections, their members, and repositories inside them.

use serde::Serialize;
use serde_json::json;

use super::{Actor, ManageError, Manager, Result, page};
use crate::{
    auth::rules::{Actions, Membership},
    db::{
        self,
        collections::{CollectionView, Member},
    },
    names::{CollectionName, RepoName},
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CollectionSummary {
    pub name: String,
    pub private: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CollectionOut {
    pub name: String,
    pub private: bool,
    #[schema(value_type = Vec<crate::api::openapi::MemberRef>)]
    pub owners: Vec<serde_json::Value>,
    #[schema(value_type = Vec<crate::api::openapi::MemberRef>)]
    pub contributors: Vec<serde_json::Value>,
    pub repositories: Vec<String>,
    /// Blob and manifest bytes in its repositories; a blob several share counts once.
    pub size_bytes: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagOut {
    pub name: String,
    pub digest: String,
    pub size: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepositoryOut {
    pub name: String,
    pub tags: Vec<TagOut>,
    /// Bytes of the blobs it links (each once) and of its manifests.
    pub size_bytes: i64,
}

pub use crate::db::collections::MemberKind;

/// A membership role from a request; anything else is 400.
pub fn parse_member_role(s: &str) -> Result<Membership> {
    Membership::parse(s).ok_or_else(|| ManageError::BadRequest("role must be owner or contributor".into()))
}

impl Manager<'_> {
    /// The collection and what the actor may do there. Invisible (no pull) is 404.
    pub(super) async fn collection_for(&self, actor: &Actor, name: &str) -> Result<(CollectionView, Actions)> {
        let not_found = || ManageError::NotFound(format!("collection {name}"));
        let view = db::collections::view(self.db, name, actor.user_id).await?.ok_or_else(not_found)?;
        let granted = self.granted(actor, Some(&view));
        if !granted.contains(Actions::PULL) {
            return Err(not_found());
        }
        Ok((view, granted))
    }

    /// As [`Self::collection_for`], and the actor must manage it (403 if only visible).
    pub(super) async fn managed_collection(&self, actor: &Actor, name: &str) -> Result<CollectionView> {
        let (view, granted) = self.collection_for(actor, name).await?;
        if granted != Actions::ALL || actor.read_only {
            return Err(ManageError::Forbidden);
        }
        Ok(view)
    }

    pub async fn create_collection(
        &self,
        actor: &Actor,
        name: &str,
        private: Option<bool>,
        owner: Option<&str>,
    ) -> Result<CollectionOut> {
        if !self.may_create(actor) {
            return Err(ManageError::Forbidden);
        }
        if name.parse::<CollectionName>().is_err() {
            return Err(ManageError::BadRequest("invalid collection name".into()));
        }
        let owner_id = match (owner, actor.user_id) {
            (Some(o), _) => self.user(o).await?.id,
            (None, Some(id)) => id,
            (None, None) => {
                return Err(ManageError::BadRequest("a collection needs an owner".into()));
            }
        };
        let private = private.unwrap_or(self.auth.default_private);
        if !db::collections::create_with_owner(self.db, name, private, false, owner_id).await? {
            return Err(ManageError::Conflict(format!("collection {name} already exists")));
        }
        self.show_collection(&Actor::system(), name).await
    }

    pub async fn list_collections(&self, actor: &Actor, last: &str, n: u32) -> Result<(Vec<CollectionSummary>, bool)> {
        let rows = db::collections::list(self.db, &actor.scope(), last, i64::from(n) + 1).await?;
        let rows = rows.into_iter().map(|c| CollectionSummary { name: c.name, private: c.private }).collect();
        Ok(page(rows, n))
    }

    pub async fn show_collection(&self, actor: &Actor, name: &str) -> Result<CollectionOut> {
        let (view, _) = self.collection_for(actor, name).await?;
        let mut owners = vec![];
        let mut contributors = vec![];
        for m in db::collections::members(self.db, view.id).await? {
            let entry = json!({ m.kind.as_str(): m.name });
            match m.role {
                Membership::Owner => owners.push(entry),
                Membership::Contributor => contributors.push(entry),
            }
        }
        let repositories = db::repos::in_collection(self.db, view.id).await?;
        let size_bytes = db::repos::collection_size_bytes(self.db, view.id).await?;
        Ok(CollectionOut { name: name.into(), private: view.private, owners, contributors, repositories, size_bytes })
    }

    pub async fn set_collection_private(&self, actor: &Actor, name: &str, private: bool) -> Result<CollectionOut> {
        let view = self.managed_collection(actor, name).await?;
        db::collections::set_private(self.db, view.id, private).await?;
        self.show_collection(&Actor::system(), name).await
    }

    pub async fn delete_collection(&self, actor: &Actor, name: &str) -> Result<()> {
        let view = self.managed_collection(actor, name).await?;
        db::collections::delete(self.db, view.id, name).await?;
        Ok(())
    }

    async fn member_id(&self, kind: MemberKind, name: &str) -> Result<Member> {
        Ok(match kind {
            MemberKind::User => Member::User(self.user(name).await?.id),
            MemberKind::Team => Member::Team(
                db::teams::by_name(self.db, name)
                    .await?
                    .ok_or_else(|| ManageError::NotFound(format!("team {name}")))?
                    .id,
            ),
        })
    }

    pub async fn put_member(
        &self,
        actor: &Actor,
        coll: &str,
        kind: MemberKind,
        member: &str,
        role: Membership,
    ) -> Result<serde_json::Value> {
        let view = self.managed_collection(actor, coll).await?;
        let id = self.member_id(kind, member).await?;
        if !db::collections::put_member(self.db, view.id, id, role).await? {
            return Err(ManageError::Conflict("a collection must keep at least one owner".into()));
        }
        Ok(json!({ "collection": coll, kind.as_str(): member, "role": role.as_str() }))
    }

    pub async fn remove_member(&self, actor: &Actor, coll: &str, kind: MemberKind, member: &str) -> Result<()> {
        let view = self.managed_collection(actor, coll).await?;
        let id = self.member_id(kind, member).await?;
        match db::collections::remove_member(self.db, view.id, id).await? {
            Some(true) => Ok(()),
            Some(false) => Err(ManageError::Conflict("a collection must keep at least one owner".into())),
            None => Err(ManageError::NotFound(format!("{member} in collection {coll}"))),
        }
    }

    /// A repository the actor may pull, with its tags.
    pub async fn show_repository(&self, actor: &Actor, name: &str) -> Result<RepositoryOut> {
        let (repo, id) = self.repository_for(actor, name, Actions::PULL).await?;
        let tags = db::repos::tag_details(self.db, id)
            .await?
            .into_iter()
            .map(|t| TagOut { name: t.name, digest: t.digest, size: t.size, updated_at: t.updated_at })
            .collect();
        let size_bytes = db::repos::size_bytes(self.db, id).await?;
        Ok(RepositoryOut { name: repo.to_string(), tags, size_bytes })
    }

    /// What the actor may do in a collection it may see (`Actions::ALL`: it manages it);
    /// 404 when it may not see it. For interfaces that show or hide controls.
    pub async fn collection_actions(&self, actor: &Actor, name: &str) -> Result<Actions> {
        let (_, granted) = self.collection_for(actor, name).await?;
        Ok(if actor.read_only { granted.intersect(Actions::PULL) } else { granted })
    }

    /// A repository the actor may pull, its id and what the actor may do there. An invalid,
    /// absent or hidden name is the same 404.
    pub async fn repository_actions(&self, actor: &Actor, name: &str) -> Result<(RepoName, i64, Actions)> {
        let not_found = || ManageError::NotFound(format!("repository {name}"));
        let repo: RepoName = name.parse().map_err(|_| not_found())?;
        let granted = match self.collection_actions(actor, repo.collection().as_str()).await {
            Ok(g) => g,
            Err(ManageError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        let id = db::repos::resolve(self.db, repo.as_str(), i64::MAX).await?.ok_or_else(not_found)?;
        Ok((repo, id, granted))
    }

    /// Deletes a repository with its manifests and tags (owners and admins).
    pub async fn delete_repository(&self, actor: &Actor, name: &str) -> Result<()> {
        let (repo, id) = self.repository_for(actor, name, Actions::DELETE).await?;
        db::repos::delete(self.db, id, repo.as_str()).await?;
        Ok(())
    }

    async fn repository_for(&self, actor: &Actor, name: &str, need: Actions) -> Result<(RepoName, i64)> {
        let not_found = || ManageError::NotFound(format!("repository {name}"));
        let repo: RepoName = name.parse().map_err(|_| ManageError::BadRequest("invalid repository name".into()))?;
        let (_, granted) = self.collection_for(actor, repo.collection().as_str()).await.map_err(|_| not_found())?;
        let id = db::repos::resolve(self.db, repo.as_str(), i64::MAX).await?.ok_or_else(not_found)?;
        if !granted.contains(need) || (actor.read_only && need != Actions::PULL) {
            return Err(ManageError::Forbidden);
        }
        Ok((repo, id))
    }
}
