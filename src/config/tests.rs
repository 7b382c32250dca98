#![expect(clippy::result_large_err, reason = "figment::Jail fixes the closures' error type")]

use super::*;

fn load_err(jail_setup: impl FnOnce(&mut figment::Jail) -> Option<PathBuf>) -> String {
    let mut out = String::new();
    figment::Jail::expect_with(|jail| {
        let file = jail_setup(jail);
        out = match Config::load(file.as_deref()) {
            Ok(_) => "loaded".into(),
            Err(e) => e.to_string(),
        };
        Ok(())
    });
    out
}

#[test]
fn defaults_are_valid() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.database_url(), "sqlite://./berth-data/berth.db");
}

#[test]
fn env_overrides() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("BERTH_AUTH__USER_COLLECTIONS", "false");
        jail.set_env("BERTH_LISTEN", "127.0.0.1:6000");
        jail.set_env("BERTH_AUTH__TRUSTED_PROXIES", "[10.0.0.0/8, \"::1/128\"]");
        jail.set_env("BERTH_CONFIG", "ignored: it is the --config flag");
        let c = Config::load(None).unwrap();
        assert!(!c.auth.user_collections);
        assert_eq!(c.listen, "127.0.0.1:6000");
        assert_eq!(c.auth.trusted_proxies.len(), 2);
        Ok(())
    });
}

#[test]
fn misspelt_env_variable_is_named_with_the_nearest_key() {
    let e = load_err(|jail| {
        jail.set_env("BERTH_AUTH__PRIVATE_REGISTY", "true");
        None
    });
    assert!(e.contains("BERTH_AUTH__PRIVATE_REGISTY"), "{e}");
    assert!(e.contains("BERTH_AUTH__PRIVATE_REGISTRY (auth.private_registry)"), "{e}");
}

#[test]
fn misspelt_file_key_is_named_with_the_nearest_key() {
    let e = load_err(|jail| {
        jail.create_file("berth.toml", "listen = \"127.0.0.1:5001\"\n[storage.s3]\nregoin = \"eu-west-1\"\n").unwrap();
        Some(PathBuf::from("berth.toml"))
    });
    assert!(e.contains("unknown key storage.s3.regoin in berth.toml; did you mean storage.s3.region?"), "{e}");
    let e = load_err(|jail| {
        jail.create_file("berth.toml", "[limit]\nmax_manifest_bytes = 5\n").unwrap();
        Some(PathBuf::from("berth.toml"))
    });
    assert!(e.contains("unknown key limit.max_manifest_bytes") && e.contains("limits.max_manifest_bytes"), "{e}");
}

#[test]
fn secrets_from_files() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("pw", "s3cret\n").unwrap();
        jail.create_file("db", "postgres://u:p@h/db\n").unwrap();
        jail.set_env("BERTH_INITIAL_ADMIN_PASSWORD_FILE", "pw");
        jail.set_env("BERTH_DATABASE__URL_FILE", "db");
        jail.set_env("BERTH_STORAGE__S3__SECRET_ACCESS_KEY_FILE", "pw");
        let c = Config::load(None).unwrap();
        assert_eq!(c.initial_admin_password.as_deref(), Some("s3cret"));
        assert_eq!(c.database.url.as_deref(), Some("postgres://u:p@h/db"));
        assert_eq!(c.storage.s3.secret_access_key, "s3cret");
        jail.set_env("BERTH_INITIAL_ADMIN_PASSWORD", "other");
        let e = Config::load(None).err().unwrap().to_string();
        assert!(e.contains("initial_admin_password and initial_admin_password_file are both set"), "{e}");
        Ok(())
    });
    let e = load_err(|jail| {
        jail.set_env("BERTH_INITIAL_ADMIN_PASSWORD_FILE", "missing");
        None
    });
    assert!(e.contains("initial_admin_password_file: reading missing"), "{e}");
}

#[test]
fn wildcard_listen_needs_public_url() {
    let c = Config { listen: "0.0.0.0:5000".into(), ..Config::default() };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("wildcard") && e.contains("public_url"), "{e}");
    let c = Config { listen: "[::]:5000".into(), ..Config::default() };
    assert!(c.validate().is_err());
    let c = Config {
        listen: "0.0.0.0:5000".into(),
        public_url: Some("https://registry.example.com".into()),
        ..Config::default()
    };
    c.validate().unwrap();
}

#[test]
fn rejects_bad_values() {
    let c = Config { listen: "nope".into(), ..Config::default() };
    assert!(c.validate().is_err());
    let mut c = Config::default();
    c.auth.token_ttl_secs = 5;
    assert!(c.validate().is_err());
    let mut c = Config::default();
    c.tls.cert = Some("cert.pem".into());
    assert!(c.validate().is_err());
    let e = load_err(|jail| {
        jail.set_env("BERTH_AUTH__TRUSTED_PROXIES", "[not-a-cidr]");
        None
    });
    assert!(e.to_lowercase().contains("trusted_proxies"), "{e}");
}

#[test]
fn listing_has_every_key_and_no_secret() {
    let mut c = Config { initial_admin_password: Some("hunter2".into()), ..Config::default() };
    c.database.url = Some("postgres://u:secret@h/db".into());
    c.storage.s3.secret_access_key = "wJalrXUtnFEMI".into();
    let s = listing(&c);
    assert!(!s.contains("hunter2") && !s.contains("secret@") && !s.contains("wJalr"), "{s}");
    for line in [
        "listen = \"127.0.0.1:5000\"",
        "# public_url = (unset)",
        "auth.token_ttl_secs = 900",
        "limits.max_manifest_bytes = 4194304",
        "gc.interval_secs = 3600",
        "storage.s3.region = \"us-east-1\"",
        "storage.s3.prefix = \"\"",
        "database.url = \"postgres://<redacted>@h/db\"",
        "initial_admin_password = \"<redacted>\"",
    ] {
        assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
    }
    assert_eq!(format!("{c:?}"), s);
}

#[test]
fn untagged_policy() {
    assert_eq!(Config::default().gc.untagged, Untagged::Keep);
    figment::Jail::expect_with(|jail| {
        for (value, want) in [("7d", Untagged::AfterSecs(7 * 86_400)), ("90", Untagged::AfterSecs(90))] {
            jail.set_env("BERTH_GC__UNTAGGED", value);
            assert_eq!(Config::load(None).unwrap().gc.untagged, want, "{value}");
        }
        jail.set_env("BERTH_GC__UNTAGGED", "sometimes");
        assert!(Config::load(None).is_err());
        Ok(())
    });
}

#[test]
fn ldap_settings() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("bind.pw", "s3cret\n")?;
        jail.create_file(
            "berth.toml",
            "[auth.ldap]\nurl = \"ldaps://ldap.example.org\"\nuser_base = \"ou=people,dc=example,dc=org\"\n\
             bind_dn = \"cn=berth,dc=example,dc=org\"\nbind_password_file = \"bind.pw\"\nadmin_groups = [\"admins\"]\n",
        )?;
        jail.set_env("BERTH_AUTH__LDAP__CACHE_SECS", "30");
        let c = Config::load(Some(Path::new("berth.toml"))).unwrap();
        assert_eq!(c.auth.ldap.bind_password, "s3cret");
        assert_eq!(c.auth.ldap.cache_secs, Some(30));
        assert_eq!(c.auth.ldap.user_filter, "(uid={username})");
        let listing = listing(&c);
        assert!(listing.contains("auth.ldap.bind_password = \"<redacted>\""), "{listing}");
        assert!(!listing.contains("s3cret"));
        Ok(())
    });
    for (env, value, expect) in [
        ("BERTH_AUTH__LDAP__URL", "http://ldap.example.org", "must start with ldap:// or ldaps://"),
        ("BERTH_AUTH__LDAP__URL", "ldap://ldap.example.org", "auth.ldap.user_base is required"),
        ("BERTH_AUTH__LDAP__USRE_BASE", "ou=x", "BERTH_AUTH__LDAP__USER_BASE"),
    ] {
        let e = load_err(|jail| {
            jail.set_env(env, value);
            None
        });
        assert!(e.contains(expect), "{env}={value}: {e}");
    }
    let e = load_err(|jail| {
        jail.set_env("BERTH_AUTH__LDAP__URL", "ldap://127.0.0.1");
        jail.set_env("BERTH_AUTH__LDAP__USER_BASE", "dc=x");
        jail.set_env("BERTH_AUTH__LDAP__USER_FILTER", "(uid=alice)");
        None
    });
    assert!(e.contains("must contain {username}"), "{e}");
}

const OIDC_PROVIDER: &str = "[[auth.oidc]]\nname = \"corp\"\nissuer = \"https://id.example.org/realms/corp\"\n\
                             client_id = \"berth\"\n";

#[test]
fn oidc_providers() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("secret", "s3cret\n")?;
        let second = "[[auth.oidc]]\nname = \"dex\"\nissuer = \"https://dex.example.org\"\nclient_id = \"b\"\n\
                      client_secret = \"x\"\nscopes = [\"openid\", \"groups\"]\nadmin_groups = [\"ops\"]\n";
        jail.create_file("berth.toml", &format!("{OIDC_PROVIDER}client_secret_file = \"secret\"\n{second}"))?;
        let c = Config::load(Some(Path::new("berth.toml"))).unwrap();
        let (corp, dex) = (&c.auth.oidc[0], &c.auth.oidc[1]);
        assert_eq!((corp.client_secret.as_str(), corp.shown_name()), ("s3cret", "corp"));
        assert_eq!((corp.username_claim.as_str(), corp.groups_claim.as_str()), ("preferred_username", "groups"));
        assert_eq!(corp.scopes, ["openid", "profile", "email"]);
        assert_eq!((dex.scopes.len(), dex.admin_groups.len()), (2, 1));
        let listing = listing(&c);
        assert!(!listing.contains("s3cret") && listing.contains("\"client_secret\":\"<redacted>\""), "{listing}");
        Ok(())
    });
}

#[test]
fn bad_oidc_providers_are_refused_with_a_reason() {
    for (extra, expected) in [
        ("client_secret = \"x\"\nclient_sercet = \"y\"\n", "unknown field: found `client_sercet`"),
        ("", "client_secret (or client_secret_file) is required"),
        ("client_secret = \"x\"\nscopes = [\"profile\"]\n", "scopes must include \"openid\""),
        ("client_secret = \"x\"\nteam_groups = [\"a[\"]\n", "team_groups: \"a[\" is not a glob"),
        ("client_secret = \"x\"\n[[auth.oidc]]\nname = \"corp\"\n", "two providers are named \"corp\""),
    ] {
        let e = load_err(|jail| {
            let mut toml = format!("{OIDC_PROVIDER}{extra}");
            if expected.starts_with("two") {
                toml.push_str("issuer = \"https://b\"\nclient_id = \"b\"\nclient_secret = \"b\"\n");
            }
            jail.create_file("berth.toml", &toml).unwrap();
            Some(PathBuf::from("berth.toml"))
        });
        assert!(e.contains(expected), "{extra}: {e}");
    }
    let e = load_err(|jail| {
        jail.create_file("berth.toml", &OIDC_PROVIDER.replace("corp", "Corp/x")).unwrap();
        Some(PathBuf::from("berth.toml"))
    });
    assert!(e.contains("name must be 1 to 32 of a-z"), "{e}");
    let e = load_err(|jail| {
        jail.create_file("berth.toml", &OIDC_PROVIDER.replace("https://", "ftp://")).unwrap();
        Some(PathBuf::from("berth.toml"))
    });
    assert!(e.contains("must start with https://"), "{e}");
}
