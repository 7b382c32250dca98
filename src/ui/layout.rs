//! The page frame (header, navigation, sign-out form, main landmark) and the small pieces
//! every page shares: CSRF field, search box, pager, copyable commands.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};

use super::{PAGE_SIZE, request::Chrome};
use crate::manage;

/// Asset URLs carry the version, so a browser's cached copy (an hour) never outlives an upgrade.
const ASSET_CSS: &str = concat!("/ui/static/app.css?v=", env!("CARGO_PKG_VERSION"));
const ASSET_JS: &str = concat!("/ui/static/app.js?v=", env!("CARGO_PKG_VERSION"));

/// A whole page.
pub fn page(chrome: &Chrome, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · berth" }
                // No favicon request (it would be a 404 in every console).
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(ASSET_CSS);
                script src=(ASSET_JS) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/ui/" { "berth" }
                        ul {
                            li { a href="/ui/" { "Collections" } }
                            @if chrome.username.is_some() {
                                li { a href="/ui/teams" { "Teams" } }
                                li { a href="/ui/tokens" { "API tokens" } }
                                li { a href="/ui/account" { "Account" } }
                                @if chrome.superuser {
                                    li { a href="/ui/users" { "Users" } }
                                }
                            }
                        }
                    }
                    div.who {
                        @if let Some(name) = &chrome.username {
                            span.user { "Signed in as " strong { (name) } }
                            form #logout-form method="post" action="/ui/logout" {
                                (csrf_field(chrome.csrf.as_deref().unwrap_or("")))
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a.button href="/ui/login" { "Sign in" }
                        }
                    }
                }
                main #main {
                    @if let Some(f) = chrome.flash { p #flash .notice role="status" { (f) } }
                    (content)
                }
                footer { "berth · OCI registry" }
            }
        }
    }
}

/// The page of a failed request. A hidden and an absent resource give the same page.
pub fn error_page(chrome: &Chrome, status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        chrome,
        title,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/ui/" { "Back to collections" } }
        },
    )
}

/// A 200 HTML answer.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

pub fn ok(chrome: &Chrome, title: &str, content: Markup) -> Response {
    html_response(StatusCode::OK, page(chrome, title, content))
}

/// Post/redirect/get.
pub fn see_other(location: &str) -> Response {
    axum::response::Redirect::to(location).into_response()
}

pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A command with a copy button (the button works with JavaScript; the text is selectable).
pub fn command(text: &str) -> Markup {
    html! {
        div.command {
            code.pull-command { (text) }
            button.copy type="button" data-copy=(text) aria-label=(format!("Copy: {text}")) { "Copy" }
        }
    }
}

/// A search box over a list, keeping the viewer on the same page.
pub fn search(action: &str, q: &str, label: &str) -> Markup {
    html! {
        form.search role="search" method="get" action=(action) {
            label for="q" { (label) }
            input #q type="search" name="q" value=(q);
            button type="submit" { "Search" }
        }
    }
}

/// `?page=` and `?q=` of a list page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    pub page: Option<String>,
}

/// Every item of a keyset-paged management listing (`fetch(last)` gives the page after
/// `last` and whether more follow), 1,000 at a time; `key` names an item for the next page.
pub async fn all_pages<T, F, Fut>(mut fetch: F, key: impl Fn(&T) -> &str) -> manage::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = manage::Result<(Vec<T>, bool)>>,
{
    let mut all = Vec::new();
    let mut last = String::new();
    loop {
        let (items, more) = fetch(last).await?;
        last = items.last().map(|i| key(i).to_owned()).unwrap_or_default();
        all.extend(items);
        if !more || last.is_empty() {
            return Ok(all);
        }
    }
}

impl ListQuery {
    /// 1-based page number; anything unreadable is page 1.
    pub fn page(&self) -> usize {
        self.page.as_deref().and_then(|p| p.parse::<usize>().ok()).filter(|p| *p >= 1).unwrap_or(1)
    }

    /// Items whose name contains the query (case-insensitive), one page of them, and the
    /// number of pages.
    pub fn slice<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> (Vec<T>, usize, usize) {
        let q = self.q.trim().to_lowercase();
        let hits: Vec<T> = items.into_iter().filter(|i| q.is_empty() || name(i).to_lowercase().contains(&q)).collect();
        let total = hits.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = self.page().min(pages);
        let items = hits.into_iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
        (items, page, total)
    }
}

/// Previous/next links for a list of `total` items shown `PAGE_SIZE` a page.
pub fn pager(base: &str, q: &str, page: usize, total: usize) -> Markup {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let link = |p: usize| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            s.append_pair("q", q);
        }
        s.append_pair("page", &p.to_string());
        format!("{base}?{}", s.finish())
    };
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
            }
        }
    }
}
