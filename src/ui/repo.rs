//! (in progress)

use super::{UiError, UiResult, Viewer};

pub async fn get(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn post(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
