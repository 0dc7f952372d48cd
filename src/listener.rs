//! The listening sockets: one per shard on one address, sharing the accept load through
//! `SO_REUSEPORT`, and the claim that keeps a second server off that address.
//!
//! `SO_REUSEPORT` lets any socket of the same user that also sets it bind the same address
//! and port and join the group: a second `tskv-server` on the same port would print `ready`
//! and the kernel would split connections between the two servers. Linux cannot close a
//! group to later members, so the address is claimed in three steps:
//!
//! 1. **Probe.** Bind one socket *without* `SO_REUSEPORT` (with `SO_REUSEADDR`, so that
//!    connections of an earlier run still in `TIME_WAIT` do not count). This fails with
//!    `EADDRINUSE` when anything listens there, with or without `SO_REUSEPORT`, as binding
//!    a Redis port that is taken does. With port 0 the kernel picks a free port here, and
//!    the group uses it. The probe is closed before step 2 (it would keep the group out).
//! 2. **Group.** Bind and listen on one `SO_REUSEPORT` socket per shard.
//! 3. **Check.** Read the network namespace's listening TCP sockets (`/proc/net/tcp` or
//!    `tcp6`) and require every one on this address and port to be one of ours, by socket
//!    inode. Otherwise close ours and fail with "address already in use".
//!
//! # The race, and what closes it
//!
//! Between steps 1 and 2 another process may bind the port with `SO_REUSEPORT`. Step 3
//! finds it if it bound before step 3 read the table. Two `tskv-server`s started at the same
//! instant each run step 3 after binding their whole group, so the later check sees both
//! groups and fails: at most one of them keeps running (possibly neither, and a retry
//! settles it). Not covered: a program of the same user that binds the port with
//! `SO_REUSEPORT` after step 3 joins the group unnoticed, because the kernel allows it.
//! A `tskv-server` never does (its own step 1 fails), nor does anything that binds without
//! `SO_REUSEPORT`, such as Redis. If `/proc/net` cannot be read, step 3 is skipped with a
//! warning and steps 1 and 2 still refuse every server that starts after this one is up.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog of each shard's socket.
const LISTEN_BACKLOG_LEN: i32 = 1024;

/// Binds `count` listening sockets on `addr`, one per shard, after making sure no other
/// process listens there (see the module documentation). With port 0 the kernel picks one;
/// every socket gets the same.
///
/// # Errors
/// `AddrInUse` ("address already in use") when another process listens on the address,
/// else the OS error of a socket call.
pub fn bind_shard_listeners(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let addr = probe(addr)?;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        listeners.push(reuseport_listener(addr)?);
    }
    check_sole_owner(addr, &listeners)?;
    Ok(listeners)
}

/// Step 1: binds (without listening) a socket that does not share the address; returns the
/// bound address, with the port the kernel chose if `addr` has port 0.
fn probe(addr: SocketAddr) -> io::Result<SocketAddr> {
    let socket = new_socket(addr)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into()).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "address already in use (another process listens on it)",
            )
        } else {
            e
        }
    })?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("probe socket has no IP address"))
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
}

/// Step 2: a non-blocking listening socket with `SO_REUSEPORT`, so every shard can have its
/// own and the kernel spreads connections across them.
fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG_LEN)?;
    Ok(socket.into())
}

/// Step 3: fails unless every socket listening on `addr` is one of `ours`.
fn check_sole_owner(addr: SocketAddr, ours: &[TcpListener]) -> io::Result<()> {
    let table_path = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let (table, our_inodes) = match read_table_and_inodes(table_path, ours) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                "cannot list listening sockets ({table_path}: {e}); relying on the bind check alone"
            );
            return Ok(());
        }
    };
    let listening = listening_inodes(&table, addr);
    if let Some(foreign) = listening.iter().find(|i| !our_inodes.contains(i)) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "address already in use (another process listens on {addr} with SO_REUSEPORT, socket inode {foreign})"
            ),
        ));
    }
    Ok(())
}

fn read_table_and_inodes(table_path: &str, ours: &[TcpListener]) -> io::Result<(String, Vec<u64>)> {
    let table = fs::read_to_string(table_path)?;
    let inodes = ours
        .iter()
        .map(|l| socket_inode(l.as_raw_fd()))
        .collect::<io::Result<_>>()?;
    Ok((table, inodes))
}

/// The inode of socket `fd`, from `/proc/self/fd/<fd>` -> `socket:[<inode>]`.
fn socket_inode(fd: i32) -> io::Result<u64> {
    let link = fs::read_link(format!("/proc/self/fd/{fd}"))?;
    let text = link.to_string_lossy();
    text.strip_prefix("socket:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other(format!("fd {fd} is not a socket: {text}")))
}

/// State `0A` of `/proc/net/tcp`: `TCP_LISTEN`.
const TCP_LISTEN_HEX: &str = "0A";

/// The inodes of the sockets listening on exactly `addr` in a `/proc/net/tcp{,6}` table.
///
/// Each row is `sl local_address rem_address st ... uid timeout inode ...`; the local address
/// is `ADDR:PORT` in hex, where IPv4 is one 32-bit word and IPv6 four, each word printed in
/// the host's byte order.
pub fn listening_inodes(table: &str, addr: SocketAddr) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != TCP_LISTEN_HEX {
                return None;
            }
            let local = parse_local_address(fields[1])?;
            (local == addr).then(|| fields[9].parse().ok())?
        })
        .collect()
}

fn parse_local_address(text: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = text.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let words: Vec<[u8; 4]> = (0..ip_hex.len() / 8)
        .map(|i| {
            u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] => IpAddr::from(*w),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (chunk, word) in bytes.chunks_exact_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(word);
            }
            IpAddr::from(bytes)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows in the kernel's format (the address words in host byte order), as printed on
    /// a little-endian machine.
    #[cfg(target_endian = "little")]
    #[test]
    fn reads_listening_rows_of_the_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:18EC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:18EC 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 00000000:18EC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
        let addr: SocketAddr = "127.0.0.1:6380".parse().unwrap();
        // Row 1 is a connection, not a listener; row 2 listens on 0.0.0.0.
        assert_eq!(listening_inodes(table, addr), vec![4242]);
        let any: SocketAddr = "0.0.0.0:6380".parse().unwrap();
        assert_eq!(listening_inodes(table, any), vec![4444]);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn reads_ipv6_addresses() {
        let row = "00000000000000000000000001000000:18EC";
        assert_eq!(
            parse_local_address(row),
            Some("[::1]:6380".parse().unwrap())
        );
    }

    #[test]
    fn a_second_group_on_the_same_port_is_refused() {
        let first = bind_shard_listeners("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let addr = first[0].local_addr().unwrap();
        let err = bind_shard_listeners(addr, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    }

    #[test]
    fn a_foreign_reuseport_listener_on_ipv6_is_found_by_the_check() {
        let Ok(foreign) = reuseport_listener("[::1]:0".parse().unwrap()) else {
            eprintln!("SKIP a_foreign_reuseport_listener_on_ipv6_is_found_by_the_check: no IPv6 loopback here");
            return;
        };
        let addr = foreign.local_addr().unwrap();
        let ours = vec![reuseport_listener(addr).unwrap()];
        let err = check_sole_owner(addr, &ours).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    }

    #[test]
    fn a_foreign_reuseport_listener_is_found_by_the_check() {
        // Bypasses the probe, as a program that binds between our probe and our group would.
        let foreign = reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = foreign.local_addr().unwrap();
        let ours = vec![reuseport_listener(addr).unwrap()];
        let err = check_sole_owner(addr, &ours).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        drop(foreign);
        check_sole_owner(addr, &ours).unwrap();
    }
}
