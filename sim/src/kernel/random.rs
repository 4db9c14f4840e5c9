//! Seeded entropy: one ChaCha20 stream per process, chosen by the process's creation path,
//! so that the simulator and the oracle's native run hand out the same bytes whatever order
//! the processes run in. This module is the protocol; both sides follow it.
//!
//! - **Creation path.** The root process's is `[]`. The i-th child process (0-based,
//!   counted per parent process in the order it created them) of a process with path `P`
//!   has path `P + [i]`. fork, vfork and clone without `CLONE_THREAD` create processes;
//!   the parent is the process of the task that made the call, whichever of its threads
//!   that is (with `CLONE_PARENT` too). Threads get no path: they draw from their process's
//!   stream.
//! - **Stream.** A process's stream is [`process_stream`]`(seed, path)`.
//! - **AT_RANDOM.** At program start and at every execve, the new image's 16 AT_RANDOM
//!   bytes are the next 16 bytes of the process's stream (execve does not restart it).
//! - **getrandom.** The bytes a call returns (as many as its result) are the next bytes of
//!   the calling process's stream.
//! - **fork.** The child's stream is a fresh one from its path, not a copy of the
//!   parent's; its memory, the parent's AT_RANDOM bytes included, is a copy as usual.
//!
//! Two threads of one process drawing at once take bytes in the order they are served,
//! which the schedule decides; so does the numbering of children that two threads of one
//! process create at once.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The entropy stream of the process with creation path `path` (see the module doc).
///
/// The root's is `ChaCha20Rng::seed_from_u64(seed)`, as it always was (snapshots hold its
/// bytes). A child's has the same key and ChaCha's stream number (the 64-bit nonce)
/// `path_stream_number(path)`: independent keystreams under one key.
pub fn process_stream(seed: u64, path: &[u32]) -> ChaCha20Rng {
    let mut stream = ChaCha20Rng::seed_from_u64(seed);
    if !path.is_empty() {
        stream.set_stream(path_stream_number(path));
    }
    stream
}

/// splitmix64 chained over the path: `h = 0`, then `h = splitmix64(h ^ splitmix64(i))` for
/// each index `i`. Each step is a bijection of `h` for a given `i`, so two paths share a
/// number only by a 64-bit hash collision; the root (stream 0) is never hashed.
fn path_stream_number(path: &[u32]) -> u64 {
    path.iter()
        .fold(0, |h, &i| splitmix64(h ^ splitmix64(u64::from(i))))
}

/// Vigna's splitmix64 finalizer (the seeding step of xoshiro; public domain).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    fn first_bytes(seed: u64, path: &[u32]) -> [u8; 32] {
        let mut bytes = [0; 32];
        process_stream(seed, path).fill_bytes(&mut bytes);
        bytes
    }

    #[test]
    fn the_root_stream_is_the_seeded_one() {
        for seed in [0, 1, 42, u64::MAX] {
            let mut expected = [0; 32];
            ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut expected);
            assert_eq!(first_bytes(seed, &[]), expected);
        }
    }

    #[test]
    fn distinct_paths_give_distinct_streams() {
        // Every path of up to three indices below 4, and a few far ones: prefixes,
        // permutations and the same indices at different depths among them.
        let mut paths: Vec<Vec<u32>> = vec![vec![], vec![u32::MAX], vec![0, u32::MAX]];
        for a in 0..4 {
            paths.push(vec![a]);
            for b in 0..4 {
                paths.push(vec![a, b]);
                for c in 0..4 {
                    paths.push(vec![a, b, c]);
                }
            }
        }
        let streams: std::collections::BTreeSet<[u8; 32]> =
            paths.iter().map(|path| first_bytes(7, path)).collect();
        assert_eq!(streams.len(), paths.len());
        assert_ne!(first_bytes(7, &[0]), first_bytes(8, &[0]));
    }

    #[test]
    fn streams_are_deterministic() {
        assert_eq!(first_bytes(3, &[1, 0, 2]), first_bytes(3, &[1, 0, 2]));
        // Pinned: a change to the derivation would silently break every recorded run.
        assert_eq!(path_stream_number(&[]), 0);
        assert_eq!(path_stream_number(&[0]), 0xa706_dd2f_4d19_7e6f);
        assert_eq!(path_stream_number(&[1, 0]), 0x672b_f35e_e2b5_923e);
        let first_word = |path: &[u32]| {
            let mut word = [0; 8];
            process_stream(1, path).fill_bytes(&mut word);
            u64::from_le_bytes(word)
        };
        assert_eq!(first_word(&[0]), 934_722_576_030_863_889);
        assert_eq!(first_word(&[1, 0]), 9_593_108_851_061_885_468);
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
