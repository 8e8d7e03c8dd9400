//! Connecting to Redis: the connection manager every broker and backend connection uses, and
//! the first connection of a process, retried while the broker is not up yet.

use super::link::Link;
use super::sentinel::{is_sentinel, Sentinels};
use super::{BrokerError, BrokerOptions};
use ::redis::aio::ConnectionManager;
use std::time::Duration;

/// redis-rs's reconnect attempts before a command waiting on them fails (its default): about
/// 5 s of back-off, in which a restarted server is picked up without the caller noticing.
const RECONNECTS: usize = 6;

/// Under Sentinel a dead master is not coming back as master: one quick attempt, so commands
/// fail at once and the next goes to the master the watcher found (`Link`). With six, a fetch
/// waited out the whole back-off against the dead address: the drain resumed 7.7 s after the
/// kill where the promotion took 2.3 s.
pub(crate) const RECONNECTS_UNDER_SENTINEL: usize = 1;

pub(crate) async fn connect_manager(
    client: ::redis::Client,
    reconnects: usize,
) -> ::redis::RedisResult<ConnectionManager> {
    connect_manager_within(client, Duration::from_secs(5), reconnects).await
}

async fn connect_manager_within(
    client: ::redis::Client,
    connection_timeout: Duration,
    reconnects: usize,
) -> ::redis::RedisResult<ConnectionManager> {
    let config = ::redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_connection_timeout(Some(connection_timeout))
        .set_max_delay(Duration::from_secs(2))
        .set_number_of_retries(reconnects);
    ConnectionManager::new_with_config(client, config).await
}

/// The wait before start-up attempt `attempt + 1`: kombu's `ensure_connection` intervals
/// (2 s, then 2 s more each time, at most 30 s).
fn startup_retry_wait(attempt: u32) -> Duration {
    Duration::from_secs(u64::from(attempt.saturating_mul(2)).min(30))
}

/// Why [`connect_at_startup`] gave up; the caller turns it into its own error type.
#[derive(Debug)]
pub(crate) struct Unreachable {
    /// `host:port`, never the password.
    pub(crate) address: String,
    pub(crate) attempts: u32,
    pub(crate) source: ::redis::RedisError,
}

impl Unreachable {
    /// What to change for the TLS failures a newcomer meets first, from rustls's wording.
    fn hint(&self) -> String {
        let text = self.source.to_string();
        let hint = if text.contains("UnknownIssuer") {
            "the server's certificate is not signed by a CA this client trusts: set \
             ssl_ca_certs to the CA's PEM file"
        } else if text.contains("NotValidForName") || text.contains("not valid for name") {
            "the server's certificate does not name this host: connect by a name it has, or set \
             ssl_check_hostname = false"
        } else if text.contains("CertificateRequired") || text.contains("certificate required") {
            "the server wants a client certificate: set ssl_certfile and ssl_keyfile"
        } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
            "the server did not answer TLS: is it a plain redis:// port?"
        } else {
            return String::new();
        };
        format!(" ({hint})")
    }
}

impl From<Unreachable> for BrokerError {
    fn from(unreachable: Unreachable) -> Self {
        BrokerError::Unreachable {
            hint: unreachable.hint(),
            address: unreachable.address,
            attempts: unreachable.attempts,
            source: unreachable.source,
        }
    }
}

impl From<Unreachable> for crate::backend::BackendError {
    fn from(unreachable: Unreachable) -> Self {
        crate::backend::BackendError::Unreachable {
            hint: unreachable.hint(),
            address: unreachable.address,
            attempts: unreachable.attempts,
            source: unreachable.source,
        }
    }
}

/// What a process connects to: one server, or the master the sentinels name.
pub(crate) enum Target {
    Server(::redis::Client),
    Sentinels(Sentinels),
}

impl Target {
    /// `host:port`, or the sentinels' addresses (never a password).
    fn describe(&self) -> String {
        match self {
            Target::Server(client) => client.get_connection_info().addr().to_string(),
            Target::Sentinels(sentinels) => format!("sentinels {}", sentinels.describe()),
        }
    }

    async fn connect(
        &self,
        timeout: Duration,
    ) -> ::redis::RedisResult<(::redis::Client, ConnectionManager)> {
        let (client, reconnects) = match self {
            Target::Server(client) => (client.clone(), RECONNECTS),
            Target::Sentinels(sentinels) => (
                sentinels.master().await.map_err(|reason| {
                    ::redis::RedisError::from((::redis::ErrorKind::Io, "sentinel", reason))
                })?,
                RECONNECTS_UNDER_SENTINEL,
            ),
        };
        let manager = connect_manager_within(client.clone(), timeout, reconnects).await?;
        Ok((client, manager))
    }
}

/// Why [`open_link`] failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    Client(super::ClientError),
    Unreachable(Unreachable),
}

impl From<OpenError> for BrokerError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Client(error) => BrokerError::Client(error),
            OpenError::Unreachable(unreachable) => unreachable.into(),
        }
    }
}

impl From<OpenError> for crate::backend::BackendError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Client(error) => crate::backend::BackendError::Client(error),
            OpenError::Unreachable(unreachable) => unreachable.into(),
        }
    }
}

/// The link for `url` with `options` (TLS, password file, Sentinel), connected with the
/// start-up policy of [`connect_at_startup`].
pub(crate) async fn open_link(
    url: &str,
    options: &BrokerOptions,
    role: &'static str,
) -> Result<Link, OpenError> {
    if is_sentinel(url) {
        let sentinels = Sentinels::parse(url, &options.sentinel).map_err(|reason| {
            OpenError::Client(super::ClientError::Settings {
                url: super::redacted(url),
                reason,
            })
        })?;
        let target = Target::Sentinels(sentinels.clone());
        let (client, manager) = connect_at_startup(&target, options, role)
            .await
            .map_err(OpenError::Unreachable)?;
        return Ok(Link::following(client, manager, sentinels, role));
    }
    let client = super::tls::client(url, options.ssl.as_ref(), options.password_file.as_deref())
        .map_err(OpenError::Client)?;
    let (client, manager) = connect_at_startup(&Target::Server(client), options, role)
        .await
        .map_err(OpenError::Unreachable)?;
    Ok(Link::direct(client, manager))
}

/// The first connection, retried as Celery's worker does when the broker is not up yet (a
/// host rebooting, Redis starting after the app): one log line per attempt naming `role` and
/// `host:port`, never the password, then [`Unreachable`] when the attempts run out or retrying
/// is off. The result backend connects with the same policy (`broker_connection_*`): a
/// worker whose results live on another Redis waits for it as for the broker.
pub(crate) async fn connect_at_startup(
    target: &Target,
    options: &BrokerOptions,
    role: &'static str,
) -> Result<(::redis::Client, ConnectionManager), Unreachable> {
    let address = target.describe();
    let mut attempt: u32 = 0;
    loop {
        let error = match target.connect(options.connection_timeout).await {
            Ok(connection) => {
                if attempt > 0 {
                    tracing::info!(role, address = %address, attempts = attempt + 1, "connected to the {role}");
                }
                return Ok(connection);
            }
            Err(error) => error,
        };
        attempt += 1;
        let max = options.connection_max_retries;
        if !options.connection_retry_on_startup || (max > 0 && attempt > max) {
            return Err(Unreachable {
                address,
                attempts: attempt,
                source: error,
            });
        }
        let wait = startup_retry_wait(attempt);
        tracing::warn!(
            role,
            address = %address,
            attempt,
            max_retries = max,
            retry_in_s = wait.as_secs(),
            %error,
            "cannot connect to the {role}; trying again in {} s ({attempt}/{})",
            wait.as_secs(),
            if max == 0 { "∞".to_owned() } else { max.to_string() }
        );
        tokio::time::sleep(wait).await;
    }
}
