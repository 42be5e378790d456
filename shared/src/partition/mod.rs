//! Partitions (`docs/design.md` §4): which partition a user belongs to (CRC-32/IEEE of the user id's bytes
//! mod P, computed here and nowhere else), stream entry ids with their order, and the public event id
//! `<p>-<stream id>` that names one accepted update across partitions.

mod event_id;

pub use event_id::{EventId, StreamId};

/// Maps users to partitions for a fixed partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner {
    count: u16,
}

impl Partitioner {
    /// # Panics
    /// When `count` is zero (the config type refuses it first).
    pub fn new(count: u16) -> Self {
        assert!(count > 0, "at least one partition");
        Self { count }
    }

    pub fn count(self) -> u16 {
        self.count
    }

    /// The partition of `user_id`: `crc32(user id bytes) mod P`.
    pub fn partition_of(self, user_id: &str) -> u16 {
        (crc32fast::hash(user_id.as_bytes()) % u32::from(self.count)) as u16
    }

    /// Every partition, in order.
    pub fn all(self) -> std::ops::Range<u16> {
        0..self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_crc32_ieee_mod_p() {
        // CRC-32/IEEE check value of "123456789" is 0xCBF43926.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            Partitioner::new(16).partition_of("123456789"),
            (0xCBF4_3926u32 % 16) as u16
        );
        assert_eq!(Partitioner::new(1).partition_of("anyone"), 0);
    }

    #[test]
    fn users_spread_over_every_partition() {
        let partitioner = Partitioner::new(16);
        let mut seen = [0u32; 16];
        for i in 0..1_600 {
            seen[usize::from(partitioner.partition_of(&format!("user-{i}")))] += 1;
        }
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
    }
}
