//! Where an alias sends requests. A mapping is an alias and its targets in order
//! of preference: the YAML seed names one target per alias, the admin API and the
//! published snapshot an ordered list.

use serde::{Deserialize, Serialize};

/// One place an alias can send a request: a provider and the model name it knows.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    pub model: String,
}
