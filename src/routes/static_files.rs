//! `GET /static/{path}`: the embedded CSS and JavaScript, revalidated cheaply by ETag.

use actix_web::http::header::{self, CacheControl, CacheDirective, EntityTag};
use actix_web::{web, HttpRequest, HttpResponse};

use super::pages::PageError;
use crate::assets;

pub async fn serve(
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let file = assets::static_file(&path).ok_or(PageError::NotFound)?;
    let hash = file.metadata.sha256_hash();
    let tag = EntityTag::new_strong(hash.iter().map(|byte| format!("{byte:02x}")).collect());
    // `no-cache` means "revalidate", not "do not store": a reload costs a 304, and a new release is seen at once.
    let cache = CacheControl(vec![CacheDirective::NoCache]);
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|candidate| candidate.trim() == tag.to_string())
        });
    if unchanged {
        return Ok(HttpResponse::NotModified()
            .insert_header(header::ETag(tag))
            .insert_header(cache)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header(header::ETag(tag))
        .insert_header(cache)
        .body(file.data.into_owned()))
}
