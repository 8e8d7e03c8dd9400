//! The dashboard's pages, one file per page, each exporting one `#[component]`.

pub mod home;
