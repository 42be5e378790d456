//! The leaderboard snapshot: the JSON stored in `{sb}:top`, published on `{sb}:events`, returned by the
//! leaderboard function and pushed over SSE. One type, so every part agrees on the shape.

use serde::{Deserialize, Serialize};

/// One ranked row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub rank: u32,
    pub user_id: String,
    pub name: String,
    pub score: u64,
}

/// The top of the board at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: u64,
    pub updated_at: String,
    pub entries: Vec<Entry>,
}

impl Snapshot {
    /// The board before any score: version 0, no entries.
    pub fn empty() -> Self {
        Self {
            version: 0,
            updated_at: "1970-01-01T00:00:00Z".to_owned(),
            entries: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_the_contract() {
        let snap = Snapshot {
            version: 3,
            updated_at: "2026-01-01T00:00:00Z".into(),
            entries: vec![Entry {
                rank: 1,
                user_id: "u1".into(),
                name: "Ann".into(),
                score: 42,
            }],
        };
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":3,"updatedAt":"2026-01-01T00:00:00Z",
                "entries":[{"rank":1,"userId":"u1","name":"Ann","score":42}]})
        );
    }
}
