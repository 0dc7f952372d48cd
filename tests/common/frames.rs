//! A raw client that returns each reply as the exact bytes received, RESP2 or RESP3, for
//! byte-for-byte comparisons with `redis-server`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use super::{encode, IO_TIMEOUT};

/// A raw connection that returns each reply as the exact bytes received.
pub struct Frames {
    /// The socket, for writing requests.
    pub writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Frames {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> Self {
        let writer = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        writer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        Frames { writer, reader }
    }

    /// Sends one request and returns its reply's bytes.
    pub fn request(&mut self, args: &[&str]) -> Vec<u8> {
        self.writer.write_all(&encode(args)).unwrap();
        self.frame()
    }

    /// One whole RESP2 or RESP3 reply (RESP3 spec: every type, attributes included).
    pub fn frame(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_frame_into(&mut out);
        out
    }

    fn read_frame_into(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.reader
            .read_until(b'\n', out)
            .expect("read a reply line");
        let line = &out[start..];
        assert!(line.ends_with(b"\r\n"), "reply line {line:?} ends in CRLF");
        let kind = line[0];
        let number = || -> i64 {
            std::str::from_utf8(&line[1..line.len() - 2])
                .unwrap()
                .parse()
                .unwrap()
        };
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let len = number();
                if len >= 0 {
                    let mut payload = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut payload).unwrap();
                    out.extend_from_slice(&payload);
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let count = number().max(0) * if matches!(kind, b'%' | b'|') { 2 } else { 1 };
                for _ in 0..count {
                    self.read_frame_into(out);
                }
                if kind == b'|' {
                    // An attribute precedes the reply it describes.
                    self.read_frame_into(out);
                }
            }
            other => panic!("unknown RESP type byte {:?}", other as char),
        }
    }
}
