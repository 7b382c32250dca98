//! The binary's own surface: `--version` names the git commit it was built from, and
//! `completions SHELL` prints a completion script covering every subcommand.

#[tokio::test]
async fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = crate::opsutil::berth(dir.path(), &["--version"], &[]).await;
    assert!(ok, "{err}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let want = match (std::env::var("SOURCE_COMMIT"), head) {
        (Ok(c), _) if !c.is_empty() => c,
        (_, Some(h)) => h,
        _ => "unknown".into(),
    };
    assert_eq!(out.trim(), format!("berth {} ({want})", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn completions_cover_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out, err) = crate::opsutil::berth(dir.path(), &["completions", shell], &[]).await;
        assert!(ok, "{shell}: {err}");
        for word in ["serve", "collection", "token", "gc", "config"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (ok, _, _) = crate::opsutil::berth(dir.path(), &["completions", "tcsh"], &[]).await;
    assert!(!ok);
}
