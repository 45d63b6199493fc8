//! RFC 6962 / RFC 9162 Merkle trees over an origin's log (SPEC §8). Pure: proofs are built
//! from a [`HashSource`] that answers the hash of any complete subtree, so a store holding
//! those hashes answers a proof with O(log n) reads, and verification needs only the proof.
//!
//! Leaf `i` of an origin's tree is its entry (or stub) of sequence `i + 1`; the leaf data is
//! the 32-byte entry hash, so the leaf hash is `SHA-256(0x00 ‖ entry hash)`. Interior nodes are
//! `SHA-256(0x01 ‖ left ‖ right)`. Because a stub carries the withheld entry's hash, every node
//! that holds an origin's chain, entries or stubs, computes the same tree.
//!
//! Also here: the subtree inclusion and consistency proofs of the Merkle Tree Certificates
//! draft (a valid subtree `[start, end)` has `start` a multiple of the smallest power of two
//! ≥ `end - start`), whose verifiers generalise RFC 9162's.

use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Hashes in a proof that can be meaningful: one per level of a tree of up to 2^64 leaves.
pub const PROOF_HASHES_MAX: usize = 64;

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The leaf hash of `data`: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// An interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// [`node_hash`] over children of any length (hashes from outside, before they are checked).
fn node_hash_bytes(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().to_vec()
}

/// Why a proof was refused or could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index, sizes or subtree bounds do not describe a provable statement.
    #[error("invalid proof request: {0}")]
    Bounds(String),
    /// The proof has the wrong number of hashes for its sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    Length {
        /// Hashes the sizes call for.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// The proof does not lead to the given root (or first root).
    #[error("proof does not match the root")]
    Mismatch,
    /// A hash is not 32 bytes.
    #[error("hash has {0} bytes, expected 32")]
    HashLength(usize),
    /// The hash source failed (storage) or lacks a subtree it should hold.
    #[error("tree storage: {0}")]
    Source(String),
}

/// Answers the hash of a complete subtree: the `2^level` leaves from `index << level`.
pub trait HashSource {
    /// The hash of complete subtree `index` at `level` (level 0: leaf hashes).
    fn perfect(&self, level: u8, index: u64) -> Result<Hash, ProofError>;
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `[start, end)` as RFC 6962's MTH defines it, for a range that is a
/// node of some tree (a left-aligned split): O(log n) lookups of complete subtrees.
pub fn range_hash(source: &dyn HashSource, start: u64, end: u64) -> Result<Hash, ProofError> {
    if end <= start {
        return Err(ProofError::Bounds(format!("empty range {start}..{end}")));
    }
    let size = end - start;
    if size.is_power_of_two() && start.is_multiple_of(size) {
        return source.perfect(size.trailing_zeros() as u8, start / size);
    }
    // Decompose into complete subtrees from the left, then fold from the right.
    let mut parts = Vec::new();
    let mut at = start;
    while at < end {
        let k = if end - at == 1 {
            1
        } else if (end - at).is_power_of_two() {
            end - at
        } else {
            split_point(end - at)
        };
        parts.push(source.perfect(k.trailing_zeros() as u8, at / k)?);
        at += k;
    }
    let mut hash = parts.pop().unwrap_or_else(empty_root);
    while let Some(left) = parts.pop() {
        hash = node_hash(&left, &hash);
    }
    Ok(hash)
}

/// The root of the first `size` leaves.
pub fn root(source: &dyn HashSource, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(source, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 PATH).
pub fn inclusion_proof(
    source: &dyn HashSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::Bounds(format!(
            "leaf {index} is not in a tree of {size}"
        )));
    }
    let mut proof = Vec::new();
    let (mut start, mut end) = (0, size);
    // Walk down from the root; siblings are collected top-down, then reversed.
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            proof.push(range_hash(source, start + k, end)?);
            end = start + k;
        } else {
            proof.push(range_hash(source, start, start + k)?);
            start += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves (RFC 6962
/// PROOF); empty when `old` is 0 or equals `new`.
pub fn consistency_proof(
    source: &dyn HashSource,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::Bounds(format!(
            "old size {old} is above new size {new}"
        )));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut proof = Vec::new();
    let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                proof.push(range_hash(source, start, end)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(source, start + k, end)?);
            end = start + k;
        } else {
            proof.push(range_hash(source, start, start + k)?);
            start += k;
            m -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

fn check_len(proof: &[Hash]) -> Result<(), ProofError> {
    if proof.len() > PROOF_HASHES_MAX {
        return Err(ProofError::Length {
            expected: PROOF_HASHES_MAX,
            got: proof.len(),
        });
    }
    Ok(())
}

/// The root that `proof` leads to from leaf `index` of a tree of `size` (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    check_len(proof)?;
    if index >= size {
        return Err(ProofError::Bounds(format!(
            "leaf {index} is not in a tree of {size}"
        )));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::Length {
                expected: 0,
                got: proof.len(),
            });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::Length {
            expected: proof.len() + 1,
            got: proof.len(),
        });
    }
    Ok(r)
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? != *root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old` leaves with `old_root` is a prefix of the tree of `new`
/// leaves with `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal
/// roots; an empty old tree proves nothing and is refused.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    verify_consistency_bytes(old, new, old_root, new_root, proof)
}

/// [`verify_consistency`] over roots given as bytes of any length, as proofs from outside
/// arrive: roots that are not 32 bytes can only match byte for byte, with equal sizes.
pub fn verify_consistency_bytes(
    old: u64,
    new: u64,
    old_root: &[u8],
    new_root: &[u8],
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Bounds(format!(
            "old size {old} is above new size {new}"
        )));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::Length {
                expected: 0,
                got: proof.len(),
            });
        }
        // The empty tree has one root; placeholders are not it.
        let empty_ok = old != 0 || old_root == empty_root();
        return if old_root == new_root && empty_ok {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if old == 0 {
        return Err(ProofError::Bounds(
            "consistency with the empty tree proves nothing".into(),
        ));
    }
    verify_subtree_consistency_bytes(0, old, new, old_root, new_root, proof)
}

/// Whether `[start, end)` is a subtree of the Merkle Tree Certificates draft: non-empty and
/// `start` a multiple of the smallest power of two ≥ `end - start`.
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    if end <= start {
        return false;
    }
    let size = u128::from(end - start);
    let ceiling = size.next_power_of_two();
    u128::from(start).is_multiple_of(ceiling)
}

/// Verifies that `leaf` is leaf `index` of the subtree `[start, end)` whose hash is
/// `subtree_root` (MTC draft: an inclusion proof within the subtree).
pub fn verify_subtree_inclusion(
    index: u64,
    start: u64,
    end: u64,
    leaf: &Hash,
    proof: &[Hash],
    subtree_root: &Hash,
) -> Result<(), ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::Bounds(format!(
            "[{start}, {end}) is not a subtree"
        )));
    }
    if index < start || index >= end {
        return Err(ProofError::Bounds(format!(
            "leaf {index} is outside [{start}, {end})"
        )));
    }
    verify_inclusion(index - start, end - start, leaf, proof, subtree_root)
}

/// Verifies that the subtree `[start, end)` with hash `subtree_root` is part of the tree of
/// `size` leaves with `root` (MTC draft's subtree consistency proof; with `start` 0 this is
/// RFC 9162's consistency proof from `end` to `size`).
pub fn verify_subtree_consistency(
    start: u64,
    end: u64,
    size: u64,
    subtree_root: &Hash,
    root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    verify_subtree_consistency_bytes(start, end, size, subtree_root, root, proof)
}

/// [`verify_subtree_consistency`] over roots given as bytes of any length. An empty subtree
/// `[start, start)` is consistent with any tree that reaches `start`, given the empty root and
/// an empty proof.
pub fn verify_subtree_consistency_bytes(
    start: u64,
    end: u64,
    size: u64,
    subtree_root: &[u8],
    root: &[u8],
    proof: &[Hash],
) -> Result<(), ProofError> {
    check_len(proof)?;
    if start == end && end <= size {
        if !proof.is_empty() {
            return Err(ProofError::Length {
                expected: 0,
                got: proof.len(),
            });
        }
        return if subtree_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if !is_valid_subtree(start, end) || end > size {
        return Err(ProofError::Bounds(format!(
            "[{start}, {end}) is not a subtree of a tree of {size}"
        )));
    }
    let (mut f, mut s, mut t) = (start, end - 1, size - 1);
    let mut rest = proof;
    let (mut fr, mut sr): (Vec<u8>, Vec<u8>);
    if s == t {
        while f != s {
            f >>= 1;
            s >>= 1;
            t >>= 1;
        }
        fr = subtree_root.to_vec();
        sr = subtree_root.to_vec();
    } else {
        while f != s && s & 1 == 1 {
            f >>= 1;
            s >>= 1;
            t >>= 1;
        }
        if f == s {
            fr = subtree_root.to_vec();
            sr = subtree_root.to_vec();
        } else {
            let Some((first, tail)) = rest.split_first() else {
                return Err(ProofError::Length {
                    expected: 1,
                    got: 0,
                });
            };
            fr = first.to_vec();
            sr = first.to_vec();
            rest = tail;
        }
    }
    for c in rest {
        if t == 0 {
            return Err(ProofError::Length {
                expected: 0,
                got: proof.len(),
            });
        }
        if s & 1 == 1 || s == t {
            if f < s {
                fr = node_hash_bytes(c, &fr);
            }
            sr = node_hash_bytes(c, &sr);
            while s & 1 == 0 && s != 0 {
                f >>= 1;
                s >>= 1;
                t >>= 1;
            }
        } else {
            sr = node_hash_bytes(&sr, c);
        }
        f >>= 1;
        s >>= 1;
        t >>= 1;
    }
    if t != 0 {
        return Err(ProofError::Length {
            expected: proof.len() + 1,
            got: proof.len(),
        });
    }
    if fr != subtree_root || sr != root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: the complete subtrees that make up its first `size`
/// leaves, largest first. Appending a leaf completes O(1) subtrees on average; the root is a
/// fold over at most 64 hashes. Streaming verifiers and the store's writer keep one per origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    /// Leaves so far.
    size: u64,
    /// (level, hash) of each complete subtree, largest (leftmost) first.
    nodes: Vec<(u8, Hash)>,
}

/// A complete subtree finished by an append: `(level, index, hash)`.
pub type Completed = (u8, u64, Hash);

impl Frontier {
    /// The frontier of the first `size` leaves, read from `source`.
    pub fn load(source: &dyn HashSource, size: u64) -> Result<Frontier, ProofError> {
        let mut nodes = Vec::new();
        let mut at = 0u64;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                nodes.push((level, source.perfect(level, at >> level)?));
                at += 1 << level;
            }
        }
        Ok(Frontier { size, nodes })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf with hash `leaf` and calls `completed` for every complete subtree the
    /// append finishes, the leaf itself first.
    pub fn push(&mut self, leaf: Hash, completed: &mut dyn FnMut(Completed)) {
        let index = self.size;
        completed((0, index, leaf));
        let mut hash = leaf;
        let mut level = 0u8;
        while let Some(&(top_level, top)) = self.nodes.last() {
            if top_level != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&top, &hash);
            level += 1;
            completed((level, index >> level, hash));
        }
        self.nodes.push((level, hash));
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut hash)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            hash = node_hash(left, &hash);
        }
        hash
    }
}

/// The complete subtrees of a tree of `size` leaves that cover any leaf from `keep` on: the
/// ones a rewind to the first `keep` leaves must forget. One range of indices per level (empty
/// levels left out), from the leaves up; a subtree outside them covers kept leaves only, so it
/// is the same in the rewound tree and stays.
pub fn rewound_subtrees(size: u64, keep: u64) -> Vec<(u8, std::ops::Range<u64>)> {
    (0..64u8)
        .map(|level| (level, (keep >> level)..(size >> level)))
        .filter(|(_, range)| !range.is_empty())
        .collect()
}

/// A whole tree in memory, every level kept: for tests and small offline checks.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    /// `levels[l][i]`: complete subtree `i` at level `l`.
    levels: Vec<Vec<Hash>>,
    /// The right edge, for appends.
    frontier: Frontier,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.push(leaf, &mut |(level, index, hash)| {
            let level = usize::from(level);
            if levels.len() <= level {
                levels.resize(level + 1, Vec::new());
            }
            debug_assert_eq!(levels[level].len() as u64, index);
            levels[level].push(hash);
        });
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Forgets every leaf from `keep` on (nothing when the tree is not larger): the subtrees
    /// [`rewound_subtrees`] names go, and the right edge is read again from the ones that stay.
    pub fn rewind(&mut self, keep: u64) -> Result<(), ProofError> {
        if keep >= self.size() {
            return Ok(());
        }
        for (level, range) in rewound_subtrees(self.size(), keep) {
            if let Some(hashes) = self.levels.get_mut(usize::from(level)) {
                hashes.truncate(usize::try_from(range.start).unwrap_or(usize::MAX));
            }
        }
        self.frontier = Frontier::load(self, keep)?;
        Ok(())
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl HashSource for MemoryTree {
    fn perfect(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(usize::from(level))
            .and_then(|hashes| hashes.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or_else(|| ProofError::Source(format!("no subtree {index} at level {level}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's MTH, recursively over the leaf hashes: the reference the stored tree must
    /// agree with.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn tree(size: u64) -> (MemoryTree, Vec<Hash>) {
        let mut tree = MemoryTree::new();
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for leaf in &leaves {
            tree.push(*leaf);
        }
        (tree, leaves)
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let (tree, leaves) = tree(70);
        for size in 0..=70u64 {
            assert_eq!(
                root(&tree, size).unwrap(),
                reference_root(&leaves[..size as usize]),
                "size {size}"
            );
        }
        assert_eq!(tree.root(), reference_root(&leaves));
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_rewound_tree_equals_a_tree_of_the_kept_leaves() {
        let (_, leaves) = tree(45);
        let replacements: Vec<Hash> = (0..20u64).map(|i| leaf_hash(&[0xee, i as u8])).collect();
        for size in 0..=45u64 {
            for keep in 0..=size {
                let mut rewound = tree(size).0;
                rewound.rewind(keep).unwrap();
                let mut fresh = MemoryTree::new();
                for leaf in &leaves[..keep as usize] {
                    fresh.push(*leaf);
                }
                assert_eq!(rewound.size(), keep);
                assert_eq!(rewound.root(), fresh.root(), "size {size} keep {keep}");
                // Growing both again with other leaves keeps them equal, proofs included.
                for leaf in &replacements {
                    rewound.push(*leaf);
                    fresh.push(*leaf);
                }
                let grown = keep + replacements.len() as u64;
                assert_eq!(rewound.root(), fresh.root(), "size {size} keep {keep}");
                assert_eq!(
                    rewound.root(),
                    reference_root(&[&leaves[..keep as usize], &replacements[..]].concat())
                );
                assert_eq!(
                    inclusion_proof(&rewound, grown - 1, grown).unwrap(),
                    inclusion_proof(&fresh, grown - 1, grown).unwrap()
                );
            }
        }
        // The subtrees forgotten: every one touching leaf 5 or later of 8 leaves.
        assert_eq!(
            rewound_subtrees(8, 5),
            vec![(0, 5..8), (1, 2..4), (2, 1..2), (3, 0..1)]
        );
        assert_eq!(rewound_subtrees(8, 8), vec![]);
    }

    #[test]
    fn frontier_loads_from_stored_subtrees() {
        let (tree, _) = tree(45);
        for size in 0..=45 {
            let frontier = Frontier::load(&tree, size).unwrap();
            assert_eq!(frontier.root(), root(&tree, size).unwrap());
        }
    }
}
