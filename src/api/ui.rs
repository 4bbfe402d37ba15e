//! The dashboard: `GET /` and `GET /ui/{path}`, static files from `assets/ui` carried in the
//! binary (uPlot vendored under `vendor/`). Nothing is fetched from the network and there is
//! no build step: the page is plain HTML, CSS and JavaScript modules that talk to the API and
//! the event stream with the token the person enters. Every build embeds the files (debug
//! builds too, so that the tests see what ships): a change to the page needs a rebuild.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::Embed;

use super::error::ApiError;

/// The dashboard's files.
#[derive(Embed)]
#[folder = "assets/ui/"]
struct Assets;

/// Mounts the dashboard's routes.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/ui", web::get().to(index))
        .route("/ui/", web::get().to(index))
        .route("/ui/{path:.*}", web::get().to(file));
}

async fn index(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, "index.html")
}

async fn file(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&req, &path)
}

/// Answers `path` from the embedded files, with its type and an ETag; 404 when absent.
fn serve(req: &HttpRequest, path: &str) -> Result<HttpResponse, ApiError> {
    let asset = Assets::get(path)
        .ok_or_else(|| ApiError::not_found(format!("no dashboard file {path}")))?;
    let etag = format!(
        "\"{}\"",
        asset.metadata.sha256_hash()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    // The page is small and changes with the binary: revalidate every time (cheap, 304).
    let cache = CacheControl(vec![CacheDirective::NoCache]);
    if fresh {
        return Ok(HttpResponse::NotModified()
            .insert_header(cache)
            .insert_header((header::ETAG, etag))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(asset.metadata.mimetype())
        .insert_header(cache)
        .insert_header((header::ETAG, etag))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; connect-src 'self'; img-src 'self'; \
             style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ))
        .body(asset.data.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_chart_library_are_embedded_with_its_licence() {
        for path in [
            "index.html",
            "vendor/uplot/uPlot.esm.js",
            "vendor/uplot/uPlot.min.css",
            "vendor/uplot/LICENSE",
        ] {
            assert!(Assets::get(path).is_some(), "{path} missing");
        }
        let page = Assets::get("index.html").unwrap();
        let text = String::from_utf8_lossy(&page.data);
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{text}"
        );
    }
}
