//! The claims this service reads from a token, and the authenticated principal derived from them.

use serde::Deserialize;

use super::AuthError;

/// Longest accepted `sub`, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 128;
/// Display names are trimmed and cut to this many characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    pub sub: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub scope: Option<String>,
}

/// Who made the request. The user id is the token's `sub`; nothing in a body can change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    /// From `name` or `preferred_username`, trimmed, control characters removed, bounded.
    pub display_name: Option<String>,
    scopes: Vec<String>,
}

impl Principal {
    /// Whether the space-separated `scope` claim contains `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl TryFrom<Claims> for Principal {
    type Error = AuthError;

    fn try_from(claims: Claims) -> Result<Self, AuthError> {
        let user_id = claims.sub.ok_or(AuthError::InvalidSubject)?;
        if !valid_subject(&user_id) {
            return Err(AuthError::InvalidSubject);
        }
        let display_name = claims
            .name
            .as_deref()
            .and_then(clean_name)
            .or_else(|| claims.preferred_username.as_deref().and_then(clean_name));
        let scopes = claims
            .scope
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        Ok(Self {
            user_id,
            display_name,
            scopes,
        })
    }
}

/// A subject is non-empty, bounded, without surrounding whitespace or control characters.
fn valid_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.len() <= MAX_SUBJECT_BYTES
        && sub.trim() == sub
        && !sub.chars().any(char::is_control)
}

/// Trims, drops control characters, collapses to at most [`MAX_NAME_CHARS`]; `None` when nothing is left.
pub(crate) fn clean_name(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim_end().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: Option<&str>, name: Option<&str>, username: Option<&str>) -> Claims {
        Claims {
            sub: sub.map(str::to_owned),
            name: name.map(str::to_owned),
            preferred_username: username.map(str::to_owned),
            scope: Some("scores:write profile".into()),
        }
    }

    #[test]
    fn name_falls_back_to_preferred_username() {
        let p = Principal::try_from(claims(Some("u1"), Some("   "), Some(" alice "))).unwrap();
        assert_eq!(p.display_name.as_deref(), Some("alice"));
        assert!(p.has_scope("scores:write"));
        assert!(!p.has_scope("scores"));
    }

    #[test]
    fn names_are_bounded_and_stripped_of_control_characters() {
        let long = "x".repeat(500);
        let p = Principal::try_from(claims(Some("u1"), Some(&long), None)).unwrap();
        assert_eq!(p.display_name.unwrap().chars().count(), MAX_NAME_CHARS);
        assert_eq!(clean_name("a\u{0}b\nc").as_deref(), Some("abc"));
    }

    #[test]
    fn subjects_must_be_clean() {
        for bad in ["", " u1", "u\n1", &"u".repeat(MAX_SUBJECT_BYTES + 1)] {
            assert_eq!(
                Principal::try_from(claims(Some(bad), None, None)),
                Err(AuthError::InvalidSubject),
                "{bad:?}"
            );
        }
        assert_eq!(
            Principal::try_from(claims(None, None, None)),
            Err(AuthError::InvalidSubject)
        );
    }
}
