//! Stream entry ids (`<ms>-<seq>`, ordered numerically) and event ids (`<p>-<ms>-<seq>`: the partition and
//! the entry id, the id a `202` returns and a dead letter is replayed under).

use std::fmt;
use std::str::FromStr;

/// A Redis stream entry id. Ordered as Redis orders them: by milliseconds, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const ZERO: Self = Self { ms: 0, seq: 0 };
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Why an id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id: {0:?}")]
pub struct InvalidId(pub String);

impl FromStr for StreamId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidId(s.to_owned());
        let (ms, seq) = s.split_once('-').ok_or_else(invalid)?;
        let number = |part: &str| -> Result<u64, InvalidId> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        Ok(Self {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

/// One accepted update's id across partitions: `<partition>-<stream entry id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    pub partition: u16,
    pub entry: StreamId,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.partition, self.entry)
    }
}

impl FromStr for EventId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidId(s.to_owned());
        let (partition, entry) = s.split_once('-').ok_or_else(invalid)?;
        if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        Ok(Self {
            partition: partition.parse().map_err(|_| invalid())?,
            entry: entry.parse().map_err(|_| invalid())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically_not_as_text() {
        let a: StreamId = "9-5".parse().unwrap();
        let b: StreamId = "10-0".parse().unwrap();
        let c: StreamId = "10-11".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(c.to_string(), "10-11");
    }

    #[test]
    fn event_ids_round_trip_and_junk_is_refused() {
        let id: EventId = "3-1700000000000-7".parse().unwrap();
        assert_eq!(id.partition, 3);
        assert_eq!(
            id.entry,
            StreamId {
                ms: 1_700_000_000_000,
                seq: 7
            }
        );
        assert_eq!(id.to_string(), "3-1700000000000-7");
        for bad in [
            "",
            "3",
            "3-",
            "3-1",
            "-1-2",
            "a-1-2",
            "3-1-x",
            "3-+1-2",
            "70000-1-2",
            "3-1-2-4",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad}");
        }
    }
}
