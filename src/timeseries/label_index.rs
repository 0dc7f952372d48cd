//! The secondary label index of one shard: every series' labels, and for each label name
//! and value the series that carry it, so a filtered query (`TS.MGET`, `TS.MRANGE`,
//! `TS.QUERYINDEX`) reads only the series it matches instead of every series' metadata.
//!
//! ```text
//!   series:   "cpu:1" → [host=a, dc=x]      postings:  host → a → {"cpu:1", "mem:1"}
//!             "cpu:2" → [host=b, dc=x]                      b → {"cpu:2"}
//!             "mem:1" → [host=a]                       dc   → x → {"cpu:1", "cpu:2"}
//!
//!   FILTER host=a dc!=y
//!     1. seed: the positive matcher (`l=v`, `l=(a,b)`) whose posting lists are shortest,
//!        their union              → {"cpu:1", "mem:1"}
//!     2. every matcher checked against each candidate's labels ([`filter::Matcher`])
//!                                 → ["cpu:1", "mem:1"], in key order
//! ```
//!
//! Step 2 re-checks the seed too, so the answer is exactly the brute-force filter over all
//! series even where postings over-approximate (a label named twice in one series is
//! posted under both values; [`filter::Matcher::matches`] takes the first). Pure and in
//! memory: [`super::directory`] fills it from the metadata entries and keeps it exact as
//! series are created, altered and deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::filter::{self, LabelPair, Labels, Matcher};

/// Label name → label value → user keys of the series carrying that pair.
type Postings = HashMap<Vec<u8>, HashMap<Vec<u8>, BTreeSet<Vec<u8>>>>;

/// Every series of a shard with its labels, and the posting lists of every label pair.
#[derive(Debug, Default)]
pub struct LabelIndex {
    /// User key → labels, in the order `LABELS` gave them.
    series: BTreeMap<Vec<u8>, Vec<LabelPair>>,
    postings: Postings,
}

impl LabelIndex {
    /// Whether a series named `key` is indexed.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.series.contains_key(key)
    }

    /// How many series are indexed.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Indexes series `key` with `labels`, replacing what it had (`TS.ALTER LABELS`).
    pub fn insert(&mut self, key: &[u8], labels: &Labels) {
        self.remove(key);
        for (name, value) in labels {
            self.postings
                .entry(name.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .insert(key.to_vec());
        }
        self.series.insert(key.to_vec(), labels.to_vec());
    }

    /// Drops series `key` (deleted or replaced); nothing happens if it is not indexed.
    pub fn remove(&mut self, key: &[u8]) {
        let Some(labels) = self.series.remove(key) else {
            return;
        };
        for (name, value) in labels {
            let Some(values) = self.postings.get_mut(&name) else {
                continue;
            };
            if let Some(keys) = values.get_mut(&value) {
                keys.remove(key);
                if keys.is_empty() {
                    values.remove(&value);
                }
            }
            if values.is_empty() {
                self.postings.remove(&name);
            }
        }
    }

    /// The keys of the series matching every matcher of `filter`, in key order. Reads the
    /// posting lists of one positive matcher (the cheapest), or every series when the
    /// filter has none (the parser refuses such a filter; answered anyway for totality).
    pub fn select(&self, filter: &[Matcher]) -> Vec<&[u8]> {
        let seed = filter
            .iter()
            .filter_map(|m| match m {
                Matcher::In(name, values) => Some((name, values)),
                _ => None,
            })
            .min_by_key(|(name, values)| self.posting_len(name, values));
        let Some((name, values)) = seed else {
            return self
                .series
                .iter()
                .filter(|(_, labels)| filter::matches_all(filter, labels))
                .map(|(key, _)| key.as_slice())
                .collect();
        };
        let mut candidates: Vec<&[u8]> = values
            .iter()
            .filter_map(|value| self.postings.get(name)?.get(value))
            .flatten()
            .map(Vec::as_slice)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|key| filter::matches_all(filter, &self.series[*key]));
        candidates
    }

    /// How many keys the posting lists of `name` = one of `values` hold together.
    fn posting_len(&self, name: &[u8], values: &[Vec<u8>]) -> usize {
        let Some(by_value) = self.postings.get(name) else {
            return 0;
        };
        values
            .iter()
            .filter_map(|v| by_value.get(v))
            .map(BTreeSet::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Model = BTreeMap<Vec<u8>, Vec<LabelPair>>;

    #[derive(Clone, Debug)]
    enum Step {
        /// Create the series, or replace its labels (`TS.ALTER LABELS`).
        Insert(Vec<u8>, Vec<LabelPair>),
        Remove(Vec<u8>),
        Query(Vec<Matcher>),
    }

    // Small pools, so keys, names and values collide often: replacements, shared
    // postings, label names given twice, filters naming absent labels and values.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        (0u8..12).prop_map(|k| format!("s{k}").into_bytes())
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![&b"a"[..], b"b", b"c", b"d"]).prop_map(<[u8]>::to_vec)
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![&b"1"[..], b"2", b"3", b""]).prop_map(<[u8]>::to_vec)
    }

    fn values() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(value(), 1..4)
    }

    fn matcher() -> impl Strategy<Value = Matcher> {
        prop_oneof![
            (name(), values()).prop_map(|(n, v)| Matcher::In(n, v)),
            (name(), values()).prop_map(|(n, v)| Matcher::NotIn(n, v)),
            name().prop_map(Matcher::Absent),
            name().prop_map(Matcher::Present),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (key(), prop::collection::vec((name(), value()), 0..4))
                .prop_map(|(k, l)| Step::Insert(k, l)),
            1 => key().prop_map(Step::Remove),
            3 => prop::collection::vec(matcher(), 1..4).prop_map(Step::Query),
        ]
    }

    fn brute_force<'m>(model: &'m Model, filter: &[Matcher]) -> Vec<&'m [u8]> {
        model
            .iter()
            .filter(|(_, labels)| filter::matches_all(filter, labels))
            .map(|(key, _)| key.as_slice())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The index answers every filter form exactly as checking each series' labels
        /// does, through creates, label changes and deletions.
        #[test]
        fn index_answers_like_a_brute_force_filter(
            steps in prop::collection::vec(step(), 1..80)
        ) {
            let mut index = LabelIndex::default();
            let mut model = Model::new();
            for step in steps {
                match step {
                    Step::Insert(key, labels) => {
                        index.insert(&key, &labels);
                        model.insert(key, labels);
                    }
                    Step::Remove(key) => {
                        index.remove(&key);
                        model.remove(&key);
                    }
                    Step::Query(filter) => {
                        prop_assert_eq!(index.select(&filter), brute_force(&model, &filter));
                    }
                }
                prop_assert_eq!(index.series_count(), model.len());
                for key in model.keys() {
                    prop_assert!(index.contains(key));
                }
            }
            // No posting list outlives the last series carrying its pair.
            for (key, _) in std::mem::take(&mut model) {
                index.remove(&key);
            }
            prop_assert!(index.postings.is_empty());
        }
    }
}
