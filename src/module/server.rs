//! What the running server offers beyond Redis 7.0, probed once at load.
//!
//! One `.so` serves Redis 7.0 and later and Valkey 7.2.6 and later, so every
//! newer feature is taken only where the server proves it has it: an API
//! function it exports, or an option bit it declares. Never from a version
//! string: Valkey reports a Redis-compatible `redis_version` (7.2.4) whatever
//! its own version is.

use redis_module::raw;
use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::sync::OnceLock;

/// Valkey 8.1+: `RedisModule_Replicate` skips looking the command name up
/// (the module only propagates SET, SETRANGE, PEXPIREAT and DEL). Valkey's
/// own bit, not Redis': taken only from a server that exports the
/// `ValkeyModule_` API and declares the bit in its options mask.
const VALKEY_OPTIONS_SKIP_COMMAND_VALIDATION: c_int = 1 << 4;
/// Valkey 9+: the module declares that `CLUSTER MIGRATESLOTS` may move its
/// keys (they are native strings, so nothing needs handling); without it
/// Valkey refuses atomic slot migration while the module is loaded.
const VALKEY_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION: c_int = 1 << 5;

/// The module ACL category, where the server lets a module add one.
pub const ACL_CATEGORY: &CStr = c"ratelimit";

/// The newer features this server has and the module uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// `RedisModule_SetCommandACLCategories` (Redis 7.2+, Valkey).
    pub acl_categories: bool,
    /// `@ratelimit` was added with `RedisModule_AddACLCategory` (Redis 7.4+,
    /// Valkey 8+), or was there already from an earlier load.
    pub module_category: bool,
    /// Valkey's atomic slot migration opt-in was set.
    pub atomic_slot_migration: bool,
    /// Valkey's skip-command-validation option was set.
    pub skip_command_validation: bool,
}

impl Features {
    /// The names INFO reports, in a fixed order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.acl_categories, "acl-categories"),
            (self.module_category, "acl-module-category"),
            (self.atomic_slot_migration, "atomic-slot-migration"),
            (self.skip_command_validation, "skip-command-validation"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
    }
}

static FEATURES: OnceLock<Features> = OnceLock::new();

/// What `setup` found (all off before it ran).
pub fn features() -> Features {
    FEATURES.get().copied().unwrap_or_default()
}

/// Whether the server exports the API function `name` (it answers
/// `RedisModule_GetApi`, which every server since 4.0 has).
fn exports(name: &CStr) -> bool {
    let Some(get_api) = (unsafe { raw::RedisModule_GetApi }) else {
        return false;
    };
    let mut ptr: *mut c_void = std::ptr::null_mut();
    let found = unsafe { get_api(name.as_ptr(), (&mut ptr as *mut *mut c_void).cast()) };
    found == raw::REDISMODULE_OK as c_int && !ptr.is_null()
}

/// Probes the server, sets the module options (always
/// `NO_IMPLICIT_SIGNAL_MODIFIED`, plus Valkey's where declared) and adds the
/// `@ratelimit` ACL category where possible. Called once from the module's
/// load, before the commands are created.
pub fn setup(ctx: *mut raw::RedisModuleCtx) -> Features {
    let mut f = set_options(ctx);
    if f.acl_categories
        && let Some(add) = unsafe { raw::RedisModule_AddACLCategory }
    {
        // EBUSY: the category exists already, which it does after a
        // MODULE UNLOAD and LOAD (the server keeps it): use it again, or
        // users granted +@ratelimit would lose the commands.
        unsafe { *libc::__errno_location() = 0 };
        let added = unsafe { add(ctx, ACL_CATEGORY.as_ptr()) } == raw::REDISMODULE_OK as c_int;
        f.module_category =
            added || std::io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY);
    }
    let _ = FEATURES.set(f);
    f
}

/// The probe and the module options alone (also used by the bench's floor
/// module, so that it makes the API calls under the same options).
pub fn set_options(ctx: *mut raw::RedisModuleCtx) -> Features {
    let valkey_options = if exports(c"ValkeyModule_GetModuleOptionsAll") {
        unsafe { raw::RedisModule_GetModuleOptionsAll }.map_or(0, |all| unsafe { all() })
    } else {
        0
    };
    let f = Features {
        acl_categories: unsafe { raw::RedisModule_SetCommandACLCategories }.is_some(),
        atomic_slot_migration: valkey_options & VALKEY_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION != 0,
        skip_command_validation: valkey_options & VALKEY_OPTIONS_SKIP_COMMAND_VALIDATION != 0,
        module_category: false,
    };
    // Options replace each other: set them all in one call.
    let mut options = raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED as c_int;
    if f.atomic_slot_migration {
        options |= VALKEY_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION;
    }
    if f.skip_command_validation {
        options |= VALKEY_OPTIONS_SKIP_COMMAND_VALIDATION;
    }
    unsafe { raw::RedisModule_SetModuleOptions.unwrap()(ctx, options) };
    f
}
