//! `COMMAND` and its subcommands: the command table ([`CommandKind`]) in Redis 7.0's
//! shapes (`server.c` `addReplyCommandInfo`).
//!
//! Each entry has Redis 7's ten fields: name, arity, flags (a set in RESP3), first key,
//! last key, step, ACL categories (a set), tips (an empty set), key specifications (a set
//! of maps: `notes`, `flags`, `begin_search`, `find_keys`) and subcommands (an empty set:
//! tskv lists no subcommand entries).

use crate::command::keyspec::KeySpec;
use crate::command::{CommandKind, CommandSub};
use crate::resp::{self, resp3, Protocol};

/// The reply to `COMMAND ...`.
pub fn command_reply(out: &mut Vec<u8>, proto: Protocol, sub: &CommandSub<'_>) {
    let table = CommandKind::ALL;
    match sub {
        CommandSub::Count => resp::integer(out, table.len() as i64),
        CommandSub::Docs => resp3::map_header(out, proto, 0),
        CommandSub::List => {
            resp::array_header(out, table.len());
            for kind in table {
                entry(out, proto, kind);
            }
        }
        CommandSub::Info(names) if names.is_empty() => {
            command_reply(out, proto, &CommandSub::List);
        }
        CommandSub::Info(names) => {
            resp::array_header(out, names.len());
            for name in names {
                match CommandKind::lookup(name) {
                    Some(kind) => entry(out, proto, kind),
                    None => resp3::null(out, proto),
                }
            }
        }
        CommandSub::Names => {
            resp::array_header(out, table.len());
            for kind in table {
                resp::bulk(out, kind.name().as_bytes());
            }
        }
        CommandSub::GetKeys(args) => get_keys(out, args),
        CommandSub::Help => {
            let lines = [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full command.",
                "INFO [<command-name> ...]",
                "    Return details about the named commands, or all of them.",
                "LIST",
                "    Return the names of all commands.",
                "DOCS",
                "    An empty map: tskv has no command documentation.",
            ];
            resp::array_header(out, lines.len());
            for line in lines {
                resp::simple(out, line);
            }
        }
    }
}

/// `COMMAND GETKEYS command arg...`, with Redis 7.0's errors.
fn get_keys(out: &mut Vec<u8>, args: &[&[u8]]) {
    let Some(kind) = args.first().and_then(|name| CommandKind::lookup(name)) else {
        return resp::error(out, "ERR Invalid command specified");
    };
    if kind.key_specs().is_empty() {
        return resp::error(out, "ERR The command has no key arguments");
    }
    if !kind.accepts_arg_count(args.len()) {
        return resp::error(out, "ERR Invalid number of arguments specified for command");
    }
    let indexes = kind.key_indexes(args.len());
    resp::array_header(out, indexes.len());
    for index in indexes {
        resp::bulk(out, args[index]);
    }
}

/// One command's ten-field entry.
fn entry(out: &mut Vec<u8>, proto: Protocol, kind: CommandKind) {
    let (first, last, step) = kind.key_positions();
    resp::array_header(out, 10);
    resp::bulk(out, kind.name().as_bytes());
    resp::integer(out, i64::from(kind.arity()));
    status_set(out, proto, kind.flags());
    resp::integer(out, first);
    resp::integer(out, last);
    resp::integer(out, step);
    status_set(out, proto, &kind.acl_categories());
    resp3::set_header(out, proto, 0);
    resp3::set_header(out, proto, kind.key_specs().len());
    for spec in kind.key_specs() {
        key_spec(out, proto, spec);
    }
    resp3::set_header(out, proto, 0);
}

fn status_set(out: &mut Vec<u8>, proto: Protocol, words: &[&str]) {
    resp3::set_header(out, proto, words.len());
    for word in words {
        resp::simple(out, word);
    }
}

/// A key specification as Redis 7.0 prints it (a map; a flat array in RESP2).
fn key_spec(out: &mut Vec<u8>, proto: Protocol, spec: &KeySpec) {
    resp3::map_header(out, proto, if spec.notes.is_some() { 4 } else { 3 });
    if let Some(notes) = spec.notes {
        resp::bulk(out, b"notes");
        resp::bulk(out, notes.as_bytes());
    }
    resp::bulk(out, b"flags");
    status_set(out, proto, spec.flags);
    resp::bulk(out, b"begin_search");
    typed_spec(out, proto, "index", &[("index", spec.begin_index)]);
    resp::bulk(out, b"find_keys");
    typed_spec(
        out,
        proto,
        "range",
        &[
            ("lastkey", spec.last_key),
            ("keystep", spec.key_step),
            ("limit", 0),
        ],
    );
}

/// `{type: <kind>, spec: {name: value, ...}}`.
fn typed_spec(out: &mut Vec<u8>, proto: Protocol, kind: &str, fields: &[(&str, i64)]) {
    resp3::map_header(out, proto, 2);
    resp::bulk(out, b"type");
    resp::bulk(out, kind.as_bytes());
    resp::bulk(out, b"spec");
    resp3::map_header(out, proto, fields.len());
    for (name, value) in fields {
        resp::bulk(out, name.as_bytes());
        resp::integer(out, *value);
    }
}
