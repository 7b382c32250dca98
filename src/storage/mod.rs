//! Blob storage. One function ([`Key::path`]) formats every storage key:
//!
//! ```text
//! <root>/
//! ├── blobs/<alg>/<first 2 hex>/<hex>   verified, immutable content
//! ├── uploads/<uuid>/data               bytes of an upload session in progress
//! └── trash/<alg>-<hex>-<nonce>         a blob garbage collection is about to delete
//! ```
//!
//! Storage only maps keys to bytes; which blob is visible where, and upload offsets and
//! hash states, live in the database (see `crate::registry`).

mod fs;

pub use fs::{FsStore, UploadWriter};

use crate::{digest::Digest, names::UploadId};

/// A storage key.
pub enum Key<'a> {
    Blob(&'a Digest),
    UploadDir(&'a UploadId),
    UploadData(&'a UploadId),
    /// A blob set aside by garbage collection; the nonce keeps two collectors apart.
    Trash(&'a Digest, &'a str),
}

impl Key<'_> {
    /// The key as a relative, `/`-separated path. The only place keys are formatted.
    pub fn path(&self) -> String {
        match self {
            Key::Blob(d) => {
                let hex = d.hex();
                format!("blobs/{}/{}/{}", d.algorithm().as_str(), &hex[..2], hex)
            }
            Key::UploadDir(id) => format!("uploads/{id}"),
            Key::UploadData(id) => format!("uploads/{id}/data"),
            Key::Trash(d, nonce) => format!("trash/{}-{}-{nonce}", d.algorithm().as_str(), d.hex()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        assert_eq!(
            Key::Blob(&d).path(),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let id: UploadId = "6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11".parse().unwrap();
        assert_eq!(Key::UploadData(&id).path(), "uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11/data");
    }
}
