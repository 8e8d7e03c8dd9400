//! Placeholder until the dashboard shell lands.
use std::net::SocketAddr;
use std::path::PathBuf;
/// Placeholder.
#[derive(Debug)]
pub struct DashboardOptions {
    pub addr: SocketAddr,
    pub site_root: PathBuf,
    pub url_prefix: String,
}
impl DashboardOptions {
    pub fn from_env(addr: Option<SocketAddr>) -> Self {
        DashboardOptions {
            addr: addr.unwrap_or(([127, 0, 0, 1], 8000).into()),
            site_root: PathBuf::from("target/site"),
            url_prefix: String::new(),
        }
    }
}
pub async fn serve(
    _options: DashboardOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}
