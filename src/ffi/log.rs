//! The host's log sink: one closure receives library log events up to a chosen level.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::error::{gn_error, gn_status};
use super::panic::with_status;
use crate::log::{self, Level, LogSink};

/// Log severity, most severe first.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_log_level {
    /// Nothing; passed by C callers to remove the sink.
    #[allow(dead_code)]
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// A closure that receives log events: `call(user_data, level, target, message)`; `target` names
/// the library module and `message` is the text, both NUL-terminated UTF-8 borrowed for the call.
/// Calls may come from several library threads at once. `drop(user_data)` runs exactly once, after
/// the last call, once the sink is replaced (or at once if `gn_log_set_callback` fails). A call
/// must not call `gn_log_set_callback`.
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

struct ForeignLog {
    user_data: *mut c_void,
    call: unsafe extern "C" fn(*mut c_void, gn_log_level, *const c_char, *const c_char),
    drop: Option<unsafe extern "C" fn(*mut c_void)>,
}

// SAFETY: the header's contract says calls may come from any thread at once.
unsafe impl Send for ForeignLog {}
unsafe impl Sync for ForeignLog {}

impl LogSink for ForeignLog {
    fn log(&self, level: Level, target: &str, message: &str) {
        let level = match level {
            Level::Off => return,
            Level::Error => gn_log_level::Error,
            Level::Warn => gn_log_level::Warn,
            Level::Info => gn_log_level::Info,
            Level::Debug => gn_log_level::Debug,
            Level::Trace => gn_log_level::Trace,
        };
        let target = CString::new(target.replace('\0', "")).unwrap_or_default();
        let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: the host's function with its own user_data; the strings outlive the call.
        unsafe { (self.call)(self.user_data, level, target.as_ptr(), message.as_ptr()) };
    }
}

impl Drop for ForeignLog {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            // SAFETY: the host's function, called once with its own user_data.
            unsafe { drop(self.user_data) };
        }
    }
}

/// Installs `callback` as the log sink for events up to `max_level`, replacing the previous one
/// (whose `drop` runs once its running calls end). `call` NULL or `max_level` `GN_LOG_LEVEL_OFF`
/// removes the sink. Independent of `GNAMING_LOG`, which logs to stderr. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_log_set_callback(
    callback: gn_log_callback,
    max_level: gn_log_level,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        let level = match max_level {
            gn_log_level::Off => Level::Off,
            gn_log_level::Error => Level::Error,
            gn_log_level::Warn => Level::Warn,
            gn_log_level::Info => Level::Info,
            gn_log_level::Debug => Level::Debug,
            gn_log_level::Trace => Level::Trace,
        };
        let sink = callback.call.map(|call| {
            Arc::new(ForeignLog { user_data: callback.user_data, call, drop: callback.drop }) as Arc<dyn LogSink>
        });
        if sink.is_none() {
            if let Some(drop) = callback.drop {
                // SAFETY: no sink was made, so nothing else will run this closure's drop.
                unsafe { drop(callback.user_data) };
            }
        }
        let sink = if level == Level::Off { None } else { sink };
        log::set_sink(sink, level);
        Ok(())
    })
}
