//! `LABELS.tsv` of the shared captures: class, malicious hosts and label scope per file, and
//! the detector each attack family belongs to.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Attack families of the shared captures (and the synthetic generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Benign,
    Ddos,
    Scan,
    Bruteforce,
    Botnet,
    Webattack,
    Lateral,
    /// Only in synthetic traffic: no shared capture shows it.
    Ransomware,
}

impl Family {
    pub const ATTACKS: [Family; 7] = [
        Family::Ddos,
        Family::Scan,
        Family::Bruteforce,
        Family::Botnet,
        Family::Webattack,
        Family::Lateral,
        Family::Ransomware,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Benign => "benign",
            Family::Ddos => "ddos",
            Family::Scan => "scan",
            Family::Bruteforce => "bruteforce",
            Family::Botnet => "botnet",
            Family::Webattack => "webattack",
            Family::Lateral => "lateral",
            Family::Ransomware => "ransomware",
        }
    }

    /// The family of a `LABELS.tsv` class such as `scan(tcp syn)` or `c2-beacon`.
    pub fn of_class(class: &str) -> Option<Family> {
        let c = class.to_ascii_lowercase();
        let starts = |p: &[&str]| p.iter().any(|p| c.starts_with(p));
        Some(if starts(&["benign"]) {
            Family::Benign
        } else if starts(&["ddos"]) {
            Family::Ddos
        } else if starts(&["scan"]) {
            Family::Scan
        } else if starts(&["bruteforce", "brute-force"]) {
            Family::Bruteforce
        } else if starts(&["botnet", "c2", "dns-tunnel"]) {
            Family::Botnet
        } else if starts(&["webattack", "exploit"]) {
            Family::Webattack
        } else if starts(&["lateral"]) {
            Family::Lateral
        } else if starts(&["ransomware"]) {
            Family::Ransomware
        } else {
            return None;
        })
    }

    /// The detector trained to recognise this family.
    pub fn detector(self) -> Option<Detector> {
        match self {
            Family::Benign => None,
            Family::Ddos => Some(Detector::Ddos),
            Family::Ransomware => Some(Detector::Ransomware),
            Family::Lateral => Some(Detector::Internal),
            Family::Scan | Family::Bruteforce | Family::Botnet | Family::Webattack => {
                Some(Detector::Traffic)
            }
        }
    }
}

/// The four detectors (DESIGN §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detector {
    Ddos,
    Ransomware,
    Traffic,
    Internal,
}

impl Detector {
    pub const ALL: [Detector; 4] =
        [Detector::Ddos, Detector::Ransomware, Detector::Traffic, Detector::Internal];

    pub fn name(self) -> &'static str {
        match self {
            Detector::Ddos => "ddos",
            Detector::Ransomware => "ransomware",
            Detector::Traffic => "traffic",
            Detector::Internal => "internal",
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Detector::Ddos => {
                "denial of service: SYN/UDP/ICMP floods, reflection and amplification, slow HTTP"
            }
            Detector::Ransomware => "ransomware-style SMB spread with bulk encrypted writes",
            Detector::Traffic => {
                "anomalous traffic: scans, brute force, botnet/C2, DNS tunnelling, web attacks"
            }
            Detector::Internal => "lateral movement and credential access inside the network",
        }
    }
}

/// How far a file's label reaches (see `shared/data/README.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every flow benign.
    Benign,
    /// Every flow malicious.
    All,
    /// Flows to or from these hosts malicious, all others benign.
    Hosts(Vec<IpAddr>),
    /// The capture as a whole shows the behaviour; flows are not labelled one by one.
    File,
}

#[derive(Debug, Clone)]
pub struct Capture {
    pub path: PathBuf,
    /// The path as `LABELS.tsv` writes it.
    pub name: String,
    pub class: String,
    pub family: Family,
    pub scope: Scope,
}

impl Capture {
    /// Whether flows between `a` and `b` are malicious: `Some(true|false)`, or `None` where
    /// the label does not say (file scope).
    pub fn flow_is_malicious(&self, a: Option<IpAddr>, b: Option<IpAddr>) -> Option<bool> {
        match &self.scope {
            Scope::Benign => Some(false),
            Scope::All => Some(true),
            Scope::Hosts(hosts) => {
                Some(a.is_some_and(|a| hosts.contains(&a)) || b.is_some_and(|b| hosts.contains(&b)))
            }
            Scope::File => None,
        }
    }
}

/// Reads `<data>/LABELS.tsv`.
pub fn load(data: &Path) -> anyhow::Result<Vec<Capture>> {
    let file = data.join("LABELS.tsv");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!("cannot read {} (is --data the shared data folder?)", file.display())
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", file.display(), n + 1);
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 {
            bail!("{}: expected path, class, malicious_hosts, label_scope; got {line:?}", at());
        }
        let (name, class, hosts, scope) = (cols[0], cols[1], cols[2], cols[3]);
        let Some(family) = Family::of_class(class) else {
            bail!("{}: unknown class {class:?}", at());
        };
        let scope = match (family, scope) {
            (Family::Benign, _) => Scope::Benign,
            (_, "all") => Scope::All,
            (_, "file") => Scope::File,
            (_, "host") => Scope::Hosts(
                hosts
                    .split([',', ' '])
                    .filter(|h| !h.is_empty())
                    .map(|h| h.parse().with_context(|| format!("{}: bad host {h:?}", at())))
                    .collect::<anyhow::Result<_>>()?,
            ),
            (_, other) => bail!("{}: unknown label_scope {other:?}", at()),
        };
        out.push(Capture {
            path: data.join(name),
            name: name.to_owned(),
            class: class.to_owned(),
            family,
            scope,
        });
    }
    Ok(out)
}

/// Which captures train the models and which are kept for evaluation, decided by a hash of
/// the file name (stable when files are added): per family, about `eval_share` of the files
/// go to evaluation, at least one, and at least one stays for training when there are two.
pub fn split(captures: &[Capture], eval_share: f64) -> Vec<bool> {
    let mut is_eval = vec![false; captures.len()];
    for members in by_family(captures, "", |_| true) {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let mut k = ((members.len() as f64) * eval_share).round() as usize;
        k = k.max(1);
        if members.len() >= 2 {
            k = k.min(members.len() - 1);
        }
        for &i in members.iter().take(k) {
            is_eval[i] = true;
        }
    }
    is_eval
}

/// Per family, the indices of the captures that `keep`, in the order of the FNV hash of
/// `salt` + file name.
fn by_family(captures: &[Capture], salt: &str, keep: impl Fn(usize) -> bool) -> Vec<Vec<usize>> {
    let mut families: Vec<Family> = captures.iter().map(|c| c.family).collect();
    families.sort_unstable();
    families.dedup();
    families
        .into_iter()
        .map(|family| {
            let mut members: Vec<(u64, usize)> = captures
                .iter()
                .enumerate()
                .filter(|(i, c)| c.family == family && keep(*i))
                .map(|(i, c)| (fnv(format!("{salt}{}", c.name).as_bytes()), i))
                .collect();
            members.sort_unstable();
            members.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// Cross-validation folds of the training captures (`None` for evaluation captures): each
/// family's files in the order of a salted hash of their names, dealt round-robin, so every
/// fold holds a share of every family.
pub fn folds(captures: &[Capture], is_eval: &[bool], k: usize) -> Vec<Option<usize>> {
    let mut fold = vec![None; captures.len()];
    for members in by_family(captures, "fold:", |i| !is_eval[i]) {
        for (n, i) in members.into_iter().enumerate() {
            fold[i] = Some(n % k);
        }
    }
    fold
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_families_and_detectors() {
        for (class, family, detector) in [
            ("benign", Family::Benign, None),
            ("scan(tcp syn)", Family::Scan, Some(Detector::Traffic)),
            ("c2-beacon", Family::Botnet, Some(Detector::Traffic)),
            ("dns-tunnel/exfiltration", Family::Botnet, Some(Detector::Traffic)),
            ("exploit(log4shell)", Family::Webattack, Some(Detector::Traffic)),
            (
                "lateral-movement / credential access (Empire/Covenant lab)",
                Family::Lateral,
                Some(Detector::Internal),
            ),
            ("ddos", Family::Ddos, Some(Detector::Ddos)),
        ] {
            assert_eq!(Family::of_class(class), Some(family), "{class}");
            assert_eq!(family.detector(), detector);
        }
        assert_eq!(Family::of_class("phishing"), None);
    }

    #[test]
    fn bad_labels_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("mld-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("LABELS.tsv"),
            "path\tclass\tmalicious_hosts\tlabel_scope\nx.pcap\tphishing\t-\tfile\n",
        )
        .unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(e.contains("LABELS.tsv:2") && e.contains("phishing"), "{e}");
        std::fs::write(dir.join("LABELS.tsv"), "h\nx.pcap\tscan\t10.0.0.300\thost\n").unwrap();
        assert!(load(&dir).unwrap_err().to_string().contains("10.0.0.300"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `n` captures named f0, f1, …: the first `benign` benign, the rest `ddos`.
    fn captures(n: usize, benign: usize) -> Vec<Capture> {
        (0..n)
            .map(|i| Capture {
                path: PathBuf::new(),
                name: format!("f{i}"),
                class: if i < benign { "benign" } else { "ddos" }.into(),
                family: if i < benign { Family::Benign } else { Family::Ddos },
                scope: Scope::Benign,
            })
            .collect()
    }

    #[test]
    fn the_split_keeps_files_on_both_sides_and_is_stable() {
        let caps = captures(10, 7);
        let s = split(&caps, 0.3);
        assert_eq!(s, split(&caps, 0.3));
        assert_eq!(s[..7].iter().filter(|&&e| e).count(), 2);
        assert_eq!(s[7..].iter().filter(|&&e| e).count(), 1);
        let one = [caps[7].clone()];
        assert_eq!(split(&one, 0.3), vec![true]);
    }

    #[test]
    fn folds_deal_each_familys_training_files_and_leave_evaluation_files_out() {
        let caps = captures(12, 9);
        let is_eval: Vec<bool> = (0..12).map(|i| i == 0 || i == 11).collect();
        let f = folds(&caps, &is_eval, 3);
        assert_eq!(f, folds(&caps, &is_eval, 3));
        assert_eq!((f[0], f[11]), (None, None));
        // Eight benign training files: 3, 3 and 2 per fold; two ddos files in two folds.
        let mut per_fold = [0; 3];
        for k in f[1..9].iter().map(|k| k.unwrap()) {
            per_fold[k] += 1;
        }
        per_fold.sort_unstable();
        assert_eq!(per_fold, [2, 3, 3]);
        assert_ne!(f[9].unwrap(), f[10].unwrap());
    }
}
