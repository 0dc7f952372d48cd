//! The operations the load generator reports on, and how a reply to each is judged.

use crate::limits;
use crate::resp_client::Reply;

/// The operations the load generator reports on, one latency row each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `SET key value` of an existing key; expects `+OK`.
    Set,
    /// `GET key`; expects a bulk string or null.
    Get,
    /// `SET key value` of a new key; expects `+OK`.
    Insert,
    /// `MGET` of consecutive keys; expects an array.
    Scan,
    /// `GET key` then `SET key value`, timed together; expects `+OK` last.
    Rmw,
    /// `TS.CREATE key LABELS ...`; expects `+OK`.
    TsCreate,
    /// `TS.MADD key ts value ...`; expects an array.
    TsMadd,
    /// `TS.RANGE key from to`; expects an array.
    TsRange,
    /// `TS.MRANGE from to FILTER ...`; expects an array.
    TsMrange,
    /// The `--command` template of this index; any reply but an error is success.
    Template(u8),
}

impl Command {
    /// Every command, in report order; `ALL[c.index()] == c`.
    pub const ALL: [Command; 9] = [
        Command::Set,
        Command::Get,
        Command::Insert,
        Command::Scan,
        Command::Rmw,
        Command::TsCreate,
        Command::TsMadd,
        Command::TsRange,
        Command::TsMrange,
    ];

    /// Slots of per-command arrays: the built-in commands, then one per template.
    pub const COUNT: usize = Command::ALL.len() + limits::TEMPLATES_MAX;

    /// Position in per-command arrays: in [`Command::ALL`] for built-in commands, after
    /// them for templates.
    pub fn index(self) -> usize {
        match self {
            Command::Set => 0,
            Command::Get => 1,
            Command::Insert => 2,
            Command::Scan => 3,
            Command::Rmw => 4,
            Command::TsCreate => 5,
            Command::TsMadd => 6,
            Command::TsRange => 7,
            Command::TsMrange => 8,
            Command::Template(i) => Command::ALL.len() + usize::from(i),
        }
    }

    /// Upper-case name in reports (the command sent, or the operation for INSERT, SCAN
    /// and RMW).
    pub fn name(self) -> &'static str {
        match self {
            Command::Set => "SET",
            Command::Get => "GET",
            Command::Insert => "INSERT",
            Command::Scan => "SCAN",
            Command::Rmw => "RMW",
            Command::TsCreate => "TS.CREATE",
            Command::TsMadd => "TS.MADD",
            Command::TsRange => "TS.RANGE",
            Command::TsMrange => "TS.MRANGE",
            Command::Template(_) => "TEMPLATE",
        }
    }

    /// Whether `reply` is what this command should get (for RMW: its final SET's reply);
    /// `-...` is an error whatever the command. A `TS.MADD` array is judged per sample:
    /// each error element is a failed sample, each other element a stored one.
    pub fn judge(self, reply: &Reply<'_>) -> Outcome {
        use Command::*;
        match (self, reply) {
            (_, Reply::Error(_)) => Outcome::Error,
            (Template(_), _) => Outcome::Ok,
            (Set | Insert | Rmw | TsCreate, Reply::Simple(b"OK")) => Outcome::Ok,
            (Get, Reply::Bulk(_) | Reply::Null) => Outcome::Ok,
            (TsMadd, &Reply::Array { len, errors }) => Outcome::Samples {
                stored: (len - errors) as u64,
                failed: errors as u64,
            },
            (Scan | TsRange | TsMrange, Reply::Array { .. }) => Outcome::Ok,
            _ => Outcome::Unexpected,
        }
    }
}

/// How a reply compares with what its command expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The expected kind of reply.
    Ok,
    /// An error reply.
    Error,
    /// Any other reply.
    Unexpected,
    /// A multi-sample write (`TS.MADD`) answered with an array of one reply per sample:
    /// `stored` integers (or other non-errors) and `failed` error replies. The request
    /// succeeded only if `failed` is 0; each failed sample counts as one error.
    Samples {
        /// Samples the server stored.
        stored: u64,
        /// Samples it refused.
        failed: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_replies_per_command() {
        assert_eq!(Command::Set.judge(&Reply::Simple(b"OK")), Outcome::Ok);
        assert_eq!(
            Command::Set.judge(&Reply::Simple(b"QUEUED")),
            Outcome::Unexpected
        );
        assert_eq!(Command::Set.judge(&Reply::Null), Outcome::Unexpected);
        assert_eq!(Command::Get.judge(&Reply::Bulk(b"v")), Outcome::Ok);
        assert_eq!(Command::Get.judge(&Reply::Null), Outcome::Ok);
        assert_eq!(Command::Get.judge(&Reply::Integer(1)), Outcome::Unexpected);
        assert_eq!(Command::Get.judge(&Reply::Error(b"ERR")), Outcome::Error);
        assert_eq!(
            Command::Scan.judge(&Reply::Array { len: 2, errors: 1 }),
            Outcome::Ok
        );
    }

    #[test]
    fn ts_madd_replies_are_judged_per_sample() {
        let judge = |len, errors| Command::TsMadd.judge(&Reply::Array { len, errors });
        assert_eq!(
            judge(10, 0),
            Outcome::Samples {
                stored: 10,
                failed: 0
            }
        );
        assert_eq!(
            judge(10, 3),
            Outcome::Samples {
                stored: 7,
                failed: 3
            }
        );
        assert_eq!(Command::TsMadd.judge(&Reply::Error(b"ERR")), Outcome::Error);
        assert_eq!(
            Command::TsMadd.judge(&Reply::Integer(1)),
            Outcome::Unexpected
        );
    }

    #[test]
    fn indexes_follow_the_report_order_and_templates_come_last() {
        assert_eq!(Command::Template(2).index(), Command::ALL.len() + 2);
        for (i, c) in Command::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
        }
        assert_eq!(Command::Template(0).judge(&Reply::Integer(1)), Outcome::Ok);
    }
}
