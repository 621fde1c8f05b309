//! The host's log sink: one closure receives library log events up to a chosen level.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use parking_lot::Mutex;

use super::closure::{Closure, ClosureOwner};
use super::error::{gn_error, gn_status};
use super::panic::with_status;
use super::plumbing::{enum_row, enum_row_of, EnumRow};
use crate::error::{Error, ErrorKind};
use crate::log::{self, Level, LogSink};

/// Log severity, most severe first.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_log_level {
    /// Nothing; passed by C callers to remove the sink.
    Off = 0,
    /// Something failed that the library could not work around.
    Error = 1,
    /// Something went wrong that the library works around (for example by retrying).
    Warn = 2,
    /// Notable events, such as a registration put back into etcd.
    Info = 3,
    /// Details for diagnosing a problem.
    Debug = 4,
    /// Everything, for the library's developers.
    Trace = 5,
}

/// A closure that receives log events: `call(user_data, level, target, message)`; `target` names
/// the library module and `message` is the text, both NUL-terminated UTF-8 borrowed for the call.
/// Calls may come from several library threads at once. `drop(user_data)` runs exactly once, after
/// the last call, before the `gn_log_set_callback` that replaces the sink returns (or before a
/// failing `gn_log_set_callback` returns). A call must not call `gn_log_set_callback` (which then
/// fails with `GN_STATUS_BAD_STATE`).
#[repr(C)]
pub struct gn_log_callback {
    /// Handed back to `call` and `drop`; the library never reads it.
    pub user_data: *mut c_void,
    /// NULL removes the sink.
    pub call: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            level: gn_log_level,
            target: *const c_char,
            message: *const c_char,
        ),
    >,
    /// Runs once after the last call; may be NULL.
    pub drop: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// Every log level: its C name and the core's level. The one table for both directions.
static LOG_LEVELS: [EnumRow<gn_log_level, Level>; 6] = [
    EnumRow::new(gn_log_level::Off, c"GN_LOG_LEVEL_OFF", Level::Off),
    EnumRow::new(gn_log_level::Error, c"GN_LOG_LEVEL_ERROR", Level::Error),
    EnumRow::new(gn_log_level::Warn, c"GN_LOG_LEVEL_WARN", Level::Warn),
    EnumRow::new(gn_log_level::Info, c"GN_LOG_LEVEL_INFO", Level::Info),
    EnumRow::new(gn_log_level::Debug, c"GN_LOG_LEVEL_DEBUG", Level::Debug),
    EnumRow::new(gn_log_level::Trace, c"GN_LOG_LEVEL_TRACE", Level::Trace),
];

impl From<gn_log_level> for c_int {
    fn from(level: gn_log_level) -> c_int {
        level as c_int
    }
}

type LogFn = unsafe extern "C" fn(*mut c_void, gn_log_level, *const c_char, *const c_char);

struct ForeignLog(Closure<LogFn>);

/// The installed sink's closure, so that replacing it can wait for its `drop`. Its lock also
/// serialises `gn_log_set_callback` calls.
static INSTALLED: Mutex<Option<Arc<ClosureOwner>>> = Mutex::new(None);

thread_local! {
    /// Set while this thread runs the host's log call, which must not wait for its own end.
    static IN_LOG_CALL: Cell<bool> = const { Cell::new(false) };
}

impl LogSink for ForeignLog {
    fn log(&self, level: Level, target: &str, message: &str) {
        let Some(level) = enum_row_of(&LOG_LEVELS, level).filter(|row| row.core != Level::Off) else { return };
        let target = CString::new(target.replace('\0', "")).unwrap_or_default();
        let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        let (call, user_data) = self.0.parts();
        let outer = IN_LOG_CALL.with(|c| c.replace(true));
        // SAFETY: the host's function with its own user_data; the strings outlive the call.
        unsafe { call(user_data, level.c, target.as_ptr(), message.as_ptr()) };
        IN_LOG_CALL.with(|c| c.set(outer));
    }
}

/// Installs `callback` as the log sink for events up to `max_level`, a `gn_log_level` value,
/// replacing the previous sink. When it returns, the previous sink's calls have ended and its `drop`
/// has run. `call` NULL or `max_level` `GN_LOG_LEVEL_OFF` removes the sink. Independent of
/// `GNAMING_LOG`, which logs to stderr. The library owns `callback` from here on, even on error.
///
/// Fails with `GN_STATUS_INVALID_ARGUMENT` when `max_level` is not a `gn_log_level`, and with
/// `GN_STATUS_BAD_STATE` from inside a log call; then the previous sink stays and `callback`'s
/// `drop` runs before this returns. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_log_set_callback(
    callback: gn_log_callback,
    max_level: c_int,
    err_out: *mut *mut gn_error,
) -> gn_status {
    let (sink, owner) = Closure::take(callback.user_data, callback.call, callback.drop);
    with_status(err_out, move || {
        let Some(level) = enum_row(&LOG_LEVELS, max_level) else {
            let (first, last) = (&LOG_LEVELS[0], &LOG_LEVELS[LOG_LEVELS.len() - 1]);
            return Err(Error::invalid_argument(format!(
                "max_level {max_level} is not a gn_log_level (from {} {} to {} {})",
                c_int::from(first.c),
                first.name.to_string_lossy(),
                c_int::from(last.c),
                last.name.to_string_lossy()
            )));
        };
        if IN_LOG_CALL.with(Cell::get) {
            return Err(Error::new(ErrorKind::BadState, "gn_log_set_callback cannot be called from a log call"));
        }
        let sink = sink.filter(|_| level.core != Level::Off);
        let mut installed = INSTALLED.lock();
        let previous = std::mem::replace(&mut *installed, sink.as_ref().map(|_| Arc::clone(&owner)));
        log::set_sink(sink.map(|s| Arc::new(ForeignLog(s)) as Arc<dyn LogSink>), level.core);
        if let Some(previous) = previous {
            // Its last running call drops the old sink, which runs `drop`.
            previous.wait_released();
        }
        Ok(())
    })
}
