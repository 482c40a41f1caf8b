//! Cosine similarity of the first argument to each of the others:
//! `cargo run --example similarity -- "question" "text 1" "text 2" …`
#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "an example")]

fn main() {
    let m = mld_embed::Embedder::load(std::path::Path::new(mld_embed::DEFAULT_MODEL_DIR)).unwrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let q = m.embed(&args[0]);
    for t in &args[1..] {
        println!("{:.3}  {t}", mld_embed::dot(&q, &m.embed(t)));
    }
}
