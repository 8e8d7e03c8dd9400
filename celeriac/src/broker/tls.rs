//! Clients for a Redis URL: plain `redis://`, or `rediss://` (TLS) with kombu's and redis-py's
//! `ssl_*` options, from `broker_use_ssl` / `redis_backend_use_ssl` or from the URL's query
//! (`rediss://…/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fredis%2Fca.pem`), the query
//! winning as in kombu.
//!
//! TLS is rustls (no system OpenSSL needed to build or run). What each option means here:
//! - `ssl_cert_reqs`: `required` (default) and `optional` verify the server's certificate (in
//!   a client Python's `CERT_OPTIONAL` means the same); `none` does not (and sends no SNI).
//!   Python's spellings `CERT_REQUIRED`, `CERT_OPTIONAL`, `CERT_NONE` are accepted.
//! - `ssl_ca_certs`: a PEM file of the CAs to trust instead of the system's.
//! - `ssl_certfile` and `ssl_keyfile`: a client certificate chain and its key (PEM), for a
//!   Redis started with `--tls-auth-clients yes`.
//! - `ssl_check_hostname`: whether the certificate must name the host. Default `true`, as
//!   redis-py 6 and kombu 5.6+ have it; redis-py 5 (Celery 5.4's pin) did not check, so a
//!   certificate that worked there may need `false` here.
//!
//! The password may also come from a file (`broker_password_file`,
//! `redis_backend_password_file`: a Docker or Kubernetes secret), so it need not sit in the
//! URL or the configuration; the URL then names only the user, if any. The URL never appears in
//! an error with its password (see [`redacted`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The `ssl_*` options of one Redis connection (Celery's `broker_use_ssl` and
/// `redis_backend_use_ssl` tables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSsl {
    /// `required`, `optional` or `none` (or `CERT_REQUIRED`, `CERT_OPTIONAL`, `CERT_NONE`).
    pub ssl_cert_reqs: Option<String>,
    /// PEM file of the certificate authorities to trust (default: the system's).
    pub ssl_ca_certs: Option<PathBuf>,
    /// PEM file of the client certificate chain.
    pub ssl_certfile: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub ssl_keyfile: Option<PathBuf>,
    /// Whether the server's certificate must name the host (default true).
    pub ssl_check_hostname: Option<bool>,
}

/// Why no client could be made for a URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse.
    #[error("invalid redis url {url:?}: {source}")]
    InvalidUrl {
        /// The URL, password hidden.
        url: String,
        /// The parser's complaint.
        #[source]
        source: ::redis::RedisError,
    },
    /// An `ssl_*` option, the password file or the Sentinel options are wrong, or a file
    /// cannot be used.
    #[error("{url}: {reason}")]
    Settings {
        /// The URL, password hidden.
        url: String,
        /// What is wrong, naming the option or file.
        reason: String,
    },
}

/// `url` with its password replaced by `***` (user names stay: they say which ACL user); each
/// part of kombu's `sentinel://…;sentinel://…` list on its own.
pub fn redacted(url: &str) -> String {
    url.split(';')
        .map(crate::db::hide_password)
        .collect::<Vec<_>>()
        .join(";")
}

impl RedisSsl {
    /// These options with the URL's `ssl_*` query parameters laid over them.
    fn with_query(&self, url: &url::Url) -> Result<RedisSsl, String> {
        let mut merged = self.clone();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "ssl_cert_reqs" => merged.ssl_cert_reqs = Some(value.into_owned()),
                "ssl_ca_certs" => merged.ssl_ca_certs = Some(PathBuf::from(value.as_ref())),
                "ssl_certfile" => merged.ssl_certfile = Some(PathBuf::from(value.as_ref())),
                "ssl_keyfile" => merged.ssl_keyfile = Some(PathBuf::from(value.as_ref())),
                "ssl_check_hostname" => {
                    merged.ssl_check_hostname = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        other => {
                            return Err(format!(
                                "ssl_check_hostname: {other:?} is not true or false"
                            ))
                        }
                    })
                }
                _ => {}
            }
        }
        Ok(merged)
    }

    /// Whether the server's certificate is verified.
    fn verify(&self) -> Result<bool, String> {
        match self
            .ssl_cert_reqs
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("required" | "cert_required") => Ok(true),
            Some("optional" | "cert_optional") => Ok(true),
            Some("none" | "cert_none") => Ok(false),
            Some(other) => Err(format!(
                "ssl_cert_reqs: {other:?} is not required, optional or none"
            )),
        }
    }

    fn any_set(&self) -> bool {
        *self != RedisSsl::default()
    }
}

/// The start of a PEM certificate.
const CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

fn read(option: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path)
        .map_err(|error| format!("{option}: cannot read {}: {error}", path.display()))
}

/// `url` with the password read from `password_file` (its first line) put in; refused when
/// the URL has a password of its own, so two sources never silently disagree.
fn with_password_file(url: &str, password_file: Option<&Path>) -> Result<String, String> {
    let Some(path) = password_file else {
        return Ok(url.to_owned());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("password file: cannot read {}: {error}", path.display()))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(format!("password file: {} is empty", path.display()));
    }
    let mut parsed = url::Url::parse(url).map_err(|error| format!("not a URL: {error}"))?;
    if parsed.password().is_some() {
        return Err(format!(
            "the URL has a password and {} gives another; keep one",
            path.display()
        ));
    }
    // Encoded here: `set_password` leaves `%` as is, and the client decodes what it reads.
    let encoded = percent_encode(password);
    parsed
        .set_password(Some(&encoded))
        .map_err(|()| "this URL cannot carry a password".to_owned())?;
    Ok(parsed.into())
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded, for a URL's
/// user or password.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A client for `url` with `ssl` (the setting's table, if any) and the password in
/// `password_file`, if any. `ssl_*` options on a `redis://` URL are refused rather than
/// ignored: the connection would not be encrypted.
pub fn client(
    url: &str,
    ssl: Option<&RedisSsl>,
    password_file: Option<&Path>,
) -> Result<::redis::Client, ClientError> {
    let full_url =
        with_password_file(url, password_file).map_err(|reason| ClientError::Settings {
            url: redacted(url),
            reason,
        })?;
    let url = full_url.as_str();
    let invalid = |source| ClientError::InvalidUrl {
        url: redacted(url),
        source,
    };
    let tls_error = |reason: String| ClientError::Settings {
        url: redacted(url),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|error| {
        invalid(::redis::RedisError::from((
            ::redis::ErrorKind::InvalidClientConfig,
            "not a URL",
            error.to_string(),
        )))
    })?;
    let options = ssl
        .cloned()
        .unwrap_or_default()
        .with_query(&parsed)
        .map_err(tls_error)?;
    if parsed.scheme() != "rediss" {
        if options.any_set() {
            return Err(tls_error(
                "ssl options are set but the URL is not rediss:// (the connection would not be \
                 encrypted); use rediss://"
                    .to_owned(),
            ));
        }
        return ::redis::Client::open(url).map_err(invalid);
    }
    // From here on errors say it is about TLS.
    let tls_error = |reason: String| tls_error(format!("TLS: {reason}"));
    let verify = options.verify().map_err(tls_error)?;
    let mut target = parsed.clone();
    target.set_query(None);
    if !verify {
        target.set_fragment(Some("insecure"));
    }
    let root_cert = match &options.ssl_ca_certs {
        Some(path) => {
            let pem = read("ssl_ca_certs", path).map_err(tls_error)?;
            if !pem
                .windows(CERTIFICATE.len())
                .any(|window| window == CERTIFICATE)
            {
                return Err(tls_error(format!(
                    "ssl_ca_certs: {} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
                    path.display()
                )));
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match (&options.ssl_certfile, &options.ssl_keyfile) {
        (Some(cert), Some(key)) => Some(::redis::ClientTlsConfig {
            client_cert: read("ssl_certfile", cert).map_err(tls_error)?,
            client_key: read("ssl_keyfile", key).map_err(tls_error)?,
        }),
        (None, None) => None,
        _ => {
            return Err(tls_error(
                "ssl_certfile and ssl_keyfile go together (a client certificate and its key)"
                    .to_owned(),
            ))
        }
    };
    let client = ::redis::Client::build_with_tls(
        target.as_str(),
        ::redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|error| tls_error(error.to_string()))?;
    if !verify || options.ssl_check_hostname.unwrap_or(true) {
        return Ok(client);
    }
    let info = client.get_connection_info().clone();
    let mut address = info.addr().clone();
    address.set_danger_accept_invalid_hostnames(true);
    ::redis::Client::open(info.set_addr(address)).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_stay_plain_and_ssl_options_on_them_are_refused() {
        assert!(client("redis://127.0.0.1:6379/0", None, None).is_ok());
        let ssl = RedisSsl {
            ssl_cert_reqs: Some("required".into()),
            ..RedisSsl::default()
        };
        let error = client("redis://:secret@127.0.0.1:6379/0", Some(&ssl), None).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("not rediss://"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn bad_options_name_the_option_and_never_the_password() {
        let error = client(
            "rediss://:secret@localhost:6380/0?ssl_cert_reqs=maybe",
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("ssl_cert_reqs: \"maybe\""), "{error}");
        assert!(error.contains(":***@localhost"), "{error}");
        let error = client(
            "rediss://localhost:6380/0?ssl_ca_certs=%2Fnowhere%2Fca.pem",
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("ssl_ca_certs: cannot read /nowhere/ca.pem"),
            "{error}"
        );
        let lonely = RedisSsl {
            ssl_certfile: Some("/tmp/cert.pem".into()),
            ..RedisSsl::default()
        };
        let error = client("rediss://localhost:6380/0", Some(&lonely), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("go together"), "{error}");
    }

    #[test]
    fn a_password_file_fills_the_url_once() {
        let directory = std::env::temp_dir().join(format!("celeriac-pw-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let file = directory.join("redis-password");
        std::fs::write(&file, "p@ss:w/rd%1\n").unwrap();
        let filled = with_password_file("redis://celeriac@127.0.0.1:6379/0", Some(&file)).unwrap();
        assert_eq!(
            filled,
            "redis://celeriac:p%40ss%3Aw%2Frd%251@127.0.0.1:6379/0"
        );
        let filled_client = client("redis://celeriac@127.0.0.1:6379/0", None, Some(&file)).unwrap();
        let info = format!(
            "{:?}",
            filled_client
                .get_connection_info()
                .redis_settings()
                .password()
        );
        assert!(info.contains("p@ss:w/rd%1"), "decoded back: {info}");
        let error = client("redis://:zz-secret@127.0.0.1:6379/0", None, Some(&file))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("keep one") && !error.contains("zz-secret"),
            "{error}"
        );
        let error = client(
            "redis://127.0.0.1:6379/0",
            None,
            Some(&directory.join("none")),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("password file: cannot read"), "{error}");
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn every_sentinel_password_is_hidden() {
        assert_eq!(
            redacted("sentinel://:pw1@h1:26379;sentinel://user:pw2@h2:26379/0"),
            "sentinel://:***@h1:26379;sentinel://user:***@h2:26379/0"
        );
    }

    #[test]
    fn python_spellings_are_accepted() {
        for reqs in ["CERT_NONE", "none", "CERT_REQUIRED", "optional"] {
            let url = format!("rediss://localhost:6380/0?ssl_cert_reqs={reqs}");
            assert!(client(&url, None, None).is_ok(), "{reqs}");
        }
    }
}
