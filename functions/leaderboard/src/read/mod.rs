//! Reading the board from Redis (`docs/design.md` §4–§6): the global snapshot `{sb}:top`, or, while it is
//! missing, one merged from the partitions' tops; and one user's global rank summed over partitions.
//!
//! One ranking rule everywhere ([`ranks_before`]): higher score first, equal scores by user id ascending
//! in byte order, ranks 1, 2, 3, … in that order. Partitions share no users, so reading them one after
//! another (not atomically) still gives a consistent cut, and the global top `K` is inside the union of
//! the partitions' tops of `K`.
//!
//! Every command touches one partition's slot (`{sb:p}`) or a global key: the per-partition reads are
//! sent concurrently on the one (multiplexed) connection, never as a multi-key command across slots.

mod rank;
mod snapshot;

use std::cmp::Ordering;

pub use rank::{MyRank, read_my_rank};
pub use snapshot::read_snapshot;

/// The ranking rule: `Less` when `(score_a, user_a)` ranks above `(score_b, user_b)`.
pub fn ranks_before(a: (u64, &str), b: (u64, &str)) -> Ordering {
    b.0.cmp(&a.0)
        .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
}

/// Sorted-set scores come back as text of a double; totals are integers below 2^53.
fn parse_score(text: &str) -> u64 {
    text.parse::<f64>().map_or(0, |f| f.max(0.0) as u64)
}

fn invalid(what: &'static str, e: impl std::fmt::Display) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, what, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_scores_first_then_user_ids_in_byte_order() {
        assert_eq!(ranks_before((9, "z"), (5, "a")), Ordering::Less);
        assert_eq!(ranks_before((5, "a"), (5, "b")), Ordering::Less);
        // Byte order: upper case before lower case, shorter prefix first.
        assert_eq!(ranks_before((5, "B"), (5, "a")), Ordering::Less);
        assert_eq!(ranks_before((5, "a"), (5, "aa")), Ordering::Less);
        assert_eq!(ranks_before((5, "a"), (5, "a")), Ordering::Equal);
    }

    #[test]
    fn scores_parse_from_sorted_set_text() {
        assert_eq!(parse_score("50"), 50);
        assert_eq!(parse_score("9007199254740991"), 9_007_199_254_740_991);
        assert_eq!(parse_score("nan?"), 0);
    }
}
