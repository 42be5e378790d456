//! The claims this service reads from a token, and the authenticated principal derived from them,
//! including the display-name rules (what a name may contain) that the stream-entry parser re-checks.

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

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
    /// From `name` or `preferred_username`: see [`clean_name`].
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

/// Characters a display name never keeps: they are invisible or reorder what is shown, so a name holding
/// them can look like another user's. Control characters (Cc); bidi embeddings and overrides
/// (U+202A–U+202E), isolates (U+2066–U+2069) and marks (U+200E, U+200F, U+061C); zero-width characters
/// (U+200B–U+200D, U+2060 word joiner, U+FEFF byte-order mark).
pub(crate) fn forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{061C}'
        )
}

/// Drops [`forbidden_in_name`] characters, normalises to NFC, trims and cuts to at most
/// [`MAX_NAME_CHARS`] characters; `None` when nothing is left.
///
/// Characters are dropped before normalising, so a mark that a zero-width character separated from its
/// base composes with it. Cutting and trimming an NFC string leaves NFC.
pub(crate) fn clean_name(raw: &str) -> Option<String> {
    let visible: String = raw.chars().filter(|c| !forbidden_in_name(*c)).collect();
    let normalized: String = visible.nfc().collect();
    let cleaned: String = normalized.trim().chars().take(MAX_NAME_CHARS).collect();
    let cleaned = cleaned.trim_end().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
    fn bidi_overrides_and_isolates_are_stripped() {
        // "Ann" shown as "nnA": an override can make one name render as another.
        assert_eq!(clean_name("\u{202E}nnA\u{202C}").as_deref(), Some("nnA"));
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert_eq!(
                clean_name(&format!("{c}Ann{c}x")).as_deref(),
                Some("Annx"),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            clean_name("A\u{200E}n\u{200F}n\u{061C}").as_deref(),
            Some("Ann")
        );
    }

    #[test]
    fn zero_width_characters_are_stripped() {
        for c in ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'] {
            assert_eq!(
                clean_name(&format!("{c}An{c}n{c}")).as_deref(),
                Some("Ann"),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn names_are_normalised_to_nfc() {
        // "é" as e + combining acute, and as the precomposed letter: one name, one spelling.
        assert_eq!(clean_name("Rene\u{301}").as_deref(), Some("Ren\u{E9}"));
        assert_eq!(clean_name("Ren\u{E9}").as_deref(), Some("Ren\u{E9}"));
        // A zero-width space cannot keep the two apart either.
        assert_eq!(
            clean_name("Rene\u{200B}\u{301}").as_deref(),
            Some("Ren\u{E9}")
        );
        // Singletons map to their canonical form (OHM SIGN → GREEK CAPITAL OMEGA).
        assert_eq!(clean_name("\u{2126}").as_deref(), Some("\u{3A9}"));
    }

    #[test]
    fn a_name_of_only_invisible_characters_falls_back() {
        let p = Principal::try_from(claims(
            Some("u1"),
            Some("\u{202E}\u{200B}\u{FEFF} \u{2066}\u{2069}"),
            Some("bob"),
        ))
        .unwrap();
        assert_eq!(p.display_name.as_deref(), Some("bob"));
        let p = Principal::try_from(claims(Some("u1"), Some("\u{200D}"), None)).unwrap();
        assert_eq!(p.display_name, None);
    }

    fn forbidden_chars() -> impl Strategy<Value = char> {
        prop_oneof![
            prop::char::range('\u{0}', '\u{1F}'),
            prop::char::range('\u{7F}', '\u{9F}'),
            prop::char::range('\u{200B}', '\u{200F}'),
            prop::char::range('\u{202A}', '\u{202E}'),
            prop::char::range('\u{2060}', '\u{2060}'),
            prop::char::range('\u{2066}', '\u{2069}'),
            prop::char::range('\u{FEFF}', '\u{FEFF}'),
            prop::char::range('\u{061C}', '\u{061C}'),
        ]
    }

    /// Any character, weighted towards the ones the cleaner must handle: invisible ones, combining marks
    /// (U+0300–U+036F), letters they compose with, composition exclusions and whitespace.
    fn name_chars() -> impl Strategy<Value = char> {
        prop_oneof![
            3 => forbidden_chars(),
            3 => prop::char::range('\u{300}', '\u{36F}'),
            2 => prop::char::range('A', 'z'),
            1 => prop::sample::select(vec!['\u{0958}', '\u{2126}', '\u{212B}', '\u{FB1D}', '\u{AC00}', '\u{1100}', '\u{1161}', '\u{11A8}']),
            1 => prop::sample::select(vec![' ', '\u{A0}', '\u{3000}', '\u{2028}']),
            2 => any::<char>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn cleaned_names_are_visible_nfc_and_bounded(
            raw in prop::collection::vec(name_chars(), 0..120).prop_map(String::from_iter)
        ) {
            if let Some(name) = clean_name(&raw) {
                prop_assert!(!name.chars().any(forbidden_in_name), "{name:?}");
                prop_assert!(unicode_normalization::is_nfc(&name), "{name:?}");
                prop_assert!(name.chars().count() <= MAX_NAME_CHARS);
                prop_assert!(!name.is_empty());
                prop_assert_eq!(name.trim(), name.as_str());
                // Cleaning is idempotent: a cleaned name is its own cleaning.
                let again = clean_name(&name);
                prop_assert_eq!(again.as_deref(), Some(name.as_str()));
            }
        }
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
