//! (in progress)

use super::{UiError, UiResult, Viewer};

pub async fn users(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn create_user(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn update_user(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
