//! Catch-up: read every result the backend still holds into the history, so a monitor that
//! was not listening (restarted, or started after the tasks ran) still shows them.
//!
//! The backend is walked with `SCAN` in pages of [`PAGE_SIZE`] keys; each page is merged in
//! one transaction and dropped before the next is read, so memory stays bounded by a page
//! whatever the backend holds. `SCAN` may return a key twice; the merge makes that harmless.
//! Results expire (`result_expires`, a day by default), so a catch-up recovers at most that
//! much of the past; the events recorded while listening are kept for as long as the history's
//! retention says.

use super::{HistoryError, TaskHistory};
use crate::backend::ResultBackend;

/// Keys asked for per `SCAN` call (a hint: Redis may return a few more or fewer).
const PAGE_SIZE: usize = 500;

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpReport {
    /// Result documents read.
    pub results: u64,
    /// Task rows that changed (new tasks, or new facts about known ones).
    pub changed: u64,
    /// `SCAN` pages read.
    pub pages: u64,
}

/// Where a catch-up goes on: the `SCAN` cursor of its next page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpCursor(u64);

impl TaskHistory {
    /// Reads every result in `backend` into the history (module docs).
    pub async fn catch_up(&self, backend: &ResultBackend) -> Result<CatchUpReport, HistoryError> {
        let mut report = CatchUpReport::default();
        let mut cursor = CatchUpCursor::default();
        while let Some(next) = self.catch_up_page(backend, cursor, &mut report).await? {
            cursor = next;
        }
        tracing::info!(
            results = report.results,
            changed = report.changed,
            "task history caught up with the result backend"
        );
        Ok(report)
    }

    /// One page of a catch-up from `cursor` (the default cursor starts one), added to
    /// `report`; the cursor of the next page, `None` when the walk is complete. The recorder
    /// goes page by page so that writing new events never waits for a whole walk.
    pub async fn catch_up_page(
        &self,
        backend: &ResultBackend,
        cursor: CatchUpCursor,
        report: &mut CatchUpReport,
    ) -> Result<Option<CatchUpCursor>, HistoryError> {
        let (next, results) = backend.scan_results(cursor.0, PAGE_SIZE).await?;
        report.pages += 1;
        report.results += results.len() as u64;
        report.changed += self.record_results(&results).await? as u64;
        Ok((next != 0).then_some(CatchUpCursor(next)))
    }
}
