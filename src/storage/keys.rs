//! Storage keys: the one place they are formatted (layout drawn in `super`).

use crate::{digest::Digest, names::UploadId};

/// A storage key.
pub enum Key<'a> {
    Blob(&'a Digest),
    UploadDir(&'a UploadId),
    UploadData(&'a UploadId),
    /// An S3 upload's multipart object, which becomes the blob on completion.
    UploadObject(&'a UploadId),
    /// Where an S3 upload's tail objects live, each under a fresh name.
    UploadTails(&'a UploadId),
    /// An S3 upload's tail object from before tails had their own names.
    UploadLegacyTail(&'a UploadId),
    /// Where every upload session lives.
    UploadsRoot,
    /// A blob set aside by garbage collection; the nonce keeps two collectors apart.
    Trash(&'a Digest, &'a str),
    /// A small object the S3 bucket check writes and deletes (and readiness looks up).
    Probe(&'a str),
}

impl Key<'_> {
    /// The key as a relative, `/`-separated path. The only place keys are formatted.
    pub fn path(&self) -> String {
        match self {
            Key::Blob(d) => {
                let hex = d.hex();
                format!("blobs/{}/{}/{}", d.algorithm().as_str(), &hex[..2], hex)
            }
            Key::UploadDir(id) | Key::UploadObject(id) => format!("uploads/{id}"),
            Key::UploadData(id) => format!("uploads/{id}/data"),
            Key::UploadTails(id) => format!("uploads/{id}.tails"),
            Key::UploadLegacyTail(id) => format!("uploads/{id}.tail"),
            Key::UploadsRoot => "uploads".to_owned(),
            Key::Probe(nonce) => format!("probes/{nonce}"),
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
        assert_eq!(Key::UploadObject(&id).path(), "uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11");
        assert_eq!(Key::UploadTails(&id).path(), "uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11.tails");
        assert_eq!(
            Key::Trash(&d, "n1").path(),
            "trash/sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855-n1"
        );
    }
}
