//! Teams: created by admins, superusers, or users while `user_collections` is on; managed
//! by their owner (the creator), admins and superusers.

use serde::Serialize;

use super::{Actor, ManageError, Manager, Result, page};
use crate::{
    db::{self, is_unique_violation, teams::TeamRow},
    names::CollectionName,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamOut {
    pub name: String,
    pub owner: String,
    pub members: Vec<String>,
}

impl Manager<'_> {
    async fn team(&self, name: &str) -> Result<TeamRow> {
        db::teams::by_name(self.db, name).await?.ok_or_else(|| ManageError::NotFound(format!("team {name}")))
    }

    async fn team_out(&self, t: TeamRow) -> Result<TeamOut> {
        let members = db::teams::members(self.db, t.id).await?;
        Ok(TeamOut { name: t.name, owner: t.owner, members })
    }

    /// A team the actor may see: staff, its owner, or a member. Others get 404.
    async fn visible_team(&self, actor: &Actor, name: &str) -> Result<(TeamRow, bool)> {
        let t = self.team(name).await?;
        let owner = actor.is_staff() || t.owner == actor.username;
        if owner {
            return Ok((t, true));
        }
        let members = db::teams::members(self.db, t.id).await?;
        if members.contains(&actor.username) {
            Ok((t, false))
        } else {
            Err(ManageError::NotFound(format!("team {name}")))
        }
    }

    async fn managed_team(&self, actor: &Actor, name: &str) -> Result<TeamRow> {
        match self.visible_team(actor, name).await? {
            (t, true) if !actor.read_only => Ok(t),
            _ => Err(ManageError::Forbidden),
        }
    }

    /// A team whose members the actor may edit by hand: not one a directory manages.
    async fn hand_edited_team(&self, actor: &Actor, name: &str) -> Result<TeamRow> {
        let t = self.managed_team(actor, name).await?;
        if let Some(source) = db::directory::team_source(self.db, t.id).await? {
            return Err(ManageError::Conflict(format!(
                "the members of team {name} follow the directory ({source}) at each login; change the group there"
            )));
        }
        Ok(t)
    }

    /// Creates a team owned by `owner` (the actor itself, unless the CLI names one).
    pub async fn create_team(&self, actor: &Actor, name: &str, owner: Option<&str>) -> Result<TeamOut> {
        if !self.may_create(actor) {
            return Err(ManageError::Forbidden);
        }
        if name.parse::<CollectionName>().is_err() {
            return Err(ManageError::BadRequest("invalid team name".into()));
        }
        let owner_id = match (owner, actor.user_id) {
            (Some(o), _) => self.user(o).await?.id,
            (None, Some(id)) => id,
            (None, None) => return Err(ManageError::BadRequest("a team needs an owner".into())),
        };
        match db::teams::insert(self.db, name, owner_id).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(ManageError::Conflict(format!("team {name} already exists")));
            }
            Err(e) => return Err(e.into()),
        }
        let t = self.team(name).await?;
        self.team_out(t).await
    }

    pub async fn list_teams(&self, actor: &Actor, last: &str, n: u32) -> Result<(Vec<TeamOut>, bool)> {
        let member = if actor.is_staff() { None } else { Some(actor.user_id.unwrap_or(-1)) };
        let rows = db::teams::list(self.db, member, last, i64::from(n) + 1).await?;
        let (rows, more) = page(rows, n);
        let mut out = Vec::with_capacity(rows.len());
        for t in rows {
            out.push(self.team_out(t).await?);
        }
        Ok((out, more))
    }

    pub async fn show_team(&self, actor: &Actor, name: &str) -> Result<TeamOut> {
        let (t, _) = self.visible_team(actor, name).await?;
        self.team_out(t).await
    }

    pub async fn add_team_member(&self, actor: &Actor, team: &str, username: &str) -> Result<TeamOut> {
        let t = self.hand_edited_team(actor, team).await?;
        let u = self.user(username).await?;
        db::teams::add_member(self.db, t.id, u.id).await?;
        self.team_out(t).await
    }

    pub async fn remove_team_member(&self, actor: &Actor, team: &str, username: &str) -> Result<()> {
        let t = self.hand_edited_team(actor, team).await?;
        let u = self.user(username).await?;
        if db::teams::remove_member(self.db, t.id, u.id).await? {
            Ok(())
        } else {
            Err(ManageError::NotFound(format!("{username} in team {team}")))
        }
    }

    pub async fn transfer_team(&self, actor: &Actor, team: &str, new_owner: &str) -> Result<TeamOut> {
        let t = self.managed_team(actor, team).await?;
        let u = self.user(new_owner).await?;
        db::teams::set_owner(self.db, t.id, u.id).await?;
        let t = self.team(team).await?;
        self.team_out(t).await
    }

    pub async fn delete_team(&self, actor: &Actor, team: &str) -> Result<()> {
        let t = self.managed_team(actor, team).await?;
        let sole = db::teams::sole_owner_of(self.db, t.id).await?;
        if !sole.is_empty() {
            return Err(ManageError::Conflict(format!("team {team} is the last owner of {}", sole.join(", "))));
        }
        db::teams::delete(self.db, t.id).await?;
        Ok(())
    }
}
