//! `--dump-keys` and `--dump-commands`: print what thread 0 would send, without connecting.

use std::io::{BufWriter, Write};

use crate::resp_client;
use crate::workload::{share, Command, Workload, WorkloadConfig};

/// Prints the first `count` requests of thread 0 as `COMMAND key`, one a line.
pub fn dump_keys(
    workload: &WorkloadConfig,
    seed: u64,
    threads: usize,
    count: u64,
) -> std::io::Result<()> {
    let mut generator = Workload::new(workload, seed, 0, threads);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        let request = generator.next_request();
        let name = request.command.name();
        let key = generator.key_text(request.key_index);
        out.write_all(name.as_bytes())?;
        out.write_all(b" ")?;
        out.write_all(key)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Prints the first `count` commands thread 0 would send: its share of each setup phase,
/// then the run (an RMW's SET right after its GET). One command a line, arguments escaped.
pub fn dump_commands(
    setups: &[(String, WorkloadConfig)],
    workload: &WorkloadConfig,
    seed: u64,
    threads: usize,
    count: u64,
) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut left = count;
    let mut encoded = Vec::new();
    let mut emit = |generator: &mut Workload, left: &mut u64| -> std::io::Result<()> {
        encoded.clear();
        let request = generator.next(&mut encoded);
        if request.command == Command::Rmw {
            generator.encode_set(&request, &mut encoded);
        }
        let mut pos = 0;
        while *left > 0 {
            let Some((args, used)) = resp_client::decode_command(&encoded[pos..]) else {
                break;
            };
            let mut line = Vec::new();
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                escape_arg(arg, &mut line);
            }
            line.push(b'\n');
            out.write_all(&line)?;
            pos += used;
            *left -= 1;
        }
        Ok(())
    };
    for (_, setup) in setups {
        let mut generator = Workload::new(setup, seed, 0, threads);
        let range = share(setup.setup_total().unwrap_or(0), 0, threads);
        for _ in range {
            if left == 0 {
                break;
            }
            emit(&mut generator, &mut left)?;
        }
    }
    let mut generator = Workload::new(workload, seed, 0, threads);
    while left > 0 {
        emit(&mut generator, &mut left)?;
    }
    out.flush()
}

/// Appends `arg` as redis-cli prints it: bare if it is non-empty printable ASCII without
/// spaces or quotes, else double-quoted with `\"`, `\\`, `\n`, `\r`, `\t` and `\xNN`.
fn escape_arg(arg: &[u8], out: &mut Vec<u8>) {
    let bare = !arg.is_empty()
        && arg
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'\'');
    if bare {
        out.extend_from_slice(arg);
        return;
    }
    out.push(b'"');
    for &b in arg {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b' ' => out.push(b' '),
            b if b.is_ascii_graphic() => out.push(b),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_escaped_like_redis_cli() {
        let escaped = |arg: &[u8]| {
            let mut out = Vec::new();
            escape_arg(arg, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(escaped(b"TS.MADD"), "TS.MADD");
        assert_eq!(escaped(b"a b"), "\"a b\"");
        assert_eq!(escaped(b""), "\"\"");
        assert_eq!(escaped(b"q\"\\\n\x01"), "\"q\\\"\\\\\\n\\x01\"");
    }
}
