//! What the access log needs to know about a request that only the handlers learn: the
//! authenticated principal. The access middleware runs the handler inside a task-local
//! [`RequestContext`]; authentication code calls [`set_principal`] once it has verified
//! who is calling. Outside a request (CLI, tests of the domain) the call does nothing.

use std::sync::{Arc, OnceLock};

tokio::task_local! {
    static CONTEXT: Arc<RequestContext>;
}

/// Per-request facts shared between the access middleware and the handler.
#[derive(Debug, Default)]
pub struct RequestContext {
    principal: OnceLock<String>,
}

impl RequestContext {
    /// The verified caller (a username; empty for an anonymous token), if any was verified.
    pub fn principal(&self) -> Option<&str> {
        self.principal.get().map(String::as_str)
    }

    /// Runs `fut` with this context current.
    pub async fn scope<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        CONTEXT.scope(self, fut).await
    }
}

/// Records the verified caller of the current request (the first call wins).
pub fn set_principal(name: &str) {
    let _ = CONTEXT.try_with(|c| c.principal.set(name.to_owned()));
}
