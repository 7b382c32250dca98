//! The web interface (issue 11, `docs/ui.md`) in a real browser: Debian's Chromium, headless,
//! driven over WebDriver by fantoccini from the tests, against the in-process berth server.
//! Each flow signs in through the login form and clicks through pages as a person would;
//! what a page changed (or must not have changed) is checked through the registry and
//! management APIs, and images come from a real client (skopeo).
//!
//! `browser::driver` owns Chromium's lifetime, `browser::page` reads and works pages, and
//! `browser::setup` makes users, signs in and pushes.
//! `docs/screenshots.sh` regenerates `docs/screenshots/` through `browser::screenshots`.

mod console;
mod csrf;
mod driver;
mod flows;
mod page;
mod privacy;
mod screenshots;
mod setup;

pub use driver::Browser;

/// The driver itself: Chromium starts, renders a page, reports the navigation status and
/// console messages, and its whole process group is gone after `Drop`.
#[tokio::test]
async fn driver_starts_renders_and_cleans_up() {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
            let body =
                "<!doctype html><title>t</title><main><p id=p>hello</p><script>console.error('boom')</script></main>";
            let resp = format!(
                "HTTP/1.1 418 I'm a teapot\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    let Some(b) = Browser::start().await else { return };
    let pid = b.driver_pid();
    b.goto(&format!("http://{addr}/x")).await;
    assert_eq!(b.status().await, 418);
    assert_eq!(b.text("#p").await, "hello");
    let console = b.console().await;
    assert!(console.iter().any(|(level, m)| level == "SEVERE" && m.contains("boom")), "console: {console:?}");
    b.close().await;
    // Chromium's processes may linger a moment as zombies until they are reaped; none may
    // still be alive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let live = live_in_group(pid);
        if live.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "processes left alive in the browser's group: {live:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Processes of process group `group` that are not zombies, from `/proc/*/stat`.
fn live_in_group(group: u32) -> Vec<String> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid pgrp …`; comm may contain spaces, so split after the `)`.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.len() > 2 && fields[2] == group.to_string() && fields[0] != "Z" {
            live.push(head.to_string());
        }
    }
    live
}
