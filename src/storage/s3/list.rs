//! Multipart uploads no session knows (a kill between `CreateMultipartUpload` and the
//! session's row leaves one, billed until aborted). `object_store` has no call to list
//! them, so `ListMultipartUploads` goes out as a request presigned by `object_store`'s own
//! [`Signer`] (SigV4 from the same credential chain; no signing code here) and its XML
//! answer is read with `quick-xml`, both already in `object_store`'s dependency tree.

use std::time::{Duration, SystemTime};

use object_store::{
    multipart::MultipartStore,
    path::Path,
    signer::{SignedUrlOptions, Signer},
};
use serde::Deserialize;

use super::{S3Error, S3Store, upload_key};
use crate::{
    names::UploadId,
    storage::{Key, StaleSession},
};

/// Lifetime of the presigned listing request (it is sent at once).
const SIGNED_FOR: Duration = Duration::from_secs(60);
/// Pages of one listing, at most (1000 uploads each).
const MAX_PAGES: usize = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListResult {
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(rename = "Upload")]
    uploads: Vec<Upload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
    initiated: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> S3Error {
    S3Error::Generic { store: "S3", source: format!("ListMultipartUploads: {what}: {e}").into() }
}

impl S3Store {
    /// Multipart uploads under `<prefix>/uploads/` initiated more than `age` ago, whose key
    /// is an upload session's.
    pub async fn stale_multiparts(&self, age: Duration) -> Result<Vec<StaleSession>, S3Error> {
        let dir = format!("{}/", self.path(&Key::UploadsRoot.path()));
        let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("uploads", String::new()), ("prefix", dir.clone())];
            if let Some((key, id)) = &markers {
                query.push(("key-marker", key.clone()));
                query.push(("upload-id-marker", id.clone()));
            }
            let opts = SignedUrlOptions::new().with_query(query);
            let url = self.store.signed_url_opts(http::Method::GET, &Path::from(""), SIGNED_FOR, &opts).await?;
            let resp = self.http.get(url.as_str()).send().await.map_err(|e| failed("request", e))?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| failed("reading the answer", e))?;
            if !status.is_success() {
                return Err(failed(&format!("status {status}"), body.chars().take(300).collect::<String>()));
            }
            let page: ListResult = quick_xml::de::from_str(&body).map_err(|e| failed("parsing the answer", e))?;
            for upload in page.uploads {
                let Some(id) = upload.key.strip_prefix(&dir).and_then(|k| k.parse::<UploadId>().ok()) else {
                    continue;
                };
                // The key must be exactly the session's (never a tail, never another layout).
                if self.path(&upload_key(&id)).as_ref() != upload.key {
                    continue;
                }
                let initiated = humantime::parse_rfc3339_weak(upload.initiated.trim_end_matches('Z'))
                    .map_err(|e| failed(&format!("date {:?}", upload.initiated), e))?;
                if initiated < cutoff {
                    out.push(StaleSession { id, multipart: Some(upload.upload_id) });
                }
            }
            markers = match (page.is_truncated, page.next_key_marker, page.next_upload_id_marker) {
                (true, Some(key), Some(id)) => Some((key, id)),
                _ => return Ok(out),
            };
        }
        tracing::warn!("more than {MAX_PAGES} pages of multipart uploads; the rest wait for the next pass");
        Ok(out)
    }

    /// Aborts a multipart upload no session knows, and removes its tails.
    pub async fn abort_stale(&self, id: &UploadId, multipart: &String) -> Result<(), S3Error> {
        match self.store.abort_multipart(&self.path(&upload_key(id)), multipart).await {
            Ok(()) | Err(S3Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.delete_tails(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of AWS's documented answer (trimmed), truncated, with a key that is not a
    /// session's.
    #[test]
    fn parses_a_list_multipart_uploads_answer() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>reg/uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11</NextKeyMarker>
  <NextUploadIdMarker>VXBsb2FkIElE</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>reg/uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11</Key>
    <UploadId>VXBsb2FkIElE</UploadId>
    <Initiator><ID>arn:aws:iam::111122223333:user/x</ID><DisplayName>x</DisplayName></Initiator>
    <StorageClass>STANDARD</StorageClass>
    <Initiated>2010-11-10T20:48:33.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>reg/uploads/not-a-session</Key>
    <UploadId>b3RoZXI</UploadId>
    <Initiated>2010-11-10T20:49:33.000Z</Initiated>
  </Upload>
</ListMultipartUploadsResult>"#;
        let page: ListResult = quick_xml::de::from_str(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("VXBsb2FkIElE"));
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[0].upload_id, "VXBsb2FkIElE");
        let when = humantime::parse_rfc3339_weak(page.uploads[0].initiated.trim_end_matches('Z')).unwrap();
        assert_eq!(when.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_289_422_113);
        let empty: ListResult = quick_xml::de::from_str("<ListMultipartUploadsResult/>").unwrap();
        assert!(!empty.is_truncated && empty.uploads.is_empty());
    }
}
