use std::fmt::Display;
use std::str::FromStr;

use crate::FieldError;

/// Collects every field error of a config, so that validation reports all of them at once.
///
/// Checks return `Some(typed value)` when the field is fine; [`Validator::finish`] builds the
/// typed config only when no check failed, so the `?`s inside its closure never fire then.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error for `field` holding `value`.
    pub fn error(
        &mut self,
        field: impl Into<String>,
        value: impl Display,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            field: field.into(),
            value: value.to_string(),
            message: message.into(),
        });
    }

    /// Records an error unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, value: impl Display, message: &str) -> bool {
        if !ok {
            self.error(field, value, message);
        }
        ok
    }

    /// `value` if it lies in `min..=max`.
    pub fn range<T: PartialOrd + Display + Copy>(
        &mut self,
        field: &str,
        value: T,
        min: T,
        max: T,
    ) -> Option<T> {
        let ok = min <= value && value <= max;
        self.check(ok, field, value, &format!("must be between {min} and {max}")).then_some(value)
    }

    /// `raw` parsed as `T`, describing the expected form as `expected` on failure.
    pub fn parse<T: FromStr>(&mut self, field: &str, raw: &str, expected: &str) -> Option<T>
    where
        T::Err: Display,
    {
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(field, format!("{raw:?}"), format!("expected {expected} ({e})"));
                None
            }
        }
    }

    /// Number of errors so far.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every error, or the typed config built by `build`.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Vec<FieldError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        build().ok_or_else(|| {
            vec![FieldError {
                field: ".".into(),
                value: String::new(),
                message: "internal error: a check failed without recording an error".into(),
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_and_builds_only_when_clean() {
        let mut v = Validator::new();
        let a = v.range("a", 0_u32, 1, 10);
        let b: Option<std::net::SocketAddr> = v.parse("b", "nope", "host:port");
        let c = v.range("c", 5_u32, 1, 10);
        assert_eq!((a, b.is_none(), c), (None, true, Some(5)));
        let errors = v.finish(|| Some((a?, b?, c?))).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].to_string(), "a = 0: must be between 1 and 10");
        assert!(
            errors[1].to_string().starts_with("b = \"nope\": expected host:port"),
            "{}",
            errors[1]
        );

        let mut v = Validator::new();
        let c = v.range("c", 5_u32, 1, 10);
        assert_eq!(v.finish(|| c), Ok(5));
    }
}
