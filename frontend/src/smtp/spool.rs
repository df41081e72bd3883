//! The spool of the message being received: what the DATA receiver writes, held in blocks of
//! about `CHUNK_SIZE` that the handover sends as they are.
//!
//! Invariants: a message is held once — blocks are sealed as they fill and never copied, and
//! no buffer grows past a block's size (a contiguous spool doubles, holding the old and the
//! new buffer at once); only the block being filled is written, and it starts small and
//! doubles up to a block, so a small message costs a small buffer.
use bridgehead_proto::CHUNK_SIZE;
use bytes::Bytes;

/// Room past `CHUNK_SIZE` in the block being filled: one read's worth, so a block is sealed
/// before it must grow.
const SLACK: usize = 16 * 1024;
/// The first buffer of a block; it doubles while it fills, up to `CHUNK_SIZE + SLACK`.
const FIRST: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Spool {
    sealed: Vec<Bytes>,
    sealed_len: usize,
    filling: Vec<u8>,
}

impl Spool {
    /// Where the receiver appends (a read's worth at a time); call `seal` after each append.
    pub fn filling(&mut self) -> &mut Vec<u8> {
        let f = &mut self.filling;
        if f.capacity() - f.len() < SLACK {
            let want = (f.capacity() * 2).clamp(FIRST, CHUNK_SIZE + SLACK);
            f.reserve_exact(want.saturating_sub(f.len()));
        }
        f
    }

    /// Seals the block being filled once it holds a chunk's worth.
    pub fn seal(&mut self) {
        if self.filling.len() >= CHUNK_SIZE {
            let full = std::mem::take(&mut self.filling);
            self.sealed_len += full.len();
            self.sealed.push(Bytes::from(full));
        }
    }

    pub fn len(&self) -> usize {
        self.sealed_len + self.filling.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message in blocks, in order; the spool is empty afterwards.
    pub fn take(&mut self) -> Vec<Bytes> {
        let mut blocks = std::mem::take(&mut self.sealed);
        if !self.filling.is_empty() {
            blocks.push(Bytes::from(std::mem::take(&mut self.filling)));
        }
        self.sealed_len = 0;
        blocks
    }

    pub fn clear(&mut self) {
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_message_costs_a_small_buffer() {
        let mut s = Spool::default();
        s.filling().extend_from_slice(b"Subject: hi\r\n\r\nhi\r\n");
        s.seal();
        assert_eq!(s.filling.capacity(), FIRST);
    }

    #[test]
    fn blocks_hold_the_message_in_order_without_growing() {
        let mut s = Spool::default();
        let piece = vec![7u8; 5000];
        let mut expected = Vec::new();
        for n in 0..200u8 {
            let mut p = piece.clone();
            p[0] = n;
            s.filling().extend_from_slice(&p);
            let cap = s.filling.capacity();
            assert!(
                cap <= CHUNK_SIZE + SLACK,
                "a block never grows past its size: {cap}"
            );
            s.seal();
            expected.extend_from_slice(&p);
        }
        assert_eq!(s.len(), expected.len());
        let blocks = s.take();
        assert!(blocks.len() >= 3);
        assert!(blocks[..blocks.len() - 1]
            .iter()
            .all(|b| b.len() >= CHUNK_SIZE));
        assert_eq!(blocks.concat(), expected);
        assert!(s.is_empty() && s.take().is_empty());
    }
}
