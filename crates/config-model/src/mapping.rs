//! Where an alias sends requests. A [`Mapping`] is an alias's targets and the
//! [`Strategy`] that picks among them: the picked target serves, the others take
//! over in order when it fails. The YAML seed may name one target, a list (in
//! order, `fallback`), or the whole mapping; the admin API and the published
//! snapshot write the whole mapping (and still read a bare list, as older ones
//! wrote it).

use serde::{Deserialize, Serialize};

/// One place an alias can send a request: a provider and the model name it knows.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    pub model: String,
    /// Its share of first calls under `weighted` (relative to the others'); 0
    /// makes it a backup, called only when another failed. Default 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
    /// How long a call to it may take (a whole answer; a stream until its first
    /// event) before the next target takes over. Default: the provider's timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

fn is_one(w: &u32) -> bool {
    *w == 1
}

impl Target {
    /// A target of weight 1 with the provider's timeouts.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            weight: 1,
            timeout_ms: None,
        }
    }
}

/// Which target serves a request first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The first target in order.
    #[default]
    Fallback,
    /// A target drawn at random in proportion to the weights.
    Weighted,
    /// Of two targets drawn at random, the one with the lower peak EWMA of
    /// latency (time to first event for streams) times its calls in flight.
    LeastLatency,
    /// The target with the fewest calls in flight.
    LeastBusy,
}

impl Strategy {
    /// Every strategy's name, for messages that list them.
    pub const NAMES: [&'static str; 4] = ["fallback", "weighted", "least_latency", "least_busy"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fallback => "fallback",
            Self::Weighted => "weighted",
            Self::LeastLatency => "least_latency",
            Self::LeastBusy => "least_busy",
        }
    }

    /// The strategy a name spells.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| {
            [
                Self::Fallback,
                Self::Weighted,
                Self::LeastLatency,
                Self::LeastBusy,
            ][i]
        })
    }
}

/// An alias's targets and how one is picked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(from = "Written")]
pub struct Mapping {
    pub strategy: Strategy,
    pub targets: Vec<Target>,
}

impl Mapping {
    /// Targets in order, served by the first.
    pub fn fallback(targets: Vec<Target>) -> Self {
        Self {
            strategy: Strategy::Fallback,
            targets,
        }
    }
}

/// The forms a mapping may be written in.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    One(Target),
    Many(Vec<Target>),
    Whole(Whole),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Whole {
    #[serde(default)]
    strategy: Strategy,
    targets: Vec<Target>,
}

impl From<Written> for Mapping {
    fn from(w: Written) -> Self {
        match w {
            Written::One(t) => Self::fallback(vec![t]),
            Written::Many(ts) => Self::fallback(ts),
            Written::Whole(m) => Self {
                strategy: m.strategy,
                targets: m.targets,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_reads_from_one_target_a_list_or_the_whole() {
        let one: Mapping = serde_json::from_str(r#"{"provider":"p","model":"m"}"#).unwrap();
        assert_eq!(one, Mapping::fallback(vec![Target::new("p", "m")]));
        let many: Mapping =
            serde_json::from_str(r#"[{"provider":"p","model":"m"},{"provider":"q","model":"n"}]"#)
                .unwrap();
        assert_eq!(many.targets.len(), 2);
        let whole: Mapping = serde_json::from_str(
            r#"{"strategy":"weighted","targets":[{"provider":"p","model":"m","weight":3,"timeout_ms":500}]}"#,
        )
        .unwrap();
        assert_eq!(whole.strategy, Strategy::Weighted);
        assert_eq!(whole.targets[0].weight, 3);
        assert_eq!(whole.targets[0].timeout_ms, Some(500));
        // Written whole, read back the same.
        let again: Mapping = serde_json::from_str(&serde_json::to_string(&whole).unwrap()).unwrap();
        assert_eq!(again, whole);
        assert!(serde_json::from_str::<Mapping>(r#"{"strategy":"fastest","targets":[]}"#).is_err());
        for name in Strategy::NAMES {
            assert_eq!(Strategy::parse(name).map(Strategy::as_str), Some(name));
        }
    }
}
