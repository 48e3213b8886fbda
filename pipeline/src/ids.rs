//! Identifiers that must never be mixed up: a meter is not a customer.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(s: &str) -> Self {
                Self(Arc::from(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by ids are searched by `&str`: the derived `Hash`,
        /// `Eq` and `Ord` are those of the `str` inside (`Arc<str>`
        /// delegates to it), as `Borrow` requires.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }
    };
}

id_type!(
    /// 电能表 asset number, e.g. `M0000000010`.
    MeterId
);
id_type!(
    /// 用户编号 (cons_no), e.g. `C0000100131`.
    CustomerId
);

#[cfg(test)]
impl MeterId {
    /// Whether both are the same allocation, not only equal text.
    pub(crate) fn shares_text_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Hash maps keyed by ids: FxHash (rustc's hasher), several times faster
/// than the default SipHash on ids of a dozen bytes. It is not resistant to
/// chosen collisions, so it is only for maps whose keys come from the
/// archive (a record with an unknown meter id is looked up, never inserted).
pub type IdMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    /// Ids that differ only in their last bytes or their length must not
    /// collide: the trailing partial word is length-tagged.
    #[test]
    fn near_ids_hash_apart() {
        let b = BuildHasherDefault::<IdHasher>::default();
        let ids: Vec<String> = (0..20_000)
            .map(|i| format!("M{i:010}"))
            .chain(["M", "M\0", "M\0\0", "", "\0"].map(String::from))
            .collect();
        let hashes: HashSet<u64> = ids.iter().map(|s| b.hash_one(MeterId::new(s))).collect();
        assert_eq!(hashes.len(), ids.len());
        let mut m: IdMap<MeterId, usize> = IdMap::default();
        for (i, s) in ids.iter().enumerate() {
            m.insert(MeterId::new(s), i);
        }
        assert_eq!(m.get(&MeterId::new("M0000012345")), Some(&12345));
        assert_eq!(m.get(&MeterId::new("M000001234")), None);
    }

    /// `Borrow<str>` holds only if an id hashes and compares as its text.
    #[test]
    fn ids_hash_and_compare_as_their_text() {
        let b = BuildHasherDefault::<IdHasher>::default();
        let s = std::collections::hash_map::RandomState::new();
        for text in ["", "M", "M0000000010", "电能表-1"] {
            let id = MeterId::new(text);
            assert_eq!(b.hash_one(&id), b.hash_one(text));
            assert_eq!(s.hash_one(&id), s.hash_one(text));
            assert_eq!(id.cmp(&MeterId::new("M1")), text.cmp("M1"));
        }
        let m: IdMap<MeterId, usize> = [(MeterId::new("M0000000010"), 10)].into_iter().collect();
        assert_eq!(m.get("M0000000010"), Some(&10));
        assert_eq!(m.get("M000000001"), None);
    }
}
