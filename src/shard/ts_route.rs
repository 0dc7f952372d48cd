//! Routing the time-series commands: each names one series (`TS.MADD` one per sample),
//! runs on the shard that owns it, and answers with a complete encoded reply
//! ([`crate::timeseries::exec`]).

use super::conn::Reply;
use super::exec::Wait;
use super::mesh::Op;
use super::Shard;
use crate::command::CommandKind;
use crate::timeseries::exec::encode_request;

impl Shard {
    /// Sends `kind`'s request (arguments after the name in `args`) to the shards owning
    /// its keys, with the reply slot it fills.
    pub(super) fn series_command(
        &mut self,
        key: (u32, u32),
        kind: CommandKind,
        args: &[&[u8]],
    ) -> Result<(), Wait> {
        let name = kind.name().as_bytes();
        if kind == CommandKind::TsMAdd {
            // One part per sample; each answers alone (a timestamp or an error).
            let requests: Vec<Vec<u8>> = args
                .chunks_exact(3)
                .map(|s| encode_request(&[name, s[0], s[1], s[2]]))
                .collect();
            let ops: Vec<Op<&[u8]>> = args
                .chunks_exact(3)
                .zip(&requests)
                .map(|(s, request)| Op::Series {
                    key: s[0],
                    request,
                    writes: true,
                })
                .collect();
            return self.scatter(key, Reply::Parts(vec![None; ops.len()]), &ops);
        }
        let mut words = Vec::with_capacity(args.len() + 1);
        words.push(name);
        words.extend_from_slice(args);
        let request = encode_request(&words);
        let op = Op::Series {
            key: args[0],
            request: &request,
            writes: kind.is_write(),
        };
        self.scatter(key, Reply::Single(None), &[op])
    }
}
