//! [`Api`]: how pages read the dashboard's JSON API, the same paths on both sides.
//!
//! - In the browser it is `fetch` of the prefixed URL, same-origin credentials, and the CSRF
//!   token of the page's `<meta name="csrf-token">` (when the server puts one there) on POSTs.
//! - During server rendering it is an in-process call of the API router through [`LocalApi`],
//!   which the server provides as context; no socket, no second copy of any handler.
//!
//! So a page's `Resource` fetches with the same code on both sides, its first paint carries
//! data, and hydration reuses that data instead of fetching again.

use std::fmt;

#[cfg(feature = "ssr")]
use leptos::prelude::use_context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::paths;

/// Why a call failed: the HTTP status when there was one, and the API's `error` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchError {
    /// The status of the answer; `None` when no answer arrived.
    pub status: Option<u16>,
    /// What went wrong, fit to show.
    pub message: String,
}

impl fmt::Display for FetchError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(formatter, "{status}: {}", self.message),
            None => formatter.write_str(&self.message),
        }
    }
}

impl FetchError {
    fn transport(message: impl Into<String>) -> FetchError {
        FetchError {
            status: None,
            message: message.into(),
        }
    }

    /// The API answered 404 (no such task, yet).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

/// The server's side of [`Api`] during rendering: answers a GET of an API path
/// (`/api/overview?x=y`, no prefix) with its status and body.
#[cfg(feature = "ssr")]
pub trait LocalApi: Send + Sync + 'static {
    /// Performs the GET.
    fn get(
        &self,
        path_and_query: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = (u16, String)> + Send>>;
}

/// The context the server provides so server rendering can read the API in process.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct LocalApiContext(pub std::sync::Arc<dyn LocalApi>);

#[cfg(feature = "ssr")]
impl fmt::Debug for LocalApiContext {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("LocalApiContext")
    }
}

/// A handle to the API; build it in a component ([`use_api`]) and move clones into futures.
#[derive(Debug, Clone)]
pub struct Api {
    prefix: String,
    #[cfg(feature = "ssr")]
    local: Option<LocalApiContext>,
}

/// The API as seen from the current component.
pub fn use_api() -> Api {
    Api {
        prefix: paths::prefix(),
        #[cfg(feature = "ssr")]
        local: use_context::<LocalApiContext>(),
    }
}

fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, FetchError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|error| FetchError {
            status: Some(status),
            message: format!("unexpected answer: {error}"),
        });
    }
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect());
    Err(FetchError {
        status: Some(status),
        message,
    })
}

impl Api {
    /// The browser URL of an API path: `url("/api/overview")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// GETs `path` (`/api/...`, with its query) and decodes the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, FetchError> {
        #[cfg(feature = "ssr")]
        {
            let Some(local) = &self.local else {
                return Err(FetchError::transport("the API is not available here"));
            };
            let (status, body) = local.0.get(path.to_owned()).await;
            decode(status, &body)
        }
        #[cfg(not(feature = "ssr"))]
        {
            let (status, body) = browser::request("GET", self.url(path), None).await?;
            decode(status, &body)
        }
    }

    /// POSTs to `path` (state changes: retry, revoke); only the browser does this.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, FetchError> {
        #[cfg(feature = "ssr")]
        {
            let _ = path;
            Err(FetchError::transport("POST is only sent by the browser"))
        }
        #[cfg(not(feature = "ssr"))]
        {
            let (status, body) = browser::request("POST", self.url(path), None).await?;
            decode(status, &body)
        }
    }

    /// POSTs `body` as JSON to `path` (creating or editing something); only the browser does
    /// this. A 4xx answer's `error` message (e.g. a crontab field's problem) comes back in the
    /// [`FetchError`].
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, FetchError> {
        let body = serde_json::to_string(body).map_err(|error| {
            FetchError::transport(format!("cannot encode the request: {error}"))
        })?;
        #[cfg(feature = "ssr")]
        {
            let _ = (path, body);
            Err(FetchError::transport("POST is only sent by the browser"))
        }
        #[cfg(not(feature = "ssr"))]
        {
            let (status, answer) = browser::request("POST", self.url(path), Some(body)).await?;
            decode(status, &answer)
        }
    }
}

/// `fetch` through `web_sys`.
#[cfg(not(feature = "ssr"))]
mod browser {
    use super::FetchError;

    #[cfg(feature = "hydrate")]
    pub(super) async fn request(
        method: &str,
        url: String,
        body: Option<String>,
    ) -> Result<(u16, String), FetchError> {
        use wasm_bindgen::JsCast;
        use wasm_bindgen_futures::JsFuture;

        let method = method.to_owned();
        // `fetch`'s futures stay on the browser's only thread; the wrapper satisfies the
        // `Send` bound of Leptos' resources.
        send_wrapper::SendWrapper::new(async move {
            let failed = |error: wasm_bindgen::JsValue| {
                FetchError::transport(format!("request failed: {error:?}"))
            };
            let window = web_sys::window().ok_or_else(|| FetchError::transport("no window"))?;
            let init = web_sys::RequestInit::new();
            init.set_method(&method);
            init.set_credentials(web_sys::RequestCredentials::SameOrigin);
            if let Some(body) = &body {
                init.set_body(&wasm_bindgen::JsValue::from_str(body));
            }
            let request = web_sys::Request::new_with_str_and_init(&url, &init).map_err(failed)?;
            let headers = request.headers();
            headers.set("Accept", "application/json").map_err(failed)?;
            if body.is_some() {
                headers
                    .set("Content-Type", "application/json")
                    .map_err(failed)?;
            }
            if method != "GET" {
                if let Some(token) = csrf_token(&window) {
                    headers.set("X-CSRF-Token", &token).map_err(failed)?;
                }
            }
            let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
                .await
                .map_err(failed)?
                .dyn_into()
                .map_err(|_| FetchError::transport("fetch did not return a Response"))?;
            let status = response.status();
            let text = JsFuture::from(response.text().map_err(failed)?)
                .await
                .map_err(failed)?
                .as_string()
                .unwrap_or_default();
            Ok((status, text))
        })
        .await
    }

    /// The token a CSRF-checking server puts in the page, if any.
    #[cfg(feature = "hydrate")]
    fn csrf_token(window: &web_sys::Window) -> Option<String> {
        window
            .document()?
            .query_selector("meta[name=csrf-token]")
            .ok()??
            .get_attribute("content")
    }

    /// Neither side compiled in (a plain `cargo check -p app`): nothing can be fetched.
    #[cfg(not(feature = "hydrate"))]
    pub(super) async fn request(
        _method: &str,
        _url: String,
        _body: Option<String>,
    ) -> Result<(u16, String), FetchError> {
        Err(FetchError::transport("built without ssr or hydrate"))
    }
}
