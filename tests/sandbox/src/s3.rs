//! A minimal S3 (path-style, `rest-xml`), the service the sandbox evaluates permissions on: a
//! role session's request is allowed when its role's identity-based policy allows it within
//! the session's policies (see [`crate::iam`]), so a session narrowed by a session policy is
//! refused what the policy leaves out, with AWS's `AccessDenied` message.
//!
//! Operations: `ListBuckets` (`GET /`), `CreateBucket` (`PUT /b`), `HeadBucket`,
//! `ListObjectsV2`/`ListObjects` (`GET /b`), `PutObject` (`PUT /b/k`), `GetObject`,
//! `HeadObject`, `DeleteObject`. Requests are SigV4-signed for `s3` with credentials the
//! sandbox issued (`x-amz-content-sha256` must be the body's hash or `UNSIGNED-PAYLOAD`).
//! Objects live in memory. Not emulated: bucket ownership, bucket and object ACLs and policies
//! (every account sees every bucket), versioning, multipart uploads, copies, ranges,
//! checksums, presigned URLs, virtual-hosted addressing, aws-chunked uploads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ::http::{header, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::http::{escape_xml, HandlerResult, Req, Resp};
use crate::issued::IssuedCredential;
use crate::sigv4::{self, SigV4Error, SignedRequest};
use crate::Sandbox;

/// Whether a request is for S3: signed with an `s3` credential scope.
pub fn is_s3_request(req: &Req) -> bool {
    req.header("authorization")
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256") && a.contains("/s3/aws4_request"))
}

struct Object {
    body: Bytes,
    content_type: String,
    etag: String,
    modified: time::OffsetDateTime,
}

struct Bucket {
    created: time::OffsetDateTime,
    objects: BTreeMap<String, Object>,
}

/// The buckets, shared by every account.
#[derive(Default)]
pub struct State {
    buckets: Mutex<BTreeMap<String, Bucket>>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Resp {
    crate::http::xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
            escape_xml(code),
            escape_xml(message),
            uuid::Uuid::new_v4().simple()
        ),
    )
}

fn iso(t: time::OffsetDateTime) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    t.format(fmt).unwrap_or_default()
}

fn http_date(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(fmt).unwrap_or_default()
}

/// The caller: credentials the sandbox issued, unexpired, with a valid S3 signature.
fn authenticate(sb: &Sandbox, req: &Req) -> Result<IssuedCredential, Resp> {
    let headers = req.header_pairs();
    let declared = req.header("x-amz-content-sha256").unwrap_or_default();
    if declared.starts_with("STREAMING-") {
        return Err(error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "aws-chunked uploads are not emulated by the sandbox",
        ));
    }
    if declared != "UNSIGNED-PAYLOAD" && declared != hex::encode(Sha256::digest(&req.body)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        query: req.parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &req.body,
    };
    let denied = |code: &str, m: &str| error(StatusCode::FORBIDDEN, code, m);
    let map = |e: SigV4Error| match e {
        SigV4Error::Missing => denied("AccessDenied", "Access Denied"),
        SigV4Error::Incomplete(m) => {
            error(StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed", &m)
        }
        SigV4Error::Mismatch | SigV4Error::Skewed { .. } => {
            denied("SignatureDoesNotMatch", &e.to_string())
        }
    };
    let (cred, names, signature) = sigv4::parse_authorization(&signed).map_err(map)?;
    let issued = sb.issued.get(&cred.access_key_id).ok_or_else(|| {
        denied(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    })?;
    if !sigv4::is_region_name(&cred.region) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "AuthorizationHeaderMalformed",
            &format!(
                "The authorization header is malformed; the region '{}' is wrong",
                cred.region
            ),
        ));
    }
    sigv4::verify(
        &signed,
        &cred,
        &names,
        &signature,
        &issued.secret_access_key,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(map)?;
    if req.header("x-amz-security-token").unwrap_or_default() != issued.session_token {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidToken",
            "The provided token is malformed or otherwise invalid.",
        ));
    }
    if sb.clock.now() >= issued.expiration {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ExpiredToken",
            "The provided token has expired.",
        ));
    }
    Ok(issued)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The operation a request names, its IAM action and its resource ARN.
fn operation(
    method: &Method,
    bucket: Option<&str>,
    key: Option<&str>,
) -> Option<(&'static str, &'static str, String)> {
    let arn = |b: &str, k: Option<&str>| match k {
        Some(k) => format!("arn:aws:s3:::{b}/{k}"),
        None => format!("arn:aws:s3:::{b}"),
    };
    Some(match (method, bucket, key) {
        (&Method::GET, None, _) => (
            "ListBuckets",
            "s3:ListAllMyBuckets",
            "arn:aws:s3:::*".into(),
        ),
        (&Method::PUT, Some(b), None) => ("CreateBucket", "s3:CreateBucket", arn(b, None)),
        (&Method::HEAD, Some(b), None) => ("HeadBucket", "s3:ListBucket", arn(b, None)),
        (&Method::GET, Some(b), None) => ("ListObjects", "s3:ListBucket", arn(b, None)),
        (&Method::PUT, Some(b), Some(k)) => ("PutObject", "s3:PutObject", arn(b, Some(k))),
        (&Method::GET, Some(b), Some(k)) => ("GetObject", "s3:GetObject", arn(b, Some(k))),
        (&Method::HEAD, Some(b), Some(k)) => ("HeadObject", "s3:GetObject", arn(b, Some(k))),
        (&Method::DELETE, Some(b), Some(k)) => ("DeleteObject", "s3:DeleteObject", arn(b, Some(k))),
        _ => return None,
    })
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    let path = req.path().trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(percent_decode(b)), Some(percent_decode(k))),
        Some((b, _)) => (Some(percent_decode(b)), None),
        None if path.is_empty() => (None, None),
        None => (Some(percent_decode(path)), None),
    };
    let Some((op, action, resource)) = operation(req.method(), bucket.as_deref(), key.as_deref())
    else {
        return Ok(error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "this S3 operation is not emulated by the sandbox",
        ));
    };
    sb.enter(&format!("s3:{op}")).await?;
    let head = req.method() == Method::HEAD;
    let strip = |r: Resp| if head { body_less(r) } else { r };
    let caller = match authenticate(sb, req) {
        Ok(c) => c,
        Err(r) => return Ok(strip(r)),
    };
    let outcome = crate::iam::session_outcome(sb, &caller, action, &resource);
    if let Some(message) = outcome.denial(&caller.arn, action, &resource) {
        tracing::info!(caller = %caller.arn, action, resource, "s3: access denied");
        return Ok(strip(error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &message,
        )));
    }
    let state = sb.state::<State>();
    let mut buckets = state.buckets.lock().expect("s3 lock");
    let now = sb.clock.now();
    let no_bucket = |b: &str| {
        error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            &format!("The specified bucket {b} does not exist"),
        )
    };
    let reply = match (op, bucket.as_deref(), key.as_deref()) {
        ("ListBuckets", _, _) => {
            let list: String = buckets
                .iter()
                .map(|(name, b)| {
                    format!(
                        "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
                        escape_xml(name),
                        iso(b.created)
                    )
                })
                .collect();
            crate::http::xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{}</ID><DisplayName>sandbox</DisplayName></Owner><Buckets>{list}</Buckets></ListAllMyBucketsResult>",
                    caller.account_id
                ),
            )
        }
        ("CreateBucket", Some(b), _) => {
            let valid = (3..=63).contains(&b.len())
                && b.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'
                });
            if !valid {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidBucketName",
                    "The specified bucket is not valid.",
                )
            } else if buckets.contains_key(b) {
                error(
                    StatusCode::CONFLICT,
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                )
            } else {
                buckets.insert(
                    b.to_string(),
                    Bucket {
                        created: now,
                        objects: BTreeMap::new(),
                    },
                );
                let mut r = crate::http::empty(StatusCode::OK);
                if let Ok(v) = HeaderValue::from_str(&format!("/{b}")) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
        }
        ("HeadBucket", Some(b), _) => match buckets.get(b) {
            Some(_) => crate::http::empty(StatusCode::OK),
            None => no_bucket(b),
        },
        ("ListObjects", Some(b), _) => match buckets.get(b) {
            None => no_bucket(b),
            Some(bk) => {
                let q = req.query();
                let prefix = q.get("prefix").cloned().unwrap_or_default();
                let items: Vec<_> = bk
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .take(1000)
                    .collect();
                let contents: String = items
                    .iter()
                    .map(|(k, o)| {
                        format!(
                            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                            escape_xml(k),
                            iso(o.modified),
                            o.etag,
                            o.body.len()
                        )
                    })
                    .collect();
                crate::http::xml(
                    StatusCode::OK,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
                        escape_xml(b),
                        escape_xml(&prefix),
                        items.len()
                    ),
                )
            }
        },
        ("PutObject", Some(b), Some(k)) => match buckets.get_mut(b) {
            None => no_bucket(b),
            Some(_) if req.header("x-amz-copy-source").is_some() => error(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "CopyObject is not emulated by the sandbox",
            ),
            Some(bk) => {
                // Not MD5 as S3's: the sandbox has no MD5, and clients do not check it.
                let etag = hex::encode(&Sha256::digest(&req.body)[..16]);
                bk.objects.insert(
                    k.to_string(),
                    Object {
                        body: req.body.clone(),
                        content_type: req
                            .header("content-type")
                            .unwrap_or("binary/octet-stream")
                            .to_string(),
                        etag: etag.clone(),
                        modified: now,
                    },
                );
                let mut r = crate::http::empty(StatusCode::OK);
                if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
                    r.headers_mut().insert(header::ETAG, v);
                }
                r
            }
        },
        ("GetObject" | "HeadObject", Some(b), Some(k)) => match buckets.get(b) {
            None => no_bucket(b),
            Some(bk) => match bk.objects.get(k) {
                None => error(
                    StatusCode::NOT_FOUND,
                    "NoSuchKey",
                    "The specified key does not exist.",
                ),
                Some(o) => {
                    let mut r = hyper::Response::new(http_body_util::Full::new(o.body.clone()));
                    let h = r.headers_mut();
                    for (name, value) in [
                        (header::CONTENT_TYPE, o.content_type.clone()),
                        (header::ETAG, format!("\"{}\"", o.etag)),
                        (header::LAST_MODIFIED, http_date(o.modified)),
                    ] {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            h.insert(name, v);
                        }
                    }
                    r
                }
            },
        },
        ("DeleteObject", Some(b), Some(k)) => match buckets.get_mut(b) {
            None => no_bucket(b),
            Some(bk) => {
                bk.objects.remove(k);
                crate::http::empty(StatusCode::NO_CONTENT)
            }
        },
        _ => error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "not emulated",
        ),
    };
    Ok(strip(reply))
}

/// A HEAD reply: the status and headers of the GET one, no body.
fn body_less(r: Resp) -> Resp {
    let (parts, body) = r.into_parts();
    let len = http_body_util::BodyExt::boxed(body);
    let size = hyper::body::Body::size_hint(&len).exact().unwrap_or(0);
    let mut r = hyper::Response::from_parts(parts, http_body_util::Full::new(Bytes::new()));
    if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_name_actions_and_resources() {
        assert_eq!(
            operation(&Method::PUT, Some("b"), Some("k/x")).unwrap(),
            (
                "PutObject",
                "s3:PutObject",
                "arn:aws:s3:::b/k/x".to_string()
            )
        );
        assert_eq!(
            operation(&Method::GET, None, None).unwrap().1,
            "s3:ListAllMyBuckets"
        );
        assert_eq!(
            operation(&Method::GET, Some("b"), None).unwrap().1,
            "s3:ListBucket"
        );
        assert!(operation(&Method::POST, Some("b"), None).is_none());
        assert_eq!(percent_decode("k%2Fx%20y"), "k/x y");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
