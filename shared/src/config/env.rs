//! Reading and parsing environment variables, with errors that name the variable and never echo secrets.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A configuration value that is missing or cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// Why it was rejected (never contains the value of a secret).
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &str, reason: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A snapshot of environment variables. Empty values count as unset.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

/// Names only: the values include secrets.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The current process environment.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    /// An explicit set of variables (tests, embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        Self { vars }
    }

    /// The same variables with `name` set to `value` (a blank value unsets it, as everywhere): how a value
    /// read at start-up from elsewhere (a secret from Secrets Manager) joins the environment the
    /// configuration is parsed from.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if value.trim().is_empty() {
            self.vars.remove(name);
        } else {
            self.vars.insert(name.to_owned(), value);
        }
        self
    }

    /// The trimmed value, if set and not blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim().to_owned())
    }

    /// The trimmed value.
    ///
    /// # Errors
    /// When the variable is unset or blank.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// Parses the value, or returns `default` when unset.
    ///
    /// # Errors
    /// When the value does not parse as `T`.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
        }
    }

    /// Parses the value (or takes `default`) and checks it lies in `range`.
    ///
    /// # Errors
    /// When the value does not parse or lies outside `range`.
    pub fn parse_in<T>(
        &self,
        name: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
        T::Err: Display,
    {
        let value = self.parse_or(name, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                name,
                format!("{value} is outside {}..={}", range.start(), range.end()),
            ))
        }
    }

    /// Parses a boolean flag (`true`/`false`/`1`/`0`), `default` when unset.
    ///
    /// # Errors
    /// When the value is not a recognised boolean.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "TRUE" | "True" | "yes") => Ok(true),
            Some("0" | "false" | "FALSE" | "False" | "no") => Ok(false),
            Some(other) => Err(ConfigError::new(
                name,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let env = Env::from_pairs([("A", "  ")]);
        assert_eq!(env.optional("A"), None);
        assert!(env.required("A").is_err());
    }

    #[test]
    fn parse_in_names_the_variable_when_out_of_range() {
        let env = Env::from_pairs([("N", "0")]);
        let err = env.parse_in("N", 5u32, 1..=10).unwrap_err();
        assert_eq!(err.var, "N");
        assert!(err.to_string().contains("outside 1..=10"), "{err}");
    }

    #[test]
    fn parse_or_rejects_garbage_and_defaults_when_unset() {
        let env = Env::from_pairs([("N", "ten")]);
        assert!(env.parse_or("N", 1u32).is_err());
        assert_eq!(env.parse_or("M", 7u32), Ok(7));
    }

    #[test]
    fn with_sets_and_blank_unsets() {
        let env = Env::from_pairs([("A", "1")]).with("B", "2").with("A", " ");
        assert_eq!(env.optional("A"), None);
        assert_eq!(env.optional("B").as_deref(), Some("2"));
    }

    #[test]
    fn debug_shows_names_never_values() {
        let env = Env::from_pairs([("JWT_SECRET", "hunter2hunter2")]);
        let shown = format!("{env:?}");
        assert!(
            shown.contains("JWT_SECRET") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn flag_rejects_unknown_words() {
        let env = Env::from_pairs([("F", "maybe")]);
        assert!(env.flag("F", false).is_err());
        assert_eq!(Env::default().flag("F", true), Ok(true));
    }
}
