//! Units people write in the config file: sizes (`"10MiB"`) and durations (`"1h30m"`).

/// A size or duration that cannot be read; the message names the value and what would do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid size {0:?}: expected a number like \"10MiB\"")]
    SizeNumber(String),
    #[error("invalid size {0:?}: unknown unit {1:?} (use KiB, MiB or GiB)")]
    SizeUnit(String, String),
    #[error("empty duration")]
    EmptyDuration,
    #[error("invalid duration {0:?}: unknown unit {1:?} (use s, m, h or d)")]
    DurationUnit(String, char),
    #[error("invalid duration {0:?}: expected a number before {1:?}")]
    DurationNumber(String, char),
    #[error("invalid duration {0:?}: missing unit (like \"20m\" or \"4h\")")]
    DurationMissingUnit(String),
}

/// Sizes: a number of bytes, or a string with a binary unit: `"512KiB"`, `"10MiB"`, `"1GiB"`.
pub mod size_str {
    use super::UnitError;
    use serde::{Deserialize, Deserializer};

    pub fn parse(s: &str) -> Result<u64, UnitError> {
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| UnitError::SizeNumber(s.to_string()))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            u => return Err(UnitError::SizeUnit(s.to_string(), u.to_string())),
        };
        Ok(n.saturating_mul(mult))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(n),
            Raw::Text(s) => parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Durations written the way people write them: `90s`, `20m`, `4h`, `1h30m`, `1d`.
pub mod duration_str {
    use super::UnitError;
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn parse(s: &str) -> Result<Duration, UnitError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(UnitError::EmptyDuration);
        }
        let mut total: u64 = 0;
        let mut num = String::new();
        let mut any = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(UnitError::DurationUnit(s.to_string(), c)),
            };
            let n: u64 = num
                .parse()
                .map_err(|_| UnitError::DurationNumber(s.to_string(), c))?;
            total = total.saturating_add(n.saturating_mul(unit));
            num.clear();
            any = true;
        }
        if !num.is_empty() || !any {
            return Err(UnitError::DurationMissingUnit(s.to_string()));
        }
        Ok(Duration::from_secs(total))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| super::parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
