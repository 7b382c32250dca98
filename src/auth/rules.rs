//! The permission rules of DESIGN §3 as one pure function:
//! (principal, collection state, settings, requested actions) -> granted actions.

use std::fmt;

/// A set of repository actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Actions = Actions(0);
    pub const PULL: Actions = Actions(1);
    pub const PUSH: Actions = Actions(2);
    pub const DELETE: Actions = Actions(4);
    pub const ALL: Actions = Actions(7);

    pub fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }
    pub fn intersect(self, other: Actions) -> Actions {
        Actions(self.0 & other.0)
    }

    /// Parses a comma-separated action list; unknown actions are ignored, `*` is all.
    pub fn parse_list(s: &str) -> Actions {
        s.split(',').fold(Actions::NONE, |acc, a| acc.union(Actions::parse(a)))
    }

    /// One action name; an unknown one grants nothing.
    pub fn parse(a: &str) -> Actions {
        match a.trim() {
            "pull" => Actions::PULL,
            "push" => Actions::PUSH,
            "delete" => Actions::DELETE,
            "*" => Actions::ALL,
            _ => Actions::NONE,
        }
    }

    /// Explicit action names, in a fixed order.
    pub fn names(self) -> Vec<String> {
        [(Actions::PULL, "pull"), (Actions::PUSH, "push"), (Actions::DELETE, "delete")]
            .into_iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| n.to_owned())
            .collect()
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Superuser,
    Admin,
    User,
    Anonymous,
}

impl Role {
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Superuser | Role::Admin)
    }

    /// The role's name on the wire (`anonymous` only ever describes a principal).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anonymous => "anonymous",
            Role::Superuser | Role::Admin | Role::User => {
                AccountRole::try_from(self).map_or("user", AccountRole::as_str)
            }
        }
    }
}

/// The role an account holds (what `users.role` stores). Unlike [`Role`] it has no
/// anonymous, so an account can never be given that role, or have it turned into another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountRole {
    Superuser,
    Admin,
    User,
}

impl AccountRole {
    /// The one place that maps an account role to its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Superuser => "superuser",
            AccountRole::Admin => "admin",
            AccountRole::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<AccountRole> {
        [AccountRole::Superuser, AccountRole::Admin, AccountRole::User].into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_staff(self) -> bool {
        Role::from(self).is_staff()
    }
}

impl From<AccountRole> for Role {
    fn from(r: AccountRole) -> Role {
        match r {
            AccountRole::Superuser => Role::Superuser,
            AccountRole::Admin => Role::Admin,
            AccountRole::User => Role::User,
        }
    }
}

impl TryFrom<Role> for AccountRole {
    type Error = ();

    fn try_from(r: Role) -> Result<AccountRole, ()> {
        match r {
            Role::Superuser => Ok(AccountRole::Superuser),
            Role::Admin => Ok(AccountRole::Admin),
            Role::User => Ok(AccountRole::User),
            Role::Anonymous => Err(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Owner,
    Contributor,
}

impl Membership {
    /// The one place that maps a membership role to its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Membership::Owner => "owner",
            Membership::Contributor => "contributor",
        }
    }

    pub fn parse(s: &str) -> Option<Membership> {
        [Membership::Owner, Membership::Contributor].into_iter().find(|m| m.as_str() == s)
    }
}

/// Who is asking.
#[derive(Clone, Copy, Debug)]
pub struct Principal {
    pub role: Role,
    /// A read-only API token (or a refresh token minted from one): pull only.
    pub read_only: bool,
}

/// The collection as it stands, for this principal.
#[derive(Clone, Copy, Debug)]
pub struct Collection {
    pub exists: bool,
    pub private: bool,
    pub membership: Option<Membership>,
}

impl Collection {
    pub const ABSENT: Collection = Collection { exists: false, private: false, membership: None };
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub user_collections: bool,
    pub private_registry: bool,
}

/// The actions `p` gets on any repository of collection `c`, limited to `wanted`.
pub fn grant(p: Principal, c: Collection, s: Settings, wanted: Actions) -> Actions {
    let allowed = match p.role {
        Role::Superuser | Role::Admin => Actions::ALL,
        Role::User => match c.membership.filter(|_| c.exists) {
            Some(Membership::Owner) => Actions::ALL,
            Some(Membership::Contributor) => Actions::PULL.union(Actions::PUSH),
            None if c.exists && !c.private => Actions::PULL,
            None => Actions::NONE,
        },
        Role::Anonymous if c.exists && !c.private && !s.private_registry => Actions::PULL,
        Role::Anonymous => Actions::NONE,
    };
    let allowed = if p.read_only { allowed.intersect(Actions::PULL) } else { allowed };
    allowed.intersect(wanted)
}

/// Whether `p` may create collections (and teams).
pub fn may_create_collection(p: Principal, s: Settings) -> bool {
    !p.read_only
        && match p.role {
            Role::Superuser | Role::Admin => true,
            Role::User => s.user_collections,
            Role::Anonymous => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Actions = Actions::PULL;
    const PP: Actions = Actions(3);
    const ALL: Actions = Actions::ALL;
    const NO: Actions = Actions::NONE;

    fn col(exists: bool, private: bool, m: Option<Membership>) -> Collection {
        Collection { exists, private, membership: m }
    }

    /// Every row of the DESIGN §3 table, for each collection visibility and setting.
    #[test]
    fn table() {
        use Membership::*;
        use Role::*;
        // (role, membership, private collection, private registry, expected)
        let rows: &[(Role, Option<Membership>, bool, bool, Actions)] = &[
            (Superuser, None, false, false, ALL),
            (Superuser, None, true, true, ALL),
            (Admin, None, false, false, ALL),
            (Admin, None, true, true, ALL),
            (User, Some(Owner), false, false, ALL),
            (User, Some(Owner), true, true, ALL),
            (User, Some(Contributor), false, false, PP),
            (User, Some(Contributor), true, true, PP),
            (User, None, false, false, P),
            (User, None, false, true, P),
            (User, None, true, false, NO),
            (User, None, true, true, NO),
            (Anonymous, None, false, false, P),
            (Anonymous, None, false, true, NO),
            (Anonymous, None, true, false, NO),
            (Anonymous, None, true, true, NO),
        ];
        for &(role, m, private, private_registry, want) in rows {
            for user_collections in [true, false] {
                let s = Settings { user_collections, private_registry };
                let p = Principal { role, read_only: false };
                let got = grant(p, col(true, private, m), s, ALL);
                assert_eq!(got, want, "{role:?} {m:?} private={private} preg={private_registry} uc={user_collections}");
                // A read-only token never gets more than pull.
                let ro = grant(Principal { role, read_only: true }, col(true, private, m), s, ALL);
                assert_eq!(ro, want.intersect(P));
                // Never more than asked.
                assert_eq!(grant(p, col(true, private, m), s, P), want.intersect(P));
            }
        }
    }

    #[test]
    fn absent_collection_grants_pull_to_staff_only() {
        let s = Settings { user_collections: true, private_registry: false };
        for (role, want) in [(Role::Superuser, ALL), (Role::Admin, ALL), (Role::User, NO), (Role::Anonymous, NO)] {
            assert_eq!(grant(Principal { role, read_only: false }, Collection::ABSENT, s, ALL), want, "{role:?}");
        }
    }

    #[test]
    fn creation() {
        let on = Settings { user_collections: true, private_registry: false };
        let off = Settings { user_collections: false, private_registry: false };
        let p = |role, read_only| Principal { role, read_only };
        assert!(may_create_collection(p(Role::User, false), on));
        assert!(!may_create_collection(p(Role::User, false), off));
        assert!(may_create_collection(p(Role::Admin, false), off));
        assert!(may_create_collection(p(Role::Superuser, false), off));
        assert!(!may_create_collection(p(Role::Anonymous, false), on));
        assert!(!may_create_collection(p(Role::Superuser, true), on));
    }

    #[test]
    fn action_lists() {
        assert_eq!(Actions::parse_list("pull,push"), PP);
        assert_eq!(Actions::parse_list("*"), ALL);
        assert_eq!(Actions::parse_list("pull,bogus"), P);
        assert_eq!(Actions::parse_list(""), NO);
        assert_eq!(ALL.names(), ["pull", "push", "delete"]);
    }
}
