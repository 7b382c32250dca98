//! The objects under the store's prefix with their age: fsck looks among them for objects
//! no database row accounts for (a kill between completing an upload and recording the
//! blob leaves one; so does a lost database).

use futures_util::TryStreamExt;
use object_store::ObjectStore;

use super::{S3Error, S3Store};

impl S3Store {
    /// Keys (relative to the prefix) of every object under it last modified before
    /// `cutoff` (unix seconds).
    pub async fn objects_before(&self, cutoff: i64) -> Result<Vec<String>, S3Error> {
        let root = if self.prefix.is_empty() { None } else { Some(self.path("")) };
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        self.store
            .list(root.as_ref())
            .try_filter_map(|meta| {
                let key = meta.location.as_ref().strip_prefix(&strip).map(str::to_owned);
                let old = meta.last_modified.timestamp() < cutoff;
                async move { Ok(key.filter(|_| old)) }
            })
            .try_collect()
            .await
    }
}
