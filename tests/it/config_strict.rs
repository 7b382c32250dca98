//! Strict configuration through the real binary (DESIGN §7): a misspelt key, in the
//! environment or in the file, stops berth with the key's name and the nearest known one
//! (it must never fall back to a default silently); `config check` prints every key with
//! secrets redacted; a wildcard `listen` without `public_url` is refused.

use crate::opsutil::berth;

#[tokio::test]
async fn misspelt_environment_variable_stops_serve_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BERTH_AUTH__PRIVATE_REGISTY", "true"), ("BERTH_LISTEN", "127.0.0.1:0")];
    for args in [&["serve"][..], &["config", "check"][..]] {
        let (ok, _, err) = berth(dir.path(), args, &env).await;
        assert!(!ok, "berth {args:?} accepted a misspelt setting");
        assert!(err.contains("unknown setting BERTH_AUTH__PRIVATE_REGISTY"), "{args:?}: {err}");
        assert!(err.contains("did you mean BERTH_AUTH__PRIVATE_REGISTRY (auth.private_registry)"), "{args:?}: {err}");
    }
    // Nothing was started or created for a refused configuration.
    assert!(!dir.path().join("berth.db").exists());
}

#[tokio::test]
async fn misspelt_file_key_stops_berth() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.toml"), "[auth]\nprivate_registy = true\n").unwrap();
    let (ok, _, err) = berth(dir.path(), &["--config", "berth.toml", "config", "check"], &[]).await;
    assert!(!ok);
    assert!(
        err.contains("unknown key auth.private_registy in berth.toml; did you mean auth.private_registry?"),
        "{err}"
    );
}

#[tokio::test]
async fn config_check_prints_every_key_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s3-secret"), "wJalrXUtnFEMI/K7MDENG\n").unwrap();
    let env = [
        ("BERTH_INITIAL_ADMIN_PASSWORD", "hunter2-hunter2"),
        ("BERTH_DATABASE__URL", "postgres://berth:pg-secret-pw@db.example/berth"),
        ("BERTH_STORAGE__S3__SECRET_ACCESS_KEY_FILE", "s3-secret"),
        ("BERTH_AUTH__TRUSTED_PROXIES", "[10.0.0.0/8]"),
    ];
    let (ok, out, err) = berth(dir.path(), &["config", "check"], &env).await;
    assert!(ok, "{err}");
    for secret in ["hunter2", "pg-secret-pw", "wJalrXUtnFEMI"] {
        assert!(!out.contains(secret) && !err.contains(secret), "{secret} printed:\n{out}");
    }
    for line in [
        "listen = \"127.0.0.1:5000\"",
        "# public_url = (unset)",
        "initial_admin_password = \"<redacted>\"",
        "database.url = \"postgres://<redacted>@db.example/berth\"",
        "storage.kind = \"filesystem\"",
        "storage.s3.region = \"us-east-1\"",
        "storage.s3.prefix = \"\"",
        "storage.s3.secret_access_key = \"<redacted>\"",
        "auth.token_ttl_secs = 900",
        "auth.trusted_proxies = [\"10.0.0.0/8\"]",
        "limits.max_manifest_bytes = 4194304",
        "limits.body_idle_secs = 60",
        "gc.interval_secs = 3600",
        "gc.upload_ttl_secs = 86400",
        "log.format = \"text\"",
        "metrics.enabled = true",
        "# tls.cert = (unset)",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in:\n{out}");
    }
}

#[tokio::test]
async fn wildcard_listen_needs_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = berth(dir.path(), &["serve"], &[("BERTH_LISTEN", "0.0.0.0:0")]).await;
    assert!(!ok);
    assert!(err.contains("wildcard address") && err.contains("set public_url"), "{err}");
    let env = [("BERTH_LISTEN", "0.0.0.0:0"), ("BERTH_PUBLIC_URL", "https://registry.example.com")];
    let (ok, _, err) = berth(dir.path(), &["config", "check"], &env).await;
    assert!(ok, "{err}");
}
