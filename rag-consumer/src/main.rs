//! `rag` binary: see the library docs.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use mld_daemon::ExitCode;
use mld_rag_consumer::admin::{self, Admin};
use mld_rag_consumer::cli::{self, AskArgs, ConfigArg, EventsArgs, SearchArgs, SimilarArgs};

#[derive(Parser)]
#[command(name = mld_rag_consumer::NAME, about = mld_rag_consumer::ABOUT, version)]
struct Rag {
    #[command(flatten)]
    config: ConfigArg,
    /// Read time expressions ("yesterday", "last hour") as if it were this time: Unix
    /// seconds or YYYY-MM-DDTHH:MM:SS UTC (to replay an earlier question).
    #[arg(long, global = true, value_parser = cli::parse_now)]
    now: Option<f64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer a question from the stored events with the local model, citing event ids.
    /// Exit 1 when no stored event matches (nothing is made up).
    Ask(AskArgs),
    /// Multi-turn questions from stdin; /clear forgets the conversation, /quit leaves.
    Chat,
    /// The events `ask` would answer from, without the model.
    Search(SearchArgs),
    /// Events whose flow features are nearest to event ID's.
    Similar(SimilarArgs),
    /// Stored events by filter, newest first.
    Events(EventsArgs),
    /// Components registered in etcd (heartbeats, config revision, key epoch), the last
    /// alerts, and the event store and its indices.
    Status(admin::StatusArgs),
    /// A daemon's config in etcd: get, set (validated, then applied live; a field the daemon
    /// reads only at start is refused), diff against the master, rollback to the master.
    #[command(subcommand)]
    Config(admin::ConfigCommand),
    /// Lower ml-detector's verdict thresholds by --step (default 0.05): more flows are judged
    /// suspicious or malicious and blocked sooner, at the cost of more false positives.
    Accelerate(admin::TuneArgs),
    /// Raise ml-detector's verdict thresholds by --step (default 0.05): fewer blocks.
    Decelerate(admin::TuneArgs),
    /// Check a config file and print every problem in it; exit 0 when valid, 64 when not.
    Validate {
        #[arg(long, short, value_name = "FILE")]
        config: std::path::PathBuf,
    },
}

#[allow(clippy::print_stderr, reason = "errors go to stderr")]
fn main() -> std::process::ExitCode {
    let args = match Rag::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::Usage } else { ExitCode::Success }.into();
        }
    };
    if let Some(t) = args.now {
        let _ = cli::NOW.set(t);
    }
    if let Command::Validate { config } = &args.command {
        return mld_daemon::validate::<mld_rag_consumer::Config>(config).into();
    }
    let config = match args.config.load() {
        Ok(c) => c,
        Err((code, e)) => {
            eprintln!("rag: {e}");
            return code.into();
        }
    };
    let outcome = match args.command {
        Command::Ask(a) => cli::ask(&config, &a),
        Command::Chat => cli::chat(&config),
        Command::Search(a) => cli::search(&config, &a),
        Command::Similar(a) => cli::similar(&config, &a),
        Command::Events(a) => cli::events(&config, &a),
        Command::Status(a) => return admin::run(Admin::Status(a), &config).into(),
        Command::Config(c) => return admin::run(Admin::Config(c), &config).into(),
        Command::Accelerate(a) => return admin::run(Admin::Accelerate(a), &config).into(),
        Command::Decelerate(a) => return admin::run(Admin::Decelerate(a), &config).into(),
        Command::Validate { .. } => unreachable!("handled above"),
    };
    match outcome {
        Ok(code) => code.into(),
        Err((code, e)) => {
            eprintln!("rag: {e}");
            code.into()
        }
    }
}
