//! The deployment files shipped in `deploy/` against the settings they use.

use super::source::SETTINGS;
use super::*;

/// `deploy/systemd/celeriac.env` is read as the units read it: every `CELERIAC_` name in it is a
/// setting (an unknown one would be ignored silently), and together they make a valid config.
#[test]
fn the_shipped_environment_file_names_real_settings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/celeriac.env");
    let text = std::fs::read_to_string(&path).unwrap();
    let variables: Vec<(String, String)> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && line.contains('='))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
        .collect();
    for (name, _) in &variables {
        let setting = name.trim_start_matches("CELERIAC_").to_ascii_lowercase();
        assert!(
            name == "CELERIAC_LOG" || SETTINGS.iter().any(|(known, _)| *known == setting),
            "{name} in {} is not a setting",
            path.display()
        );
    }
    let config = Config::from_sources(None, variables).unwrap();
    assert_eq!(
        config.broker_password_file.as_deref(),
        Some(Path::new("/etc/celeriac/redis-password"))
    );
    assert!(config.broker_use_ssl.is_some() && config.redis_backend_use_ssl.is_some());
    assert!(config.broker_url.starts_with("rediss://"));
}
