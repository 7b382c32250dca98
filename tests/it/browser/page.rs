//! Reading and working pages as a person would: navigate, read text and the HTTP status,
//! fill forms and click their buttons or links, waiting for the page each click leads to.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::elements::Element;
use serde_json::Value;

use super::Browser;

impl Browser {
    /// Navigates to `url` and waits for the load.
    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The current page's path and query (`/ui/c/x?page=2`).
    pub async fn path(&self) -> String {
        let url = self.client().current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The HTTP status of the document now shown (Navigation Timing's `responseStatus`).
    pub async fn status(&self) -> u16 {
        let v = self
            .client()
            .execute("return performance.getEntriesByType('navigation')[0].responseStatus;", vec![])
            .await
            .expect("read navigation status");
        v.as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or_else(|| panic!("no navigation status: {v}"))
    }

    /// The whole document as the browser serialises it.
    pub async fn source(&self) -> String {
        self.client().source().await.expect("page source")
    }

    /// The rendered text of `<main>` (or `<body>` without one).
    pub async fn main_text(&self) -> String {
        let v = self
            .client()
            .execute("return (document.querySelector('main') || document.body).innerText;", vec![])
            .await
            .expect("read main text");
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no `{css}` on {}: {e}\n{}", self.path().await, self.body_text().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client().find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find_all `{css}`: {e}"))
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The rendered text of the whole `<body>` (header included); empty when there is none.
    pub async fn body_text(&self) -> String {
        self.client()
            .execute("return document.body ? document.body.innerText : '';", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// Fills the form `form_css` (text inputs, selects and radio buttons by value, checkboxes
    /// by "on"/"off")
    /// and submits it by clicking its submit button, as a person would; waits for the next
    /// page to load.
    pub async fn submit_form(&self, form_css: &str, fields: &[(&str, &str)]) {
        let form = self.find(form_css).await;
        for (name, value) in fields {
            let input = form
                .find(Locator::Css(&format!("[name=\"{name}\"]")))
                .await
                .unwrap_or_else(|e| panic!("form `{form_css}` has no field `{name}`: {e}"));
            if input.attr("type").await.ok().flatten().as_deref() == Some("radio") {
                let choice = format!("[name=\"{name}\"][value=\"{value}\"]");
                let radio = form
                    .find(Locator::Css(&choice))
                    .await
                    .unwrap_or_else(|e| panic!("form `{form_css}` has no choice `{choice}`: {e}"));
                radio.click().await.unwrap_or_else(|e| panic!("choose {choice}: {e}"));
                continue;
            }
            fill(&input, name, value).await;
        }
        self.click_submit(&form).await;
    }

    /// Clicks the submit button of `form` and waits until the page it leads to is loaded.
    pub async fn click_submit(&self, form: &Element) {
        let button = form
            .find(Locator::Css("button:not([type=button]):not([type=reset]), input[type=submit]"))
            .await
            .expect("a form without a submit button");
        let before = self.navigation_id().await;
        button.click().await.expect("click submit");
        self.wait_for_new_document(&before).await;
    }

    /// Clicks the link `css` and waits until the page it leads to is loaded.
    pub async fn follow(&self, css: &str) {
        let link = self.find(css).await;
        let before = self.navigation_id().await;
        link.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.wait_for_new_document(&before).await;
    }

    /// An id of the current document (its time origin), to notice a navigation.
    async fn navigation_id(&self) -> String {
        let v = self.client().execute("return String(performance.timeOrigin);", vec![]).await.unwrap_or(Value::Null);
        v.to_string()
    }

    async fn wait_for_new_document(&self, before: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .client()
                .execute("return document.readyState;", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            if self.navigation_id().await != before && ready.as_deref() == Some("complete") {
                return;
            }
            assert!(Instant::now() < deadline, "the click did not lead to a new page within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn fill(input: &Element, name: &str, value: &str) {
    let kind = input.attr("type").await.ok().flatten().unwrap_or_default();
    let tag = input.tag_name().await.unwrap_or_default();
    if tag == "select" {
        input.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in `{name}`: {e}"));
    } else if kind == "checkbox" {
        let want = matches!(value, "on" | "true" | "1");
        if input.is_selected().await.unwrap_or(false) != want {
            input.click().await.unwrap_or_else(|e| panic!("toggle checkbox `{name}`: {e}"));
        }
    } else {
        input.clear().await.unwrap_or_else(|e| panic!("clear `{name}` ({tag} type {kind:?}): {e}"));
        input.send_keys(value).await.unwrap_or_else(|e| panic!("type into `{name}`: {e}"));
    }
}
