//! The server's [`SchedulePreview`] of a draft schedule, fetched again whenever the draft
//! changes: how the editors validate, describe and list next runs as the user types without
//! carrying the tz database in the browser (see `model::schedule`).

use leptos::prelude::*;

use crate::client::{use_api, FetchError};
use crate::model::{SchedulePreview, ScheduleSpec};

/// The preview answer: `Ok(None)` when there is no draft to check (its text does not parse
/// into a [`ScheduleSpec`] yet, which the form already says).
pub type PreviewResource = Resource<Result<Option<SchedulePreview>, FetchError>>;

/// A resource following `draft`. During server rendering it is answered in process, so the
/// first paint already shows the description and runs.
pub fn schedule_preview(
    draft: impl Fn() -> Option<ScheduleSpec> + Send + Sync + 'static,
) -> PreviewResource {
    let api = use_api();
    Resource::new(draft, move |spec: Option<ScheduleSpec>| {
        let api = api.clone();
        async move {
            match spec {
                Some(spec) => api.get(&spec.preview_path()).await.map(Some),
                None => Ok(None),
            }
        }
    })
}

/// The latest answer's error, if it has one (a failed request counts, so nothing is saved
/// unchecked): (the input at fault, the message).
pub fn preview_error(preview: PreviewResource) -> Option<(String, String)> {
    preview.with(|answer| match answer.as_ref()? {
        Ok(Some(preview)) => preview
            .error
            .as_ref()
            .map(|error| (error.part.clone(), error.message.clone())),
        Ok(None) => None,
        Err(error) => Some((String::new(), format!("cannot check the schedule: {error}"))),
    })
}
