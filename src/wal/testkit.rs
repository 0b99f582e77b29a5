//! Deterministic test data for the WAL's tests and benchmarks (not part of the API).

/// `n` pseudo-random bytes from `seed` (xorshift64): LZ4 cannot shrink them, so they
/// exercise the raw (uncompressed) record path. The same seed gives the same bytes.
pub fn incompressible(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
