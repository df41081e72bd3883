//! The spool of the message being received: what the DATA receiver writes, held in blocks of
//! about `CHUNK_SIZE` that the handover sends as they are.
//!
//! Invariants: a message is held once — blocks are sealed as they fill and never copied, and
//! no buffer grows by reallocation past a block's size (a contiguous spool doubles, holding
//! the old and the new buffer at once); only the block being filled is written.
use bridgehead_proto::CHUNK_SIZE;
use bytes::Bytes;

/// Room past `CHUNK_SIZE` in the block being filled: one read's worth, so a block is sealed
/// before it must grow.
const SLACK: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Spool {
    sealed: Vec<Bytes>,
    sealed_len: usize,
    filling: Vec<u8>,
}

impl Spool {
    /// Where the receiver appends; call `seal` after each append.
    pub fn filling(&mut self) -> &mut Vec<u8> {
        if self.filling.capacity() == 0 {
            self.filling = Vec::with_capacity(CHUNK_SIZE + SLACK);
        }
        &mut self.filling
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
    fn blocks_hold_the_message_in_order_without_growing() {
        let mut s = Spool::default();
        let piece = vec![7u8; 5000];
        let mut expected = Vec::new();
        for n in 0..200u8 {
            let mut p = piece.clone();
            p[0] = n;
            s.filling().extend_from_slice(&p);
            let cap = s.filling.capacity();
            assert_eq!(cap, CHUNK_SIZE + SLACK, "the block being filled never grew");
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
