//! The RESP request parser (`tskv::resp::RequestParser`) on arbitrary bytes, under the
//! default limits and under tiny ones: it never panics, keeps its contract (every request
//! consumes at least one byte, `Incomplete` asks for more), and frames the stream the same
//! way whether it arrives whole, a byte at a time or in pseudo-random chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::config::ProtocolLimits;
use tskv_fuzz::{check_split_invariance, TINY_LIMITS};

fuzz_target!(|data: &[u8]| {
    check_split_invariance(ProtocolLimits::default(), data);
    check_split_invariance(TINY_LIMITS, data);
});
