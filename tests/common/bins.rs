//! Where the tests find the module and redis-server (shared by
//! tests/common and tests/cluster_support).

use std::path::PathBuf;

/// Absolute path of the module: `$RL_MODULE`, else
/// `$CARGO_MANIFEST_DIR/target/release/libredis_ratelimit.so`.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RL_MODULE") {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            return p;
        }
        return std::env::current_dir().unwrap().join(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/libredis_ratelimit.so")
}

pub fn redis_server_bin() -> String {
    std::env::var("RL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}
