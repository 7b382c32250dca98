//! (in progress)

use super::{UiError, UiResult, Viewer};

pub async fn tokens(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn create_token(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn revoke_token(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn page(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
pub async fn password(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}
