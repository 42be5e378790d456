//! Test fixtures shared by every crate's tests: keys, JWKS documents, the private CA and the TLS Redis
//! certificate (see `fixtures/README.md` for how they were made).

use std::path::PathBuf;

/// The path of fixture `name`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The text of fixture `name`.
pub fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
