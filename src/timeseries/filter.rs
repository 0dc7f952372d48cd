//! The label filter of `TS.MGET`, `TS.MRANGE` / `TS.MREVRANGE` and `TS.QUERYINDEX`
//! (RedisTimeSeries 1.10's forms, redis.io "TS.MGET": `label=value`, `label!=value`,
//! `label=`, `label!=`, `label=(v1,v2,...)`, `label!=(v1,v2,...)`): parsing it, and what
//! one matcher says about one series' labels. Pure; [`super::label_index`] answers a whole
//! filter from its index, and its model test holds it to [`Matcher::matches`].

use super::args::ArgError;

/// One label: its name and its value.
pub type LabelPair = (Vec<u8>, Vec<u8>);

/// A series' labels, in the order `LABELS` gave them.
pub type Labels = [LabelPair];

/// One label predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// `label=value` or `label=(a,b)`: the label is one of the values.
    In(Vec<u8>, Vec<Vec<u8>>),
    /// `label!=value` or `label!=(a,b)`: the label is absent or none of the values.
    NotIn(Vec<u8>, Vec<Vec<u8>>),
    /// `label=`: the label is absent.
    Absent(Vec<u8>),
    /// `label!=`: the label is present.
    Present(Vec<u8>),
}

impl Matcher {
    /// Whether a series with `labels` satisfies this matcher (a label named twice counts
    /// with its first value).
    pub fn matches(&self, labels: &Labels) -> bool {
        let value_of = |name: &[u8]| labels.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match self {
            Self::In(name, values) => value_of(name).is_some_and(|v| values.contains(v)),
            Self::NotIn(name, values) => !value_of(name).is_some_and(|v| values.contains(v)),
            Self::Absent(name) => value_of(name).is_none(),
            Self::Present(name) => value_of(name).is_some(),
        }
    }
}

/// Whether a series with `labels` satisfies every matcher of a filter.
pub fn matches_all(filter: &[Matcher], labels: &Labels) -> bool {
    filter.iter().all(|m| m.matches(labels))
}

/// Parses the filter expressions after `FILTER`.
///
/// # Errors
/// `ERR TSDB: failed parsing labels` for a malformed one, `ERR TSDB: please provide at
/// least one matcher` when none is `label=value` or `label=(...)`: a filter always has a
/// positive matcher, which is what lets the label index start from a posting list.
pub fn parse_filter(exprs: &[&[u8]]) -> Result<Vec<Matcher>, ArgError> {
    let failed = || "ERR TSDB: failed parsing labels".to_string();
    let mut out = Vec::new();
    for expr in exprs {
        let at = expr.iter().position(|&b| b == b'=').ok_or_else(failed)?;
        let negated = at > 0 && expr[at - 1] == b'!';
        let name = expr[..if negated { at - 1 } else { at }].to_vec();
        let value = &expr[at + 1..];
        if name.is_empty() {
            return Err(failed());
        }
        let values: Vec<Vec<u8>> = match value {
            [] => Vec::new(),
            [b'(', list @ .., b')'] => list.split(|&b| b == b',').map(<[u8]>::to_vec).collect(),
            v => vec![v.to_vec()],
        };
        out.push(match (negated, values.is_empty()) {
            (false, true) => Matcher::Absent(name),
            (true, true) => Matcher::Present(name),
            (false, false) => Matcher::In(name, values),
            (true, false) => Matcher::NotIn(name, values),
        });
    }
    if !out.iter().any(|m| matches!(m, Matcher::In(..))) {
        return Err("ERR TSDB: please provide at least one matcher".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn every_filter_form() {
        let series = labels(&[("area", "32"), ("sensor", "2")]);
        let ok = |exprs: &[&str]| {
            let exprs: Vec<&[u8]> = exprs.iter().map(|e| e.as_bytes()).collect();
            parse_filter(&exprs)
                .unwrap()
                .iter()
                .all(|m| m.matches(&series))
        };
        assert!(ok(&["area=32"]));
        assert!(!ok(&["area=31"]));
        assert!(ok(&["area=(31,32)", "sensor!=3"]));
        assert!(!ok(&["area=32", "sensor!=(1,2)"]));
        assert!(ok(&["area=32", "room="]));
        assert!(!ok(&["area=32", "sensor="]));
        assert!(ok(&["area=32", "sensor!="]));
        assert!(!ok(&["area=32", "room!="]));
        let exprs: Vec<&[u8]> = vec![b"area!=1"];
        assert_eq!(
            parse_filter(&exprs).unwrap_err(),
            "ERR TSDB: please provide at least one matcher"
        );
        let exprs: Vec<&[u8]> = vec![b"nolabel"];
        assert_eq!(
            parse_filter(&exprs).unwrap_err(),
            "ERR TSDB: failed parsing labels"
        );
    }
}
