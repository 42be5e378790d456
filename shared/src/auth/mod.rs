//! JWT bearer authentication: the one gate every endpoint passes. Owns the RFC 6750 rejection rules.

mod authenticator;
mod claims;
mod error;
mod jwks;

pub use authenticator::{Authenticator, MAX_TOKEN_BYTES};
pub use claims::Principal;
pub(crate) use claims::forbidden_in_name;
pub use error::AuthError;
