//! Which running server a thing belongs to, in shared mode, where several serve the same rooms.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Names one run of one instance: a restarted process is a new instance, so nothing it held
/// before (members, a liveness key) is mistaken for its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string().into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// As another instance wrote it in presence.
impl From<String> for InstanceId {
    fn from(id: String) -> Self {
        Self(id.into())
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
