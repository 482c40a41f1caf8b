//! The `rag` commands over the event store: `ask`, `chat`, `search`, `similar`, `events`.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use mld_daemon::ExitCode;
use mld_eventstore::event::utc;
use mld_eventstore::{Filter, Verdict};
use serde_json::json;

use crate::llm::{Grounds, Llm, Turn, addresses, citations};
use crate::query::{self, Query};
use crate::retrieve::{Hit, Retriever};

/// The shipped config's place; used when it exists and `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/mldefender/rag.json";

pub type Config = <crate::Config as mld_config::DaemonConfig>::Valid;

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The rag config (store, models, retrieval, etcd and root secret for the admin
    /// commands). Default: /etc/mldefender/rag.json when it exists, else the built-in
    /// defaults.
    #[arg(long, short, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    pub fn load(&self) -> Result<Config, (ExitCode, String)> {
        let path = match &self.config {
            Some(p) => p.clone(),
            None if std::path::Path::new(DEFAULT_CONFIG).exists() => DEFAULT_CONFIG.into(),
            None => {
                return mld_config::DaemonConfig::validate(&crate::Config::default())
                    .map_err(|e| (ExitCode::Config, format!("built-in defaults: {e:?}")));
            }
        };
        mld_config::load::<crate::Config>(&path).map_err(|e| (ExitCode::Config, e.to_string()))
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct AskArgs {
    /// The question, e.g. "which hosts were blocked for scanning yesterday".
    #[arg(required = true, num_args = 1.., value_name = "QUESTION")]
    pub question: Vec<String>,
    /// Print the answer, its citations and the retrieved events as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Print timings (retrieval, first token, total) to stderr.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    #[arg(required = true, num_args = 1.., value_name = "QUESTION")]
    pub question: Vec<String>,
    /// Events shown at most (default: `retrieval.top_k`).
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SimilarArgs {
    /// A store event id (the first column of `rag events`).
    pub id: i64,
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// From: a date (YYYY-MM-DD), or "yesterday", "last hour", "past 3 days" …
    #[arg(long)]
    pub since: Option<String>,
    /// Until (exclusive): a date (YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<String>,
    /// Either endpoint (repeatable).
    #[arg(long)]
    pub host: Vec<String>,
    /// Either port (repeatable).
    #[arg(long)]
    pub port: Vec<u16>,
    /// BENIGN, SUSPICIOUS or MALICIOUS (repeatable).
    #[arg(long, value_parser = parse_verdict)]
    pub verdict: Vec<Verdict>,
    /// A forest that scored the event at 0.5 or more: ddos, ransomware, traffic, internal.
    #[arg(long, value_parser = parse_detector)]
    pub detector: Vec<String>,
    /// A fast rule id or prefix (scan, scan.ports, bruteforce …).
    #[arg(long)]
    pub rule: Vec<String>,
    #[arg(long)]
    pub min_score: Option<f64>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    Verdict::parse(s).ok_or_else(|| format!("{s:?}: one of BENIGN, SUSPICIOUS, MALICIOUS"))
}

fn parse_detector(s: &str) -> Result<String, String> {
    mld_eventstore::DETECTORS
        .iter()
        .find(|d| d.eq_ignore_ascii_case(s))
        .map(|d| (*d).to_owned())
        .ok_or_else(|| format!("{s:?}: one of {}", mld_eventstore::DETECTORS.join(", ")))
}

/// `--now`, when given: time expressions are read as if it were then.
pub static NOW: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn now() -> f64 {
    *NOW.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    })
}

/// A `--now` value: Unix seconds, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` (UTC).
pub fn parse_now(s: &str) -> Result<f64, String> {
    if let Ok(t) = s.parse::<f64>()
        && t.is_finite()
        && t >= 0.0
    {
        return Ok(t);
    }
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let day = query::parse_date(date);
    let mut parts = time.split(':').map(str::parse::<u32>);
    let (h, m, sec) = (parts.next(), parts.next(), parts.next().unwrap_or(Ok(0)));
    match (day, h, m, sec) {
        (Some(d), Some(Ok(h)), Some(Ok(m)), Ok(sec)) if h < 24 && m < 60 && sec < 61 => {
            Ok(d + f64::from(h * 3_600 + m * 60 + sec))
        }
        _ => Err(format!("{s:?}: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC)")),
    }
}

type Outcome = Result<ExitCode, (ExitCode, String)>;

fn unavailable(e: String) -> (ExitCode, String) {
    (ExitCode::Unavailable, e)
}

fn usage(e: impl std::fmt::Display) -> (ExitCode, String) {
    (ExitCode::Usage, e.to_string())
}

fn parse_question(words: &[String]) -> Result<(String, Query), (ExitCode, String)> {
    let text = words.join(" ");
    let q = query::parse(&text, now()).map_err(usage)?;
    Ok((text, q))
}

/// Says that nothing matched, and what was asked for.
#[allow(clippy::print_stderr, reason = "the command's message")]
fn nothing(q: &Query) -> ExitCode {
    let mut what = q.understood.clone();
    if !q.topic.is_empty() {
        what.push(format!("about {:?}", q.topic));
    }
    eprintln!(
        "rag: no stored event matches ({}); nothing to answer from",
        if what.is_empty() { "no filter".into() } else { what.join(", ") }
    );
    ExitCode::Failure
}

fn event_json(h: &Hit) -> serde_json::Value {
    let e = &h.event;
    json!({
        "id": e.id, "detection_id": e.detection_id, "last_ts": e.last_ts, "time": utc(e.last_ts),
        "src_ip": e.src_ip, "src_port": e.src_port, "dst_ip": e.dst_ip, "dst_port": e.dst_port,
        "proto": e.proto, "verdict": e.verdict.as_str(), "final_score": e.final_score,
        "ml_scores": {"ddos": e.ml_scores[0], "ransomware": e.ml_scores[1],
                      "traffic": e.ml_scores[2], "internal": e.ml_scores[3]},
        "fast_rules": e.fast_rules, "description": e.description, "similarity": h.similarity,
    })
}

/// A table of events (id, time, endpoints, verdict, score, rules, similarity).
pub fn table(hits: &[Hit]) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "{:>8}  {:<19}  {:<40}  {:<10}  {:>5}  {:<22}  {:>5}\n",
        "id", "time (UTC)", "flow", "verdict", "score", "fast rules", "sim"
    );
    for h in hits {
        let e = &h.event;
        let flow = format!(
            "{}:{} > {}:{}/{}",
            e.src_ip,
            e.src_port,
            e.dst_ip,
            e.dst_port,
            mld_eventstore::event::proto_name(e.proto)
        );
        let sim = h.similarity.map_or("-".into(), |s| format!("{s:.2}"));
        let _ = writeln!(
            s,
            "{:>8}  {:<19}  {:<40}  {:<10}  {:>5.2}  {:<22}  {:>5}",
            e.id,
            utc(e.last_ts),
            flow,
            e.verdict.as_str(),
            e.final_score,
            if e.fast_rules.is_empty() { "-".into() } else { e.fast_rules.join(",") },
            sim
        );
    }
    s
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn print_hits(hits: &[Hit], as_json: bool) {
    if as_json {
        let v: Vec<_> = hits.iter().map(event_json).collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        print!("{}", table(hits));
    }
}

pub fn search(config: &Config, a: &SearchArgs) -> Outcome {
    let (_, q) = parse_question(&a.question)?;
    let mut r =
        Retriever::open(&config.store_path, &config.embedding_model).map_err(unavailable)?;
    let hits = r.search(&q, a.limit.unwrap_or(config.top_k as usize)).map_err(unavailable)?;
    if hits.is_empty() {
        return Ok(nothing(&q));
    }
    print_hits(&hits, a.json);
    Ok(ExitCode::Success)
}

pub fn similar(config: &Config, a: &SimilarArgs) -> Outcome {
    let mut r =
        Retriever::open(&config.store_path, &config.embedding_model).map_err(unavailable)?;
    let (target, hits) = r.similar(a.id, a.limit).map_err(|e| (ExitCode::Failure, e))?;
    if !a.json {
        #[allow(clippy::print_stdout, reason = "the command's output")]
        {
            println!("event {}: {}", target.id, target.description);
        }
    }
    print_hits(&hits, a.json);
    Ok(ExitCode::Success)
}

/// An `--until` value: a date (its 00:00 UTC) or a time expression.
fn until_bound(s: &str) -> Result<f64, (ExitCode, String)> {
    if let Some(t) = query::parse_date(s) {
        return Ok(t);
    }
    let q = query::parse(s, now()).map_err(usage)?;
    q.filter.until.or(q.filter.since).filter(|_| q.topic.is_empty()).ok_or_else(|| not_a_time(s))
}

fn not_a_time(s: &str) -> (ExitCode, String) {
    usage(format!("{s:?} is not a date (YYYY-MM-DD) or a time expression"))
}

pub fn events(config: &Config, a: &EventsArgs) -> Outcome {
    let mut f = Filter {
        hosts: a.host.clone(),
        ports: a.port.clone(),
        verdicts: a.verdict.clone(),
        detectors: a.detector.clone(),
        rules: a.rule.clone(),
        min_score: a.min_score,
        ..Filter::default()
    };
    if let Some(s) = &a.since {
        // "yesterday", a bare date: a range that also ends.
        let q = query::parse(s, now()).map_err(usage)?;
        f.since = Some(q.filter.since.filter(|_| q.topic.is_empty()).ok_or_else(|| not_a_time(s))?);
        f.until = q.filter.until;
    }
    if let Some(u) = &a.until {
        f.until = Some(until_bound(u)?);
    }
    for h in &a.host {
        h.parse::<std::net::IpAddr>()
            .map_err(|_| usage(format!("--host {h:?} is not an IP address")))?;
    }
    let store = mld_eventstore::Store::open_read_only(&config.store_path)
        .map_err(|e| unavailable(e.to_string()))?;
    let events = store.query(&f, a.limit).map_err(|e| unavailable(e.to_string()))?;
    let hits: Vec<Hit> = events.into_iter().map(|event| Hit { event, similarity: None }).collect();
    if hits.is_empty() {
        let q = Query { understood: query::describe(&f), ..Query::default() };
        return Ok(nothing(&q));
    }
    print_hits(&hits, a.json);
    Ok(ExitCode::Success)
}

/// Events listed to the model one by one at most (the tally covers all retrieved): prompt
/// evaluation is most of the time to first token, about 8 ms per token on 2 cores.
pub const MODEL_EVENTS: usize = 8;

/// The user message for `hits` and `question`: the events with their ids, counts over them
/// (a small model answers "which hosts" far better from a tally than from many lines), and
/// the question.
pub fn user_message(hits: &[Hit], question: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("Events:\n");
    for h in hits.iter().take(MODEL_EVENTS) {
        let _ = writeln!(s, "{}", prompt_line(&h.event));
    }
    let _ = writeln!(s, "\nIn these {} events:", hits.len());
    for (what, values) in tallies(hits) {
        let _ = writeln!(s, "- {what}: {values}");
    }
    let _ = write!(s, "\nQuestion: {question}");
    s
}

/// One event for the model, short (prompt evaluation dominates the time to first token):
/// `[#2055] 2026-03-22 22:47:29 MALICIOUS 147.32.80.40:38296 -> 147.32.80.37:902 TCP, fast
/// rules bruteforce, forests traffic`.
pub fn prompt_line(e: &mld_eventstore::Event) -> String {
    let mut s = format!(
        "[#{}] {} {} {}:{} -> {}:{} {}",
        e.id,
        utc(e.last_ts),
        e.verdict.as_str(),
        e.src_ip,
        e.src_port,
        e.dst_ip,
        e.dst_port,
        mld_eventstore::event::proto_name(e.proto)
    );
    if !e.fast_rules.is_empty() {
        s.push_str(", fast rules ");
        s.push_str(&e.fast_rules.join(" "));
    }
    let forests: Vec<&str> = mld_eventstore::DETECTORS
        .iter()
        .zip(e.ml_scores)
        .filter(|(_, x)| *x >= 0.5)
        .map(|(d, _)| *d)
        .collect();
    if !forests.is_empty() {
        s.push_str(", forests ");
        s.push_str(&forests.join(" "));
    }
    s
}

/// Counts of sources, targets, verdicts and fast rules over `hits`, most frequent first.
pub fn tallies(hits: &[Hit]) -> Vec<(&'static str, String)> {
    fn count<'a>(items: impl Iterator<Item = &'a str>) -> String {
        let mut c: Vec<(&str, usize)> = Vec::new();
        for i in items {
            match c.iter_mut().find(|(x, _)| *x == i) {
                Some((_, n)) => *n += 1,
                None => c.push((i, 1)),
            }
        }
        c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = c.iter().take(8).map(|(x, n)| format!("{x} ({n})")).collect();
        let more = c.len().saturating_sub(8);
        if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
    }
    let e = || hits.iter().map(|h| &h.event);
    let mut out = vec![
        ("sources", count(e().map(|e| e.src_ip.as_str()))),
        ("targets", count(e().map(|e| e.dst_ip.as_str()))),
        ("verdicts", count(e().map(|e| e.verdict.as_str()))),
    ];
    let rules = count(e().flat_map(|e| e.fast_rules.iter().map(String::as_str)));
    if !rules.is_empty() {
        out.push(("fast rules", rules));
    }
    out
}

/// An answer to one question, with what it was built from.
pub struct Answered {
    pub hits: Vec<Hit>,
    pub answer: crate::llm::Answer,
    pub cited: Vec<i64>,
    /// Cited ids that were not retrieved (a bug if ever non-empty).
    pub unretrieved: Vec<i64>,
    /// Addresses the answer names that no retrieved event has (a bug if ever non-empty).
    pub unretrieved_addresses: Vec<std::net::IpAddr>,
    pub retrieval: std::time::Duration,
}

/// Retrieves for `question`, trims to the prompt budget, and has the model answer.
pub fn answer(
    r: &mut Retriever,
    llm: &Llm,
    config: &Config,
    history: &mut Vec<Turn>,
    question: &str,
    q: &Query,
    each: &mut dyn FnMut(&str),
) -> Result<Option<Answered>, (ExitCode, String)> {
    let t0 = std::time::Instant::now();
    let mut hits = r.search(q, config.top_k as usize).map_err(unavailable)?;
    let retrieval = t0.elapsed();
    if hits.is_empty() {
        return Ok(None);
    }
    let fail = |e: String| (ExitCode::Failure, e);
    // Oldest turns go first, then the least relevant events, until the prompt fits.
    while !llm.fits(history, &user_message(&hits, question)).map_err(fail)? {
        if history.is_empty() {
            if hits.len() == 1 {
                return Err(fail(
                    "one event and the question do not fit model.context_tokens".into(),
                ));
            }
            hits.pop();
        } else {
            history.remove(0);
        }
    }
    let mut grounds = Grounds {
        ids: hits.iter().take(MODEL_EVENTS).map(|h| h.event.id).collect(),
        addresses: Vec::new(),
    };
    for e in hits.iter().map(|h| &h.event) {
        for a in [&e.src_ip, &e.dst_ip] {
            if let Ok(a) = a.parse()
                && !grounds.addresses.contains(&a)
            {
                grounds.addresses.push(a);
            }
        }
    }
    let mut allowed = grounds.clone();
    for t in history.iter() {
        allowed.extend(&t.grounds);
    }
    let user = user_message(&hits, question);
    let answer = llm.answer(history, &user, &allowed, each).map_err(fail)?;
    let cited = citations(&answer.text);
    let unretrieved = cited.iter().copied().filter(|c| !allowed.ids.contains(c)).collect();
    let unretrieved_addresses =
        addresses(&answer.text).into_iter().filter(|a| !allowed.addresses.contains(a)).collect();
    history.push(Turn { prompt: user, answer: answer.text.clone(), grounds });
    Ok(Some(Answered { hits, answer, cited, unretrieved, unretrieved_addresses, retrieval }))
}

fn load_llm(config: &Config) -> Result<Llm, (ExitCode, String)> {
    Llm::load(&config.gguf, config.context_tokens, config.max_answer_tokens, config.temperature)
        .map_err(unavailable)
}

#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the command's output")]
pub fn ask(config: &Config, a: &AskArgs) -> Outcome {
    let t0 = std::time::Instant::now();
    let (text, q) = parse_question(&a.question)?;
    let mut r =
        Retriever::open(&config.store_path, &config.embedding_model).map_err(unavailable)?;
    let llm = load_llm(config)?;
    let loaded = t0.elapsed();
    let stream = !a.json;
    let mut out = std::io::stdout();
    let mut each = |piece: &str| {
        if stream {
            let _ = out.write_all(piece.as_bytes());
            let _ = out.flush();
        }
    };
    let Some(done) = answer(&mut r, &llm, config, &mut Vec::new(), &text, &q, &mut each)? else {
        return Ok(nothing(&q));
    };
    if a.json {
        let v = json!({
            "question": text, "filters": q.understood, "topic": q.topic,
            "answer": done.answer.text, "cited": done.cited, "unretrieved": done.unretrieved,
            "unretrieved_addresses": done.unretrieved_addresses,
            "prompt_tokens": done.answer.prompt_tokens, "answer_tokens": done.answer.answer_tokens,
            "events": done.hits.iter().map(event_json).collect::<Vec<_>>(),
            "timings_ms": {
                "load": loaded.as_millis(), "retrieval": done.retrieval.as_millis(),
                "first_token": done.answer.first_token.as_millis(),
                "answer": done.answer.total.as_millis(),
            },
        });
        println!("{v}");
    } else {
        println!("\n\nBased on {} retrieved event(s){}:", done.hits.len(), understood(&q));
        print!("{}", table(&done.hits));
    }
    if a.timings {
        eprintln!(
            "rag: load {:.0} ms, retrieval {:.0} ms, prompt {} tokens, first token {:.0} ms, \
             answer {} tokens in {:.0} ms",
            loaded.as_secs_f64() * 1e3,
            done.retrieval.as_secs_f64() * 1e3,
            done.answer.prompt_tokens,
            done.answer.first_token.as_secs_f64() * 1e3,
            done.answer.answer_tokens,
            done.answer.total.as_secs_f64() * 1e3
        );
    }
    if let Some(problem) = ungrounded(&done) {
        eprintln!("rag: the answer {problem}; do not trust it");
        return Ok(ExitCode::Software);
    }
    Ok(ExitCode::Success)
}

/// What in an answer was not retrieved: cited events, named addresses.
fn ungrounded(done: &Answered) -> Option<String> {
    let mut parts = Vec::new();
    if !done.unretrieved.is_empty() {
        parts.push(format!("cites events that were not retrieved: {:?}", done.unretrieved));
    }
    if !done.unretrieved_addresses.is_empty() {
        let a: Vec<String> = done.unretrieved_addresses.iter().map(ToString::to_string).collect();
        parts.push(format!("names addresses no retrieved event has: {}", a.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

fn understood(q: &Query) -> String {
    let mut parts = q.understood.clone();
    if !q.topic.is_empty() {
        parts.push(format!("about {:?}", q.topic));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}

/// `rag chat`: questions from stdin, one per line; `/clear` forgets the conversation,
/// `/quit` (or end of input) leaves.
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the command's output")]
pub fn chat(config: &Config) -> Outcome {
    let mut r =
        Retriever::open(&config.store_path, &config.embedding_model).map_err(unavailable)?;
    let llm = load_llm(config)?;
    let mut history = Vec::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    eprintln!("rag chat: ask about stored events; /clear forgets the conversation, /quit leaves");
    let mut failed = false;
    loop {
        print!("> ");
        let _ = out.flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(|e| usage(e.to_string()))? == 0 {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/clear" => {
                history.clear();
                println!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        let q = match query::parse(line, now()) {
            Ok(q) => q,
            Err(e) => {
                eprintln!("rag: {e}");
                continue;
            }
        };
        let mut each = |piece: &str| {
            print!("{piece}");
            let _ = std::io::stdout().flush();
        };
        match answer(&mut r, &llm, config, &mut history, line, &q, &mut each)? {
            None => {
                nothing(&q);
            }
            Some(done) => {
                println!("\n\nBased on {} event(s){}:", done.hits.len(), understood(&q));
                print!("{}", table(&done.hits));
                if let Some(problem) = ungrounded(&done) {
                    eprintln!("rag: the answer {problem}; do not trust it");
                    failed = true;
                }
            }
        }
    }
    Ok(if failed { ExitCode::Software } else { ExitCode::Success })
}
