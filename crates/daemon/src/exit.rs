/// Exit codes of every daemon (sysexits-style where one applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Clean exit, including a drain that finished within the grace period.
    Success = 0,
    /// A runtime error, or a second signal that cut the drain short.
    Failure = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// The config file is missing, unparsable or invalid.
    Config = 64,
    /// Something the daemon needs is unavailable: an interface, a port, a kernel feature.
    Unavailable = 69,
    /// An internal error (a bug).
    Software = 70,
    /// The drain did not finish within the grace period.
    DrainTimeout = 75,
}

impl ExitCode {
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code.code())
    }
}
