//! The API router called in process while Leptos renders a page, so a page's first paint has
//! data without a second copy of any handler or a request over a socket (`app::client`).
//!
//! It is the bare API router, under no authentication layer: only server rendering reaches it,
//! and the page being rendered has passed whatever guards pages.

use std::future::Future;
use std::pin::Pin;

use app::client::LocalApi;
use axum::body::Body;
use axum::http::Request;
use axum::Router;

/// Answers bigger than this are cut off (a history page is far smaller).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// [`LocalApi`] over the API router.
#[derive(Debug, Clone)]
pub(super) struct RouterApi(pub(super) Router);

impl LocalApi for RouterApi {
    fn get(&self, path_and_query: String) -> Pin<Box<dyn Future<Output = (u16, String)> + Send>> {
        let router = self.0.clone();
        Box::pin(async move {
            let request = match Request::get(&path_and_query).body(Body::empty()) {
                Ok(request) => request,
                Err(error) => return (400, format!("{{\"error\": \"bad path: {error}\"}}")),
            };
            let response = super::routes::answer(router, request).await;
            let status = response.status().as_u16();
            match axum::body::to_bytes(response.into_body(), BODY_LIMIT).await {
                Ok(bytes) => (status, String::from_utf8_lossy(&bytes).into_owned()),
                Err(error) => {
                    tracing::warn!(%error, path = %path_and_query, "reading an in-process API answer failed");
                    (500, "{\"error\": \"answer unreadable\"}".to_owned())
                }
            }
        })
    }
}
