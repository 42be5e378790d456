//! Process-wide TLS setup: one rustls crypto provider (ring) for Redis TLS, JWKS fetches and the stores.

/// Installs ring as the rustls provider. Safe to call many times; only the first call has effect.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
