//! `--partition count:M/N` and `--partition hash:M/N`: which of the selected trials one shard
//! of a run takes, with cargo-nextest's semantics, so that a CI job matrix splits a run the way
//! it splits `cargo nextest run`.
//!
//! - `count:M/N`: the k-th selected trial (0-based, in list order, after `--filter` and
//!   `--skip`) goes to shard `(k mod N) + 1`.
//! - `hash:M/N`: a trial goes to shard `(xxh64(name, 0) mod N) + 1`, where `xxh64` is XXH64
//!   (the `xxhash-rust` crate's `xxh64::xxh64`) of the trial's name as UTF-8 bytes with seed 0,
//!   the function nextest fixes for its 0.9 series. A trial keeps its shard when others are
//!   added or removed.
//!
//! Either way the N shards are disjoint and together hold every selected trial.

use std::fmt;

use xxhash_rust::xxh64::xxh64;

/// How trials are assigned to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Round robin over the selected trials in list order.
    Count,
    /// By a hash of the trial's name.
    Hash,
}

/// One shard of a run: `kind:shard/total`, with `1 <= shard <= total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// How trials are assigned.
    pub kind: Kind,
    /// This shard, counted from 1.
    pub shard: u64,
    /// How many shards there are.
    pub total: u64,
}

impl Partition {
    /// Parses `count:M/N` or `hash:M/N` (as clap's value parser).
    pub fn parse(text: &str) -> Result<Partition, String> {
        let (kind, rest) = if let Some(rest) = text.strip_prefix("count:") {
            (Kind::Count, rest)
        } else if let Some(rest) = text.strip_prefix("hash:") {
            (Kind::Hash, rest)
        } else {
            return Err(format!(
                "partition {text:?} must be count:M/N or hash:M/N (e.g. count:1/4)"
            ));
        };
        let (m, n) = rest
            .split_once('/')
            .ok_or_else(|| format!("partition {text:?}: expected M/N after the kind"))?;
        let number = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|e| format!("partition {text:?}: {what} {s:?} is not a number: {e}"))
        };
        let (shard, total) = (number(m, "shard")?, number(n, "total")?);
        if !(1..=total).contains(&shard) {
            return Err(format!(
                "partition {text:?}: shard {shard} must be between 1 and the total {total}"
            ));
        }
        Ok(Partition { kind, shard, total })
    }

    /// Whether the selected trial `name`, the `index`-th selected one (0-based, in list order),
    /// belongs to this shard.
    pub fn contains(&self, index: u64, name: &str) -> bool {
        let slot = match self.kind {
            Kind::Count => index % self.total,
            Kind::Hash => xxh64(name.as_bytes(), 0) % self.total,
        };
        slot == self.shard - 1
    }

    /// For each of the selected trials `names`, in list order: whether it is in this shard.
    pub fn select<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<bool> {
        names
            .into_iter()
            .zip(0u64..)
            .map(|(name, k)| self.contains(k, name))
            .collect()
    }

    /// The word that marks this shard's store names, e.g. `s2of4`.
    pub fn tag(&self) -> String {
        format!("s{}of{}", self.shard, self.total)
    }
}

impl fmt::Display for Partition {
    /// `count:M/N` or `hash:M/N`, as parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Count => "count",
            Kind::Hash => "hash",
        };
        write!(f, "{kind}:{}/{}", self.shard, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 7] = [
        "validation",
        "errors",
        "pagination",
        "snapshot::connect",
        "snapshot::delete",
        "states",
        "x",
    ];

    /// Catches: a shard that drops or doubles a trial (off-by-one in the slot), for both kinds.
    #[test]
    fn shards_are_disjoint_and_cover_every_trial() {
        for kind in ["count", "hash"] {
            for total in 1..=5u64 {
                let mut owners = vec![0; NAMES.len()];
                for shard in 1..=total {
                    let p = Partition::parse(&format!("{kind}:{shard}/{total}")).unwrap();
                    for (i, inside) in p.select(NAMES).into_iter().enumerate() {
                        owners[i] += usize::from(inside);
                    }
                }
                assert!(
                    owners.iter().all(|n| *n == 1),
                    "{kind} /{total}: {owners:?}"
                );
            }
        }
    }

    /// Catches: count partitioning that is not round robin, and a hash that is not nextest's
    /// XXH64 with seed 0 (its known value for "test" is fixed).
    #[test]
    fn count_is_round_robin_and_hash_is_xxh64_seed_0() {
        let p = Partition::parse("count:2/3").unwrap();
        assert_eq!(
            p.select(NAMES),
            [false, true, false, false, true, false, false]
        );
        assert_eq!(xxh64(b"", 0), 0xef46_db37_51d8_e999);
        // Pinned: XXH64 of each name, seed 0, mod 3 (a change of hash, seed or hashed text
        // moves trials between shards, so a CI matrix's shards would no longer match).
        let h = Partition::parse("hash:2/3").unwrap();
        assert_eq!(
            h.select(NAMES),
            [false, false, true, true, true, false, false]
        );
        let h = Partition::parse("hash:1/1").unwrap();
        assert!(NAMES.iter().all(|n| h.contains(0, n)));
        assert_eq!(p.to_string(), "count:2/3");
        assert_eq!(p.tag(), "s2of3");
    }

    /// Catches: accepting a shard outside 1..=N or a malformed value.
    #[test]
    fn bad_partitions_are_refused() {
        for bad in [
            "count",
            "count:",
            "count:1",
            "count:0/2",
            "count:3/2",
            "hash:m/2",
            "hash:1/n",
            "slice:1/2",
            "hash:1/2/3",
        ] {
            assert!(Partition::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            Partition::parse("hash:99/200").unwrap(),
            Partition {
                kind: Kind::Hash,
                shard: 99,
                total: 200
            }
        );
    }
}
