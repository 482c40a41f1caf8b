//! BERT's uncased tokenizer as `tokenizer.json` describes it: `BertNormalizer` (clean text,
//! spaces around CJK ideographs, lowercase, strip accents), `BertPreTokenizer` (split on
//! whitespace and punctuation) and `WordPiece` (greedy longest match, `##` continuations).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::{Error, format_error, read};

pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    max_word_chars: usize,
}

impl WordPiece {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = read(path)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| format_error(path, e))?;
        let model = &v["model"];
        if model["type"] != "WordPiece" || model["continuing_subword_prefix"] != "##" {
            return Err(format_error(path, "expected a WordPiece model with ## continuations"));
        }
        if v["normalizer"]["type"] != "BertNormalizer" || v["normalizer"]["lowercase"] != true {
            return Err(format_error(path, "expected BERT's lowercasing normalizer"));
        }
        let Some(entries) = model["vocab"].as_object() else {
            return Err(format_error(path, "model.vocab is not an object"));
        };
        let mut vocab = HashMap::with_capacity(entries.len());
        for (token, id) in entries {
            let id = id
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| format_error(path, format!("token {token:?} has id {id}")))?;
            vocab.insert(token.clone(), id);
        }
        let special = |name: &str| {
            vocab
                .get(name)
                .copied()
                .ok_or_else(|| format_error(path, format!("no {name} token in the vocabulary")))
        };
        let unk_name = model["unk_token"].as_str().unwrap_or("[UNK]");
        Ok(WordPiece {
            unk: special(unk_name)?,
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            max_word_chars: model["max_input_chars_per_word"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(100),
            vocab,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// `[CLS] pieces… [SEP]`, at most `max` ids.
    pub fn encode(&self, text: &str, max: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        for word in pre_tokenize(&normalize(text)) {
            self.word_pieces(&word, &mut ids);
            if ids.len() >= max - 1 {
                ids.truncate(max - 1);
                break;
            }
        }
        ids.push(self.sep);
        ids
    }

    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > self.max_word_chars {
            out.push(self.unk);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while end > start {
                let from = chars[start].0;
                let to = chars.get(end).map_or(word.len(), |c| c.0);
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.push_str(&word[from..to]);
                if let Some(&id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            let Some(id) = found else {
                out.truncate(mark);
                out.push(self.unk);
                return;
            };
            out.push(id);
            start = end;
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x2_0000..=0x2_A6DF | 0x2_A700..=0x2_B73F
        | 0x2_B740..=0x2_B81F | 0x2_B820..=0x2_CEAF | 0xF900..=0xFAFF | 0x2_F800..=0x2_FA1F)
}

/// Clean text, space out CJK, lowercase, strip accents (NFD without combining marks).
fn normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
            continue;
        }
        if c.is_whitespace() {
            cleaned.push(' ');
        } else if is_cjk(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    cleaned.to_lowercase().nfd().filter(|c| !is_combining_mark(*c)).collect()
}

/// BERT's punctuation: ASCII symbols, and every other character that is neither a letter, a
/// digit, a mark nor whitespace.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    !(c.is_alphanumeric() || c.is_whitespace() || is_combining_mark(c))
}

/// Words: split on whitespace, each punctuation character a word of its own.
fn pre_tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for chunk in text.split_whitespace() {
        let mut word = String::new();
        for c in chunk.chars() {
            if is_punctuation(c) {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push(c.to_string());
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_splits_like_bert() {
        assert_eq!(normalize("Héllo\tWORLD\u{0}"), "hello world");
        assert_eq!(
            pre_tokenize("port-scan of 10.0.0.5, (ssh)!"),
            [
                "port", "-", "scan", "of", "10", ".", "0", ".", "0", ".", "5", ",", "(", "ssh",
                ")", "!"
            ]
        );
    }

    fn tiny() -> WordPiece {
        let vocab = ["[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "port", "##s", "scan"]
            .iter()
            .zip(0..)
            .map(|(t, i)| ((*t).to_string(), i))
            .collect();
        WordPiece { vocab, unk: 0, cls: 1, sep: 2, max_word_chars: 100 }
    }

    #[test]
    fn greedy_longest_match_with_continuations() {
        let w = tiny();
        assert_eq!(w.encode("unaffable ports", 256), [1, 3, 4, 5, 6, 7, 2]);
        // A word with any piece missing is one [UNK], not a partial match.
        assert_eq!(w.encode("unaffablex scan", 256), [1, 0, 8, 2]);
        // Cut to the maximum, [SEP] kept.
        assert_eq!(w.encode("scan scan scan scan", 4), [1, 8, 8, 2]);
    }
}
