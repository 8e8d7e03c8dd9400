//! Redis Sentinel as kombu spells it: the URL lists the sentinels,
//! `sentinel://:PASSWORD@h1:26379;sentinel://h2:26379;sentinel://h3:26379/0`, the password
//! (and user) being the master's, and the transport options name the master and the
//! sentinels' own password: `{master_name = "mymaster", sentinel_kwargs = {password = "…"}}`
//! (`broker_transport_options`; `result_backend_transport_options` for a `sentinel://` result
//! backend). Asking where the master is: `SENTINEL get-master-addr-by-name`, to each sentinel
//! in turn until one answers. Following it after a failover is [`Link`](super::link::Link)'s.

use std::time::Duration;

use serde::Deserialize;

/// How long one sentinel may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// The Sentinel options of the transport options (`master_name`, `sentinel_kwargs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentinelOptions {
    /// The name the sentinels monitor the master under (`sentinel monitor <name> …`).
    pub master_name: Option<String>,
    /// Options for the connections to the sentinels themselves (only `password` is used).
    pub sentinel_kwargs: SentinelKwargs,
}

/// kombu's `sentinel_kwargs`: how to connect to the sentinels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentinelKwargs {
    /// The sentinels' password (`requirepass` in sentinel.conf), if any.
    pub password: Option<String>,
}

/// Where to ask for the master, and how to reach it.
#[derive(Clone)]
pub(crate) struct Sentinels {
    /// `host:port` of each sentinel.
    addresses: Vec<(String, u16)>,
    master_name: String,
    sentinel_password: Option<String>,
    /// The master's user and password, percent-encoded as in the URL.
    userinfo: String,
    database: i64,
}

impl std::fmt::Debug for Sentinels {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sentinels")
            .field("addresses", &self.addresses)
            .field("master_name", &self.master_name)
            .finish_non_exhaustive()
    }
}

/// Whether `url` names sentinels rather than a server.
pub(crate) fn is_sentinel(url: &str) -> bool {
    url.trim_start().starts_with("sentinel://")
}

impl Sentinels {
    /// Reads kombu's URL and options; the error says what is missing or malformed.
    pub(crate) fn parse(url: &str, options: &SentinelOptions) -> Result<Sentinels, String> {
        let master_name = options
            .master_name
            .clone()
            .filter(|name| !name.is_empty())
            .ok_or(
                "a sentinel:// URL needs the master's name: set master_name in \
                 broker_transport_options (result_backend_transport_options for the backend)",
            )?;
        let mut addresses = Vec::new();
        let mut userinfo = String::new();
        let mut database = 0;
        for part in url
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let rest = part.strip_prefix("sentinel://").ok_or_else(|| {
                format!(
                    "{:?} does not start with sentinel://",
                    super::redacted(part)
                )
            })?;
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host_port = match authority.rsplit_once('@') {
                Some((credentials, host_port)) => {
                    userinfo = format!("{credentials}@");
                    host_port
                }
                None => authority,
            };
            let (host, port) = match host_port.rsplit_once(':') {
                Some((host, port)) => (
                    host,
                    port.parse::<u16>()
                        .map_err(|_| format!("{port:?} is not a port in {host_port:?}"))?,
                ),
                None => (host_port, 26379),
            };
            if host.is_empty() {
                return Err(format!("no host in {:?}", super::redacted(part)));
            }
            let path = path.split(['?', '#']).next().unwrap_or_default();
            if !path.is_empty() {
                database = path
                    .parse()
                    .map_err(|_| format!("{path:?} is not a database number"))?;
            }
            addresses.push((host.to_owned(), port));
        }
        if addresses.is_empty() {
            return Err("the URL lists no sentinel".to_owned());
        }
        Ok(Sentinels {
            addresses,
            master_name,
            sentinel_password: options.sentinel_kwargs.password.clone(),
            userinfo,
            database,
        })
    }

    /// The sentinels' addresses, `h1:26379, h2:26379`, for messages.
    pub(crate) fn describe(&self) -> String {
        self.addresses
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A client for the current master, from the first sentinel that knows it.
    pub(crate) async fn master(&self) -> Result<::redis::Client, String> {
        let mut failures = Vec::new();
        for (host, port) in &self.addresses {
            match self.ask(host, *port).await {
                Ok((master_host, master_port)) => {
                    let url = format!(
                        "redis://{}{master_host}:{master_port}/{}",
                        self.userinfo, self.database
                    );
                    return ::redis::Client::open(url.as_str())
                        .map_err(|error| format!("master {master_host}:{master_port}: {error}"));
                }
                Err(error) => failures.push(format!("{host}:{port}: {error}")),
            }
        }
        Err(format!(
            "no sentinel knows master {:?} ({})",
            self.master_name,
            failures.join("; ")
        ))
    }

    async fn ask(&self, host: &str, port: u16) -> Result<(String, u16), String> {
        let credentials = match &self.sentinel_password {
            Some(password) => format!(":{}@", super::tls::percent_encode(password)),
            None => String::new(),
        };
        let client = ::redis::Client::open(format!("redis://{credentials}{host}:{port}"))
            .map_err(|error| error.to_string())?;
        let asking = async {
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|error| error.to_string())?;
            ::redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&self.master_name)
                .query_async::<Option<(String, String)>>(&mut connection)
                .await
                .map_err(|error| error.to_string())
        };
        let answer = tokio::time::timeout(ASK_TIMEOUT, asking)
            .await
            .map_err(|_| "no answer within a second".to_owned())??;
        let (master_host, master_port) = answer
            .ok_or_else(|| format!("does not monitor a master named {:?}", self.master_name))?;
        let master_port = master_port
            .parse()
            .map_err(|_| format!("answered the port {master_port:?}"))?;
        Ok((master_host, master_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(name: &str) -> SentinelOptions {
        SentinelOptions {
            master_name: Some(name.to_owned()),
            sentinel_kwargs: SentinelKwargs::default(),
        }
    }

    #[test]
    fn kombus_url_form_is_read() {
        let sentinels = Sentinels::parse(
            "sentinel://:p%40ss@h1:26379;sentinel://:p%40ss@h2:26380;sentinel://h3/2",
            &options("mymaster"),
        )
        .unwrap();
        assert_eq!(sentinels.describe(), "h1:26379, h2:26380, h3:26379");
        assert_eq!(sentinels.database, 2);
        assert_eq!(sentinels.userinfo, ":p%40ss@");
        assert!(!format!("{sentinels:?}").contains("p%40ss"));
    }

    #[test]
    fn what_is_missing_is_named() {
        let error =
            Sentinels::parse("sentinel://h1:26379", &SentinelOptions::default()).unwrap_err();
        assert!(error.contains("master_name"), "{error}");
        let error = Sentinels::parse("sentinel://h1:port", &options("m")).unwrap_err();
        assert!(error.contains("not a port"), "{error}");
        let error = Sentinels::parse("redis://:secret@h1:6379", &options("m")).unwrap_err();
        assert!(
            error.contains("sentinel://") && !error.contains("secret"),
            "{error}"
        );
    }
}
