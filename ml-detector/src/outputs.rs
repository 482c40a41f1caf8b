//! Where detections go on disk: the JSONL event log (`events.jsonl`), Suricata EVE-JSON
//! (`eve.json`) and sealed alert artifacts (`alerts.mld`), under the configured directory.
//!
//! Output errors (a full disk, a removed directory) are counted and logged, rate-limited, and
//! never stop detection: the bus output is what blocks attackers, and a line that cannot be
//! written is dropped whole and counted, never half-written.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mld_config::daemons::ml_detector::{FlushPolicy, ValidEventLog};
use mld_crypto_transport::KeyRing;
use mld_proto::Detection;
use mld_telemetry::RateLimit;

use crate::artifacts::AlertLog;
use crate::detection::flagged;
use mld_logfile::{Framing, RotatingLog, Settings};

/// The event log, EVE output and artifact store.
#[derive(Debug)]
pub struct Outputs {
    events: RotatingLog,
    shed: Shed,
    eve: Option<RotatingLog>,
    artifacts: Option<AlertLog>,
    line: Vec<u8>,
    error_log: RateLimit,
}

/// Totals of every output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputStats {
    pub events: mld_logfile::Stats,
    pub eve: mld_logfile::Stats,
    pub artifacts: mld_logfile::Stats,
    /// Records not written because the daemon was behind (BENIGN detections only).
    pub shed: Shed,
}

/// Records shed, per log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shed {
    pub events: u64,
    pub eve: u64,
}

impl Outputs {
    /// Opens the outputs `c` asks for; artifacts are sealed with `ring`.
    pub fn open(c: &ValidEventLog, ring: Arc<KeyRing>) -> anyhow::Result<Self> {
        let settings = Settings {
            max_bytes: c.rotate_max_bytes,
            max_age: c.rotate_max_age,
            retain: c.retain_files,
            sync_every_line: c.flush == FlushPolicy::EveryLine,
        };
        let events = RotatingLog::open(&c.dir, "events", "jsonl", Framing::Lines, settings)?;
        let eve = c
            .eve
            .then(|| RotatingLog::open(&c.dir, "eve", "json", Framing::Lines, settings))
            .transpose()?;
        let artifacts = c.artifacts.then(|| AlertLog::open(&c.dir, ring, settings)).transpose()?;
        Ok(Self {
            events,
            shed: Shed::default(),
            eve,
            artifacts,
            line: Vec::with_capacity(8192),
            error_log: RateLimit::new(Duration::from_secs(10)),
        })
    }

    /// Writes `d` to every output; when `shed` and `d` is BENIGN, only counts its records.
    pub fn write(&mut self, d: &Detection, now: SystemTime, shed: bool) {
        if shed && !flagged(d) {
            self.shed.events += 1;
            self.shed.eve += u64::from(self.eve.is_some());
            return;
        }
        self.line.clear();
        crate::record::write_line(d, None, &mut self.line);
        let r = self.events.append(&self.line, 1, now);
        self.report(r.map_err(anyhow::Error::from), "the event log");
        if let Some(eve) = &mut self.eve {
            self.line.clear();
            let (alerts, flows) = crate::eve::write_records(d, &mut self.line);
            if alerts + flows > 0 {
                let r = eve.append(&self.line, u64::from(alerts + flows), now);
                self.report(r.map_err(anyhow::Error::from), "eve.json");
            }
        }
        if let Some(store) = &mut self.artifacts
            && flagged(d)
        {
            let r = store.write(d, now);
            self.report(r, "alerts.mld");
        }
    }

    /// Writes and syncs what is buffered, and rotates logs that have reached their age.
    pub fn flush(&mut self, now: SystemTime) {
        let r = self.events.flush(now);
        self.report(r.map_err(anyhow::Error::from), "the event log");
        if let Some(eve) = &mut self.eve {
            let r = eve.flush(now);
            self.report(r.map_err(anyhow::Error::from), "eve.json");
        }
        if let Some(store) = &mut self.artifacts {
            let r = store.flush(now);
            self.report(r.map_err(anyhow::Error::from), "alerts.mld");
        }
    }

    fn report(&mut self, r: anyhow::Result<()>, what: &str) {
        if let Err(e) = r
            && let Some(suppressed) = self.error_log.allow()
        {
            tracing::error!(
                error = format!("{e:#}"),
                suppressed,
                "writing {what} failed; detection goes on"
            );
        }
    }

    pub fn stats(&self) -> OutputStats {
        OutputStats {
            events: self.events.stats(),
            eve: self.eve.as_ref().map(RotatingLog::stats).unwrap_or_default(),
            artifacts: self.artifacts.as_ref().map(AlertLog::stats).unwrap_or_default(),
            shed: self.shed,
        }
    }

    /// The event log file being written.
    pub fn events_path(&self) -> std::path::PathBuf {
        self.events.path()
    }
}
