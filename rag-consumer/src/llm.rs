//! The local model (any GGUF; SmolLM2-135M-Instruct from `make setup` by default) through
//! llama.cpp, answering only from the events it is given.
//!
//! Citations and addresses are constrained while the answer is written: a grammar lets the
//! model write `[#` only as the start of a citation of one of the given event ids, and end
//! only after at least one, so it cannot cite an event it was not shown nor answer without
//! citing; and it lets digits form a number or one of the retrieved events' addresses, never
//! an address of its own. [`citations`] and [`addresses`] check the finished text again
//! regardless.

use std::fmt::Write as _;
use std::io::Read as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;

/// What the model is told before the events.
pub const SYSTEM: &str = "You assist a network security analyst. Answer the question \
using only the events in the message. First list the ids of the events you rely on, like \
Events [#12], [#15]: then answer in one to three sentences. If the events do not answer the \
question, say so.";

pub struct Llm {
    backend: LlamaBackend,
    model: LlamaModel,
    path: PathBuf,
    context_tokens: u32,
    max_answer_tokens: u32,
    temperature: f32,
}

/// One turn of a conversation.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The user message: the events and the question.
    pub prompt: String,
    pub answer: String,
    /// What the answer could cite and name (in later turns too).
    pub grounds: Grounds,
}

/// What an answer may refer to: the ids of the events it was shown, and the addresses of the
/// events retrieved for it (their sources and targets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounds {
    pub ids: Vec<i64>,
    pub addresses: Vec<std::net::IpAddr>,
}

impl Grounds {
    /// Adds `other`'s ids and addresses (no duplicates).
    pub fn extend(&mut self, other: &Grounds) {
        for i in &other.ids {
            if !self.ids.contains(i) {
                self.ids.push(*i);
            }
        }
        for a in &other.addresses {
            if !self.addresses.contains(a) {
                self.addresses.push(*a);
            }
        }
    }
}

/// A finished answer and its timings.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub prompt_tokens: usize,
    pub answer_tokens: usize,
    /// From the start of prompt evaluation to the first answer token.
    pub first_token: Duration,
    pub total: Duration,
}

/// Checks that `path` is a readable GGUF file before llama.cpp sees it.
fn check_file(path: &Path) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        format!("{}: {e} (model.gguf; `make setup` installs the default model)", path.display())
    })?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic)
        .ok()
        .filter(|()| &magic == b"GGUF")
        .ok_or_else(|| format!("{}: not a GGUF model file (model.gguf)", path.display()))
}

/// llama.cpp is built for x86-64-v3 (`.cargo/config.toml`): refuse a CPU without it rather
/// than die of an illegal instruction.
fn check_cpu() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
        ]
        .iter()
        .filter(|(_, has)| !has)
        .map(|(name, _)| *name)
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "this CPU lacks {} which this build of llama.cpp uses (x86-64-v3); rebuild with \
                 the GGML_* settings in .cargo/config.toml turned OFF",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

impl Llm {
    pub fn load(
        path: &Path,
        context_tokens: u32,
        max_answer_tokens: u32,
        temperature: f64,
    ) -> Result<Self, String> {
        check_file(path)?;
        check_cpu()?;
        let mut backend = LlamaBackend::init().map_err(|e| format!("starting llama.cpp: {e}"))?;
        backend.void_logs();
        let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
            .map_err(|e| {
                format!(
                    "{}: llama.cpp could not load it ({e}); damaged or unsupported",
                    path.display()
                )
            })?;
        #[allow(clippy::cast_possible_truncation, reason = "a temperature in 0..=2")]
        let temperature = temperature as f32;
        Ok(Llm {
            backend,
            model,
            path: path.into(),
            context_tokens,
            max_answer_tokens,
            temperature,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens `text` takes.
    pub fn tokens(&self, text: &str) -> usize {
        self.model.vocab().tokenize(text.as_bytes(), false, true).len()
    }

    /// The chat prompt for `history` and a new user message.
    fn prompt(&self, history: &[Turn], user: &str) -> Result<String, String> {
        let tmpl = self.model.chat_template(None).map_err(|e| {
            format!("{}: the model has no chat template ({e})", self.path.display())
        })?;
        let msg = |role: &str, text: &str| {
            LlamaChatMessage::new(role.into(), text.into()).map_err(|e| e.to_string())
        };
        let mut chat = vec![msg("system", SYSTEM)?];
        for t in history {
            chat.push(msg("user", &t.prompt)?);
            chat.push(msg("assistant", &t.answer)?);
        }
        chat.push(msg("user", user)?);
        self.model.apply_chat_template(&tmpl, &chat, true).map_err(|e| e.to_string())
    }

    /// Room for the prompt: the context less the answer.
    pub fn prompt_budget(&self) -> usize {
        (self.context_tokens - self.max_answer_tokens) as usize
    }

    /// Whether `history` + `user` fits the prompt budget.
    pub fn fits(&self, history: &[Turn], user: &str) -> Result<bool, String> {
        Ok(self.tokens(&self.prompt(history, user)?) <= self.prompt_budget())
    }

    /// Writes the answer to `user` after `history`, citing only ids and naming only
    /// addresses in `grounds`; `each` gets the text as it is generated.
    pub fn answer(
        &self,
        history: &[Turn],
        user: &str,
        grounds: &Grounds,
        each: &mut dyn FnMut(&str),
    ) -> Result<Answer, String> {
        let t0 = Instant::now();
        let prompt = self.prompt(history, user)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), false, true);
        if tokens.len() > self.prompt_budget() {
            return Err(format!(
                "the prompt takes {} tokens, more than model.context_tokens - \
                 model.max_answer_tokens = {}",
                tokens.len(),
                self.prompt_budget()
            ));
        }
        let threads =
            std::thread::available_parallelism().map_or(2, |n| i32::try_from(n.get()).unwrap_or(2));
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.context_tokens))
            .with_n_batch(self.context_tokens)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = self
            .model
            .new_context(&self.backend, params)
            .map_err(|e| format!("llama.cpp context: {e}"))?;
        let mut batch = LlamaBatch::new(self.context_tokens as usize, 1);
        let last = tokens.len().saturating_sub(1);
        for (i, t) in tokens.iter().enumerate() {
            let pos = i32::try_from(i).map_err(|e| e.to_string())?;
            batch.add(*t, pos, &[0], i == last).map_err(|e| e.to_string())?;
        }
        ctx.decode(&mut batch).map_err(|e| format!("llama.cpp: {e}"))?;
        let mut sampler = self.sampler(grounds)?;
        let mut text = String::new();
        let mut pending = Vec::new();
        let mut first_token = None;
        let mut pos = i32::try_from(tokens.len()).map_err(|e| e.to_string())?;
        let mut n = 0;
        let vocab = self.model.vocab();
        while n < self.max_answer_tokens as usize {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            first_token.get_or_insert_with(|| t0.elapsed());
            if vocab.is_eog(token) {
                break;
            }
            n += 1;
            pending.extend(vocab.token_to_piece(token, false, None));
            // Pieces may split a UTF-8 character; emit whole characters only.
            let valid = match std::str::from_utf8(&pending) {
                Ok(s) => s.len(),
                Err(e) => e.valid_up_to(),
            };
            if valid > 0 {
                let piece = String::from_utf8_lossy(&pending[..valid]).into_owned();
                pending.drain(..valid);
                each(&piece);
                text.push_str(&piece);
            }
            batch.clear();
            batch.add(token, pos, &[0], true).map_err(|e| e.to_string())?;
            pos += 1;
            ctx.decode(&mut batch).map_err(|e| format!("llama.cpp: {e}"))?;
        }
        if !pending.is_empty() {
            let rest = String::from_utf8_lossy(&pending).into_owned();
            each(&rest);
            text.push_str(&rest);
        }
        Ok(Answer {
            text,
            prompt_tokens: tokens.len(),
            answer_tokens: n,
            first_token: first_token.unwrap_or_else(|| t0.elapsed()),
            total: t0.elapsed(),
        })
    }

    fn sampler(&self, grounds: &Grounds) -> Result<LlamaSampler, String> {
        let grammar = LlamaSampler::grammar(&self.model, &answer_grammar(grounds), "root")
            .map_err(|e| format!("the answer grammar: {e}"))?;
        // Small models loop ("a fast rules attack or a fast rules attack …"): penalise
        // repeats over the last 64 tokens.
        let repeats = LlamaSampler::penalties(self.model.vocab().n_tokens(), 64, 1.1, 0.0, 0.0);
        let pick = if self.temperature <= 0.0 {
            vec![LlamaSampler::greedy()]
        } else {
            vec![LlamaSampler::temp(self.temperature), LlamaSampler::dist(0x6d6c_6464)]
        };
        Ok(LlamaSampler::chain_simple([grammar, repeats].into_iter().chain(pick)))
    }
}

/// GBNF: the answer opens with the events it relies on, `Events [#12], [#15]: `, one or
/// more of the allowed ids, then one line of text without `[` or `#`. (A 135M model left to
/// cite inline mostly did not; made to choose first, it always cites, and only what it was
/// shown.) In that line a run of digits is a `word`: a number, a time of day (`22:47:29`, as
/// the events show them), or one of the allowed addresses, with a port or not; after a word
/// comes a character that is not a digit, `.` or `:`, or `.`/`:` followed by one, so digits
/// and dots cannot be strung into an address of the model's own (before this, `SmolLM2`
/// answered "10.88.0.67 and 10.88.0.97 were scanning" where the scanner was 203.0.113.66 and
/// neither address existed).
pub fn answer_grammar(g: &Grounds) -> String {
    if g.ids.is_empty() {
        return "root ::= [^[#]*\n".into();
    }
    let mut s = String::from(
        "root ::= \"Events \" cite (\", \" cite)* \": \" body \"\\n\"\n\
         body ::= (char | mark | word (char | mark))* word? [.:]?\n\
         char ::= [^[#\\n0-9.:]\n\
         mark ::= [.:] char\n",
    );
    let ids: Vec<String> = g.ids.iter().map(|i| format!("\"{i}\"")).collect();
    let _ = writeln!(s, "cite ::= \"[#\" ({}) \"]\"", ids.join(" | "));
    if g.addresses.is_empty() {
        s.push_str("word ::= [0-9]+ | time\n");
    } else {
        // IpAddr's Display writes only hex digits, `.` and `:`: nothing to escape.
        let addrs: Vec<String> = g.addresses.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = writeln!(
            s,
            "word ::= [0-9]+ | time | addr (\":\" [0-9]+)?\naddr ::= {}",
            addrs.join(" | ")
        );
    }
    s.push_str("time ::= [0-9] [0-9] \":\" [0-9] [0-9] (\":\" [0-9] [0-9])?\n");
    s
}

/// The IP addresses `text` names (IPv4 and IPv6, as written runs of hex digits, `.` and `:`
/// that parse as one), in order, once each.
pub fn addresses(text: &str) -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    for run in text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':')) {
        let run = run.trim_matches(|c| c == '.' || c == ':');
        if !run.contains(|c: char| c.is_ascii_digit()) {
            continue;
        }
        // An IPv4 address with a port (`10.0.0.1:22`) names the address.
        let parsed = run.parse::<std::net::IpAddr>().ok().or_else(|| {
            let (host, _) = run.rsplit_once(':')?;
            host.parse::<std::net::Ipv4Addr>().ok().map(std::net::IpAddr::V4)
        });
        if let Some(a) = parsed
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

/// The ids an answer cites (`[#12]`, `[#12, #15]`, `#12`), in order, once each.
pub fn citations(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0
                && let Ok(id) = text[i + 1..i + 1 + digits].parse::<i64>()
                && !out.contains(&id)
            {
                out.push(id);
            }
            i += 1 + digits;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_found_in_any_form() {
        assert_eq!(citations("Host A scanned [#12] and [#15, #12]; see #7."), [12, 15, 7]);
        assert_eq!(citations("no citations # here [#]"), Vec::<i64>::new());
    }

    fn grounds(ids: &[i64], addresses: &[&str]) -> Grounds {
        Grounds {
            ids: ids.to_vec(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn the_grammar_lists_only_allowed_ids_and_addresses() {
        let g = answer_grammar(&grounds(&[3, 41], &["203.0.113.66", "fe80::1"]));
        assert!(g.contains("cite ::= \"[#\" (\"3\" | \"41\") \"]\""), "{g}");
        assert!(g.starts_with("root ::= \"Events \" cite"), "at least one citation: {g}");
        assert!(g.contains("addr ::= \"203.0.113.66\" | \"fe80::1\"\n"), "{g}");
        assert!(!answer_grammar(&grounds(&[3], &[])).contains("addr"));
        assert!(!answer_grammar(&Grounds::default()).contains("cite"));
    }

    #[test]
    fn addresses_are_found_as_written() {
        let a = addresses(
            "Events [#1]: 203.0.113.66 (4) scanned 10.88.0.10:22, then fe80::1. Port 443, 2.5 s, \
             at 22:47:29; not 1.2.3 nor 300.1.1.1 nor ::",
        );
        let want: Vec<std::net::IpAddr> =
            ["203.0.113.66", "10.88.0.10", "fe80::1"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(a, want);
    }
}
