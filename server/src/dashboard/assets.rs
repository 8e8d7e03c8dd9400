//! The browser bundle and the `public/` files: embedded in the library by `build.rs`, or read
//! from a site root on disk (`LEPTOS_SITE_ROOT`, what `cargo leptos watch` rebuilds).
//!
//! Embedding is what lets a team's binary serve a working dashboard with no WASM toolchain of
//! its own. The bundle must come from the same `celeriac-app` source the server renders with,
//! or hydration fails; both sides are built from this crate's version, so they match.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/site.rs"));
}

/// The site root used when nothing is embedded and `LEPTOS_SITE_ROOT` is unset, relative to
/// the working directory (where `scripts/build-site.sh` writes).
const DEFAULT_SITE_ROOT: &str = "target/site";

/// Where the dashboard's static files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Assets {
    /// Compiled into the binary.
    Embedded,
    /// A built site on disk.
    Dir(PathBuf),
}

impl Assets {
    /// `site_root` when one is given; else the embedded bundle; else `target/site`.
    pub(crate) fn choose(site_root: Option<&Path>) -> Assets {
        match site_root {
            Some(site_root) => Assets::Dir(site_root.to_owned()),
            None if !embedded::FILES.is_empty() => Assets::Embedded,
            None => Assets::Dir(PathBuf::from(DEFAULT_SITE_ROOT)),
        }
    }

    /// The directory Leptos' file handler reads: the site root, or (embedded) a path that holds
    /// nothing, so only the embedded files are served.
    pub(crate) fn site_root(&self) -> PathBuf {
        match self {
            Assets::Embedded => PathBuf::from("/nonexistent/celeriac-embedded-site"),
            Assets::Dir(site_root) => site_root.clone(),
        }
    }

    /// Files of the bundle that are missing: pages would render and never hydrate.
    pub(crate) fn missing(&self, bundle: &[String]) -> Vec<String> {
        bundle
            .iter()
            .filter(|file| match self {
                Assets::Embedded => embedded_file(&format!("/pkg/{file}")).is_none(),
                Assets::Dir(site_root) => !site_root.join("pkg").join(file).is_file(),
            })
            .map(|file| match self {
                Assets::Embedded => format!("(embedded) pkg/{file}"),
                Assets::Dir(site_root) => site_root.join("pkg").join(file).display().to_string(),
            })
            .collect()
    }

    /// What start-up logs say about the assets.
    pub(crate) fn describe(&self) -> String {
        match self {
            Assets::Embedded => format!("embedded ({} files)", embedded::FILES.len()),
            Assets::Dir(site_root) => site_root.display().to_string(),
        }
    }
}

/// The embedded file at `path` (`/pkg/celeriac.js`, `/favicon.svg`): its bytes and entity tag.
fn embedded_file(path: &str) -> Option<(&'static [u8], &'static str)> {
    embedded::FILES
        .iter()
        .find(|(file, _, _)| *file == path)
        .map(|(_, bytes, etag)| (*bytes, *etag))
}

/// Answers a GET for `path` (relative to the site root) from the embedded files; `None` when
/// there is no such file.
///
/// The names carry no content hash, so browsers revalidate every load (`no-cache`) and get a
/// 304 while the `ETag` (the content's hash) is unchanged.
pub(crate) fn embedded_response(path: &str, request_headers: &HeaderMap) -> Option<Response> {
    let (bytes, etag) = embedded_file(path)?;
    let unchanged = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(bytes));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    Some(response)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_site_root_wins_over_the_embedded_bundle() {
        let chosen = Assets::choose(Some(Path::new("/srv/site")));
        assert_eq!(chosen, Assets::Dir(PathBuf::from("/srv/site")));
    }

    #[test]
    fn without_a_site_root_the_embedded_bundle_is_used_when_there_is_one() {
        let chosen = Assets::choose(None);
        if embedded::FILES.is_empty() {
            assert_eq!(chosen, Assets::Dir(PathBuf::from(DEFAULT_SITE_ROOT)));
        } else {
            assert_eq!(chosen, Assets::Embedded);
        }
    }

    #[test]
    fn an_embedded_file_is_revalidated_by_its_entity_tag() {
        let Some((path, _, etag)) = embedded::FILES.first() else {
            return; // built without a bundle: nothing embedded to serve
        };
        let response = embedded_response(path, &HeaderMap::new()).expect("an embedded file");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::ETAG], *etag);

        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, HeaderValue::from_static(etag));
        let response = embedded_response(path, &conditional).expect("an embedded file");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(embedded_response("/pkg/nothing-here.js", &HeaderMap::new()).is_none());
    }
}
