//! Reading log buckets: `s3://bucket/prefix` listed and fetched through `object_store`, with
//! the standard AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, instance and container credentials)
//! and an explicit endpoint for S3-compatible stores.

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// A bucket and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (a folder: `AWSLogs/123456789012/CloudTrail/`), possibly empty.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(text: &str) -> Result<S3Url, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{text:?} is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text:?} names no bucket"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// `s3://bucket/key` for an object of this bucket.
    pub fn object_url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    /// Its key.
    pub key: String,
    /// Its location as listed (what reads use: no re-encoding of the key).
    pub location: Path,
    /// Its size in bytes.
    pub size: u64,
    /// Its entity tag (changes when the object does).
    pub etag: Option<String>,
}

/// A bucket to read.
#[derive(Debug, Clone)]
pub struct S3Source {
    store: AmazonS3,
    url: S3Url,
}

impl S3Source {
    /// A reader of `url`'s bucket. `endpoint` overrides `AWS_ENDPOINT_URL`; an `http://`
    /// endpoint (a local test store) is allowed explicitly.
    pub fn new(url: &S3Url, endpoint: Option<&str>) -> Result<S3Source, String> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&url.bucket);
        let endpoint = endpoint.map(str::to_string).or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok()
        });
        if let Some(endpoint) = &endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .build()
            .map_err(|error| format!("S3 configuration: {error}"))?;
        Ok(S3Source {
            store,
            url: url.clone(),
        })
    }

    /// The bucket and prefix read.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Every object under the prefix, in key order.
    pub async fn list(&self) -> Result<Vec<S3Object>, String> {
        let prefix = self.url.prefix.trim_end_matches('/');
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        let mut objects: Vec<S3Object> = self
            .store
            .list(prefix.as_ref())
            .map_ok(|meta| S3Object {
                key: meta.location.to_string(),
                location: meta.location,
                size: meta.size,
                etag: meta.e_tag,
            })
            .try_collect()
            .await
            .map_err(|error| {
                format!("listing {}: {error}", self.url.object_url(&self.url.prefix))
            })?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// An object's bytes.
    pub async fn get(&self, object: &S3Object) -> Result<Vec<u8>, String> {
        self.get_with_signature(object)
            .await
            .map(|(bytes, _)| bytes)
    }

    /// An object's bytes and the `signature` of its user metadata (`x-amz-meta-signature`,
    /// where CloudTrail keeps a digest file's signature).
    pub async fn get_with_signature(
        &self,
        object: &S3Object,
    ) -> Result<(Vec<u8>, Option<String>), String> {
        let key = object.key.as_str();
        let result = self
            .store
            .get(&object.location)
            .await
            .map_err(|error| format!("reading {}: {error}", self.url.object_url(key)))?;
        let signature = result
            .attributes
            .get(&object_store::Attribute::Metadata("signature".into()))
            .map(|value| value.to_string());
        let bytes = result
            .bytes()
            .await
            .map_err(|error| format!("reading {}: {error}", self.url.object_url(key)))?;
        Ok((bytes.to_vec(), signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = S3Url::parse("s3://logs/AWSLogs/1/CloudTrail/").expect("url");
        assert_eq!(url.bucket, "logs");
        assert_eq!(url.prefix, "AWSLogs/1/CloudTrail/");
        assert_eq!(url.object_url("a/b.gz"), "s3://logs/a/b.gz");
        assert_eq!(S3Url::parse("s3://logs").expect("url").prefix, "");
        assert!(S3Url::parse("s3:///x").is_err());
        assert!(S3Url::parse("/tmp/x").is_err());
    }
}
