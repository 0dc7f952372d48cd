//! Bit streams for the Gorilla chunk codec: most significant bit first, the last byte
//! padded with zero bits. The reader fails instead of reading past the end.

use crate::base::codec::FormatError;

/// Appends bit fields to a byte buffer.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 means the last byte is full or there is none).
    used_bits: u32,
}

impl BitWriter {
    /// Appends the low `width` bits of `value` (`width` 1 to 64), high bit first.
    pub fn write(&mut self, value: u64, width: u32) {
        debug_assert!((1..=64).contains(&width));
        let mut left = width;
        while left > 0 {
            if self.used_bits == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used_bits;
            let take = free.min(left);
            let shift = left - take;
            let part = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.last_mut().expect("pushed above");
            *last |= part << (free - take);
            self.used_bits = (self.used_bits + take) % 8;
            left -= take;
        }
    }

    /// The bytes written, the last one zero-padded.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads bit fields from a byte slice.
#[derive(Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    bit_pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, bit_pos: 0 }
    }

    /// Reads `width` bits (0 to 64) as the low bits of a `u64`.
    ///
    /// # Errors
    /// If fewer than `width` bits remain.
    // Inlined into `chunk::decode` by request: left to the heuristics, an unrelated change
    // elsewhere in the crate once moved it out of line, and every decoded sample paid
    // for the calls (callgrind: a day's `TS.RANGE` 1% slower).
    #[inline]
    pub fn read(&mut self, width: u32) -> Result<u64, FormatError> {
        if width > 64 || self.bit_pos + width as usize > self.bytes.len() * 8 {
            return Err(FormatError {
                reason: "bit stream ends inside a field",
                offset: self.byte_offset(),
            });
        }
        let mut out = 0u64;
        let mut left = width;
        while left > 0 {
            let byte = self.bytes[self.bit_pos / 8];
            let used = (self.bit_pos % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(left);
            let part = (byte >> (avail - take)) & ((1u16 << take) - 1) as u8;
            out = (out << take) | u64::from(part);
            self.bit_pos += take as usize;
            left -= take;
        }
        Ok(out)
    }

    /// The byte holding the next bit.
    pub fn byte_offset(&self) -> usize {
        self.bit_pos / 8
    }

    /// Whether what is left is the zero padding of the last byte, nothing more.
    pub fn only_padding_left(&self) -> bool {
        let total = self.bytes.len() * 8;
        if total - self.bit_pos >= 8 {
            return false;
        }
        let used = (self.bit_pos % 8) as u32;
        used == 0 || self.bytes[self.bytes.len() - 1] & (0xffu8 >> used) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_across_byte_boundaries() {
        let fields = [
            (1u64, 1u32),
            (0b101, 3),
            (u64::MAX, 64),
            (0x3f, 6),
            (0, 7),
            (12345, 17),
        ];
        let mut w = BitWriter::default();
        for (v, width) in fields {
            w.write(v, width);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for (v, width) in fields {
            assert_eq!(r.read(width).unwrap(), v & (u64::MAX >> (64 - width)));
        }
        assert!(r.only_padding_left());
        assert!(r.read(8).is_err());
    }
}
