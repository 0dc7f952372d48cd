//! `--command` templates: their report names, the weighted draw, and the encoding with the
//! `__key__` and `__value__` placeholders filled.

use crate::resp_client::{encode_array_header, encode_bulk};

/// One `--command` template and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    /// Its words; `__key__` and `__value__` are placeholders.
    pub words: Vec<String>,
    /// Relative weight.
    pub weight: u32,
    /// Its report name: the first word upper-cased, with `#N` (N from 1) when an earlier
    /// template starts with the same word.
    pub name: String,
}

/// Key placeholder of a template: the drawn key index, zero-padded.
pub const KEY_PLACEHOLDER: &str = "__key__";
/// Value placeholder of a template: a value of `--value-size` bytes.
pub const VALUE_PLACEHOLDER: &str = "__value__";

/// Templates from `--command` texts and their weights, named for the report.
pub fn templates(texts: &[String], weights: &[u32]) -> Vec<TemplateSpec> {
    let mut specs: Vec<TemplateSpec> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let first = words
            .first()
            .map_or(String::new(), |w| w.to_ascii_uppercase());
        let same = specs
            .iter()
            .filter(|s| s.name.split('#').next() == Some(first.as_str()))
            .count();
        let name = if same == 0 {
            first
        } else {
            format!("{first}#{}", same + 1)
        };
        specs.push(TemplateSpec {
            words,
            weight: weights.get(i).copied().unwrap_or(1),
            name,
        });
    }
    specs
}

/// The index of the template that `draw` in `0..total weight` falls on.
pub(super) fn pick(specs: &[TemplateSpec], draw: u64) -> usize {
    let mut left = draw;
    for (i, spec) in specs.iter().enumerate() {
        if left < u64::from(spec.weight) {
            return i;
        }
        left -= u64::from(spec.weight);
    }
    unreachable!("draw beyond the total weight")
}

/// The sum of the templates' weights.
pub(super) fn total_weight(specs: &[TemplateSpec]) -> u64 {
    specs.iter().map(|s| u64::from(s.weight)).sum()
}

/// Appends `words` as a RESP command with `__key__` as `key_index` zero-padded and
/// `__value__` as `value`. `key` and `word` are scratch buffers the caller reuses, so a
/// template costs no allocation per request.
pub(super) fn encode(
    words: &[String],
    key_index: u64,
    value: &[u8],
    key: &mut Vec<u8>,
    word: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    encode_array_header(out, words.len());
    key.clear();
    super::push_key_digits(key, key_index);
    for template_word in words {
        word.clear();
        fill_placeholders(template_word, key, value, word);
        encode_bulk(out, word);
    }
}

/// Appends `word` to `out` with every `__key__` replaced by `key` and every `__value__` by
/// `value`.
fn fill_placeholders(word: &str, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let mut rest = word;
    while let Some(at) = rest.find("__") {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix(KEY_PLACEHOLDER) {
            out.extend_from_slice(key);
            rest = after;
        } else if let Some(after) = tail.strip_prefix(VALUE_PLACEHOLDER) {
            out.extend_from_slice(value);
            rest = after;
        } else {
            out.extend_from_slice(b"__");
            rest = &tail[2..];
        }
    }
    out.extend_from_slice(rest.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_names_numbered() {
        let mut buf = Vec::new();
        fill_placeholders("k:__key__:__value____x", b"007", b"vv", &mut buf);
        assert_eq!(buf, b"k:007:vv__x");
        let texts = [
            "SET key:__key__ __value__".to_string(),
            "GET key:__key__".to_string(),
            "get other".to_string(),
        ];
        let specs = templates(&texts, &[3, 1, 0]);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["SET", "GET", "GET#2"]);
        assert_eq!(total_weight(&specs), 4);
        assert_eq!((pick(&specs, 2), pick(&specs, 3)), (0, 1));
    }
}
