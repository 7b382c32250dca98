//! (in progress)

use super::{UiError, UiResult, Viewer};

pub async fn list(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn create(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn show(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn add_member(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn remove_member(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn delete(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
