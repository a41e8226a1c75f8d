//! Which server a test talks to, read from its `INFO server`, and the
//! section-14 features the module must use there. Tests may read version
//! numbers (they state what each release offers); the module never does: it
//! probes the API, and these tests check that its probes find exactly this.

use std::collections::HashMap;

/// A server family and release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerKind {
    pub valkey: bool,
    pub version: (u32, u32, u32),
}

fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

impl ServerKind {
    /// From `INFO server`: Valkey names itself in `server_name` and gives
    /// its release in `valkey_version` (its `redis_version` stays 7.2.4).
    pub fn from_info(info: &HashMap<String, String>) -> ServerKind {
        match info.get("valkey_version") {
            Some(v) => ServerKind {
                valkey: true,
                version: version(v),
            },
            None => ServerKind {
                valkey: info.get("server_name").is_some_and(|n| n == "valkey"),
                version: version(info.get("redis_version").expect("redis_version in INFO")),
            },
        }
    }

    /// "Redis 7.0.15", "Valkey 9.1.2".
    pub fn label(&self) -> String {
        let (a, b, c) = self.version;
        let name = if self.valkey { "Valkey" } else { "Redis" };
        format!("{name} {a}.{b}.{c}")
    }

    /// `RedisModule_SetCommandACLCategories`: Redis 7.2+, every Valkey.
    pub fn has_acl_categories(&self) -> bool {
        self.valkey || self.version >= (7, 2, 0)
    }

    /// `RedisModule_AddACLCategory`: Redis 7.4+, Valkey 8+.
    pub fn has_module_category(&self) -> bool {
        if self.valkey {
            self.version >= (8, 0, 0)
        } else {
            self.version >= (7, 4, 0)
        }
    }

    /// `CLUSTER MIGRATESLOTS` and its module opt-in: Valkey 9+.
    pub fn has_atomic_slot_migration(&self) -> bool {
        self.valkey && self.version >= (9, 0, 0)
    }

    /// The skip-command-validation option of `RedisModule_Replicate`:
    /// Valkey 8.1+.
    pub fn has_skip_command_validation(&self) -> bool {
        self.valkey && self.version >= (8, 1, 0)
    }

    /// What `INFO ratelimit` must list in `ratelimit_server_features`.
    pub fn expected_features(&self) -> String {
        let names: Vec<&str> = [
            (self.has_acl_categories(), "acl-categories"),
            (self.has_module_category(), "acl-module-category"),
            (self.has_atomic_slot_migration(), "atomic-slot-migration"),
            (
                self.has_skip_command_validation(),
                "skip-command-validation",
            ),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(",")
        }
    }
}
