-- Users and teams that come from a directory (auth.ldap). A directory user's users row has
-- the password_hash '!directory', which no password matches; the row here says where the
-- account lives and when the directory last vouched for it (API tokens re-check it).
CREATE TABLE directory_users (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    email TEXT,
    display_name TEXT,
    checked_at BIGINT NOT NULL
);

-- Teams made from directory groups: their members follow the directory at each login and
-- are not edited by hand.
CREATE TABLE directory_teams (
    team_id BIGINT PRIMARY KEY REFERENCES teams(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL
);
CREATE UNIQUE INDEX directory_teams_external ON directory_teams(source, external_id);
