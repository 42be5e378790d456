//! Building the Redis connection once per process: lazy (a Redis that is down at start-up does not stop
//! a Lambda from initialising), reconnecting, with connect and response timeouts. `rediss://` uses TLS.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::RedisConfig;

/// The client for `config`: trusts `REDIS_CA_CERT_FILE` instead of the public roots when it is set.
/// Pub/Sub connections are opened from it; commands go through [`connect_lazy`].
///
/// # Errors
/// When the URL cannot be parsed (already checked by [`RedisConfig::from_env`]).
pub fn client(config: &RedisConfig) -> redis::RedisResult<redis::Client> {
    crate::tls::install_crypto_provider();
    match &config.ca_cert_pem {
        None => redis::Client::open(config.url.expose_secret()),
        Some(pem) => redis::Client::build_with_tls(
            config.url.expose_secret(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
    }
}

/// Opens a lazily connecting, self-reconnecting connection.
///
/// # Errors
/// When the URL cannot be parsed (already checked by [`RedisConfig::from_env`]).
pub fn connect_lazy(config: &RedisConfig) -> redis::RedisResult<ConnectionManager> {
    let client = client(config)?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(std::time::Duration::from_millis(200));
    ConnectionManager::new_lazy_with_config(client, manager_config)
}
