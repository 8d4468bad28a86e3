//! Body and query extractors that turn every parse failure into a problem naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest body when the app has no configured limit (it always has one).
const FALLBACK_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The configured body limit, stored as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Reads a non-JSON body (a file upload): its media type must be one of `media` (415
/// otherwise) and its size at most the configured limit (413).
pub async fn read_file_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    media: &[&str],
) -> Result<web::BytesMut, ApiError> {
    let given = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !given.is_some_and(|m| media.iter().any(|t| m.eq_ignore_ascii_case(t))) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {}",
            media.join(" or ")
        )));
    }
    let limit = req
        .app_data::<web::Data<BodyLimit>>()
        .map_or(FALLBACK_BODY_LIMIT, |l| l.0);
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::InvalidJson(format!("could not read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "body must be at most {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON body: `Content-Type: application/json` required (415 otherwise), size-limited
/// (413), syntax errors are 400, and shape errors (unknown field, wrong type, missing field)
/// are 422 naming the field's path.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Parses JSON bytes into `T`, reporting the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object; serde would otherwise also read a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => ApiError::field("body", "must be a JSON object"),
            Err(e) => ApiError::InvalidJson(format!("body is not valid JSON: {e}")),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => {
                ApiError::InvalidJson(format!("body is not valid JSON: {inner}"))
            }
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                ApiError::field(field_of(&path, &message), message)
            }
        }
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidJson(format!("body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The field a data error is about. serde reports a missing field at its parent's path, so
/// the name is taken from the message ("missing field `name`").
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (p, Some(name)) => format!("{p}.{name}"),
        (p, None) => p.to_owned(),
    }
}

/// serde_json appends " at line 1 column 42" to messages; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map_or(FALLBACK_BODY_LIMIT, |l| l.0);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType(
                    "Content-Type must be application/json".into(),
                ));
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge(format!(
                    "body must be at most {limit} bytes"
                )));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::InvalidJson(format!("could not read body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "body must be at most {limit} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(ApiJson)
        })
    }
}

/// Query parameters; unknown or malformed ones are 422 naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // PostgreSQL text cannot hold NUL: refused here, naming the parameter, rather than
        // failing in the database.
        if let Some((name, _)) =
            form_urlencoded(req.query_string()).find(|(_, value)| value.contains('\0'))
        {
            return std::future::ready(Err(ApiError::field(
                name.into_owned(),
                "must not contain NUL characters",
            )));
        }
        let pairs = form_urlencoded(req.query_string());
        let de = serde_urlencoded::Deserializer::new(pairs);
        let result = serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "query".to_owned()
                } else {
                    path
                };
                ApiError::field(field, e.into_inner().to_string())
            });
        std::future::ready(result)
    }
}

fn form_urlencoded(q: &str) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(q.as_bytes())
}
