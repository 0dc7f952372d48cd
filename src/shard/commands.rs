//! `COMMAND` and its subcommands: the command table ([`CommandKind`]) in Redis 7.0's
//! shapes (`server.c` `addReplyCommandInfo`).
//!
//! `COMMAND DOCS` gives each command's summary, first version, group and complexity.
//!
//! Each entry has Redis 7's ten fields: name, arity, flags (a set in RESP3), first key,
//! last key, step, ACL categories (a set), tips (an empty set), key specifications (a set
//! of maps: `notes`, `flags`, `begin_search`, `find_keys`) and subcommands (entries of the
//! same shape for `MEMORY`, `OBJECT` and `COMMAND`, whose keys are in their subcommands'
//! specs; an empty set otherwise).

use crate::command::keyspec::{self, KeySpec, Subcommand};
use crate::command::{CommandKind, CommandSub};
use crate::resp::{self, resp3, Protocol};

/// The reply to `COMMAND ...`.
pub fn command_reply(out: &mut Vec<u8>, proto: Protocol, sub: &CommandSub<'_>) {
    let table = CommandKind::ALL;
    match sub {
        CommandSub::Count => resp::integer(out, table.len() as i64),
        CommandSub::Docs(names) => docs(out, proto, names),
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
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
            ];
            resp::array_header(out, lines.len());
            for line in lines {
                resp::simple(out, line);
            }
        }
    }
}

/// `COMMAND DOCS [name...]`: a map from each known named command (every command without
/// names) to its documentation in Redis 7.0's shape: `summary`, `since`, `group` and
/// `complexity` ([`CommandKind::docs`], [`CommandKind::group`]), and for a deprecated one
/// `doc_flags`, `deprecated_since` and `replaced_by`; RedisTimeSeries's commands
/// say `group: module` and `module: timeseries`, as Redis shows a module's. Redis's
/// `arguments`, `history` and `subcommands` are not given.
fn docs(out: &mut Vec<u8>, proto: Protocol, names: &[&[u8]]) {
    let kinds: Vec<CommandKind> = if names.is_empty() {
        CommandKind::ALL.to_vec()
    } else {
        names
            .iter()
            .filter_map(|name| CommandKind::lookup(name))
            .collect()
    };
    resp3::map_header(out, proto, kinds.len());
    for kind in kinds {
        resp::bulk(out, kind.name().as_bytes());
        let module = kind.is_series();
        let docs = kind.docs();
        let fields = 4 + usize::from(module) + if docs.deprecated.is_some() { 3 } else { 0 };
        resp3::map_header(out, proto, fields);
        for (field, value) in [
            ("summary", docs.summary),
            ("since", docs.since),
            ("group", if module { "module" } else { kind.group() }),
            ("complexity", docs.complexity),
        ] {
            resp::bulk(out, field.as_bytes());
            resp::bulk(out, value.as_bytes());
        }
        if module {
            resp::bulk(out, b"module");
            resp::bulk(out, b"timeseries");
        }
        if let Some((since, replaced_by)) = docs.deprecated {
            resp::bulk(out, b"doc_flags");
            status_set(out, proto, &["deprecated"]);
            resp::bulk(out, b"deprecated_since");
            resp::bulk(out, since.as_bytes());
            resp::bulk(out, b"replaced_by");
            resp::bulk(out, replaced_by.as_bytes());
        }
    }
}

/// `COMMAND GETKEYS command arg...`, with Redis 7.0's errors; a container's keys are found
/// by its subcommand's specs, as Redis looks the subcommand up first.
fn get_keys(out: &mut Vec<u8>, args: &[&[u8]]) {
    let Some(kind) = args.first().and_then(|name| CommandKind::lookup(name)) else {
        return resp::error(out, "ERR Invalid command specified");
    };
    let (specs, arity) = match (kind.subcommands(), args.get(1)) {
        (subs, Some(name)) if !subs.is_empty() => {
            match subs
                .iter()
                .find(|s| name.eq_ignore_ascii_case(s.name.as_bytes()))
            {
                Some(sub) => (sub.key_specs, sub.arity),
                None => return resp::error(out, "ERR Invalid command specified"),
            }
        }
        _ => (kind.key_specs(), kind.arity()),
    };
    if specs.is_empty() {
        return resp::error(out, "ERR The command has no key arguments");
    }
    let n = i32::try_from(args.len()).unwrap_or(i32::MAX);
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return resp::error(out, "ERR Invalid number of arguments specified for command");
    }
    let indexes = keyspec::key_indexes(specs, args.len());
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
    key_specs(out, proto, kind.key_specs());
    let subs = kind.subcommands();
    if subs.is_empty() {
        resp3::set_header(out, proto, 0);
    } else {
        // An array, not a set, as Redis 7.0 sends a non-empty subcommand list.
        resp::array_header(out, subs.len());
        for sub in subs {
            subcommand_entry(out, proto, kind, sub);
        }
    }
}

/// A subcommand's entry, the same ten fields (`memory|usage`, ...).
fn subcommand_entry(out: &mut Vec<u8>, proto: Protocol, kind: CommandKind, sub: &Subcommand) {
    let (first, last, step) = keyspec::legacy_range(sub.key_specs);
    resp::array_header(out, 10);
    resp::bulk(out, format!("{}|{}", kind.name(), sub.name).as_bytes());
    resp::integer(out, i64::from(sub.arity));
    status_set(out, proto, sub.flags);
    resp::integer(out, first);
    resp::integer(out, last);
    resp::integer(out, step);
    status_set(out, proto, sub.acl_categories);
    resp3::set_header(out, proto, 0);
    key_specs(out, proto, sub.key_specs);
    resp3::set_header(out, proto, 0);
}

fn key_specs(out: &mut Vec<u8>, proto: Protocol, specs: &[KeySpec]) {
    resp3::set_header(out, proto, specs.len());
    for spec in specs {
        key_spec(out, proto, spec);
    }
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
