//! Where an alias sends requests. A mapping is an alias and its targets in order
//! of preference: the first serves, the next take over when it fails. The YAML
//! seed names one target or a list per alias ([`Targets`]), the admin API and the
//! published snapshot an ordered list.

use serde::{Deserialize, Serialize};

/// One place an alias can send a request: a provider and the model name it knows.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    pub model: String,
}

/// A mapping in the YAML seed: one target, or several in order.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Targets {
    One(Target),
    Many(Vec<Target>),
}

impl Targets {
    /// The targets in order.
    pub fn to_vec(&self) -> Vec<Target> {
        match self {
            Self::One(t) => vec![t.clone()],
            Self::Many(ts) => ts.clone(),
        }
    }
}
