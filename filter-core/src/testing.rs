//! What the unit tests share.

/// A small deterministic generator (xorshift64) for generated test inputs: each call gives a
/// number below its argument.
pub(crate) fn picker(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}
