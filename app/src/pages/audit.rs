//! `/audit`: the audit log, for admins: who logged in, retried, revoked, terminated, edited or
//! ran what, when, and from which address (`GET /api/audit?limit=N`, newest first).
//!
//! The log is read by the browser only (a `LocalResource`): the API route is behind the admin
//! guard, which in-process server rendering does not pass through, so the server renders the
//! page's frame and the browser fills it. Anyone else gets the API's 403 and the page says
//! the log is for admins only. Filtering by actor and action happens on the rows read (the
//! newest `limit`), which keeps the API as it is.

use leptos::prelude::*;

use crate::client::use_api;
use crate::model::AuditEntry;

/// The rows read at most.
const LIMIT: u32 = 500;

/// `/audit`.
#[component]
pub fn AuditPage() -> AnyView {
    let api = use_api();
    let entries = LocalResource::new(move || {
        let api = api.clone();
        async move {
            api.get::<Vec<AuditEntry>>(&format!("/api/audit?limit={LIMIT}"))
                .await
        }
    });
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    (view! {
        <h1>"Audit log"</h1>
        <form class="filters" on:submit=|event| event.prevent_default()>
            <label>
                "Actor"
                <input data-testid="audit-filter-actor" bind:value=actor />
            </label>
            <label>
                "Action"
                <input data-testid="audit-filter-action" bind:value=action />
            </label>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                entries
                    .get()
                    .map(|answer| match answer {
                        Err(error) if error.status == Some(403) => {
                            view! {
                                <p class="error" data-testid="audit-forbidden">
                                    "The audit log is for admins only."
                                </p>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                        Ok(entries) => {
                            view! { <AuditTable entries actor=actor.into() action=action.into() /> }
                                .into_any()
                        }
                    })
            }}
        </Suspense>
    })
    .into_any()
}

/// The rows whose actor and action contain the filters' text.
#[component]
fn AuditTable(entries: Vec<AuditEntry>, actor: Signal<String>, action: Signal<String>) -> AnyView {
    // ASCII case folding: user names and actions are ASCII in practice, and `to_lowercase`
    // brings Unicode's case tables into the browser's WASM (8 KB gzipped when measured).
    let shown = move || {
        let actor = actor.get().trim().to_ascii_lowercase();
        let action = action.get().trim().to_ascii_lowercase();
        entries
            .iter()
            .filter(|entry| entry.actor.to_ascii_lowercase().contains(&actor))
            .filter(|entry| entry.action.to_ascii_lowercase().contains(&action))
            .cloned()
            .collect::<Vec<_>>()
    };
    (view! {
        <table class="tasks audit" data-testid="audit-table">
            <thead>
                <tr>
                    <th>"When"</th>
                    <th>"Actor"</th>
                    <th>"Action"</th>
                    <th>"Target"</th>
                    <th>"Address"</th>
                </tr>
            </thead>
            <tbody>
                {move || {
                    shown()
                        .into_iter()
                        .map(|entry| {
                            let kind = entry.action.clone();
                            view! {
                                <tr data-testid="audit-row" data-action=kind>
                                    <td class="mono">{entry.at}</td>
                                    <td>{entry.actor}</td>
                                    <td>{entry.action}</td>
                                    <td class="mono clip">{entry.target}</td>
                                    <td class="mono">{entry.address}</td>
                                </tr>
                            }
                        })
                        .collect_view()
                }}
            </tbody>
        </table>
    })
    .into_any()
}
