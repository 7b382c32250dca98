//! (in progress)

use super::{UiError, UiResult, Viewer};

pub async fn page(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn add(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn remove(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
