//! Runs nft scripts: in process through libnftables (the library the `nft` binary is a thin
//! front end of) when it can be loaded, else by spawning `nft -f -` as before.
//!
//! Why: every container start and exit on a bridge network replaces berth's tables and
//! reads the host's forward chain, three nft runs each. Spawning `nft` costs its dynamic
//! linking of ten libraries, 10 to 100 ms apiece on a loaded host, more than everything
//! else the default bridge adds to `docker run`; libnftables does the same parse and the
//! same netlink transaction in about a millisecond. It is opened with `dlopen` (no build
//! or link dependency: a host without libnftables.so.1 gets the process path), and every
//! call holds one lock because libnftables (and the libxtables it prints iptables-nft rules
//! with) keep global state.
//!
//! One hazard is guarded against: libnftables calls `exit()` when it cannot open its
//! NETLINK_NETFILTER socket, so that socket is opened here first and the process path
//! is taken if it fails (the `nft` child then fails on its own).

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::error::NetError;

/// `NFT_CTX_OUTPUT_HANDLE` of libnftables.h: listings carry `# handle N` (as `nft -a`).
const OUTPUT_HANDLE: c_uint = 1 << 3;

/// The subset of libnftables' API berth uses, resolved once.
struct Library {
    ctx_new: unsafe extern "C" fn(c_uint) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    output_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    error_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    set_flags: unsafe extern "C" fn(*mut c_void, c_uint),
    run: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
}

/// What one nft run printed.
pub(crate) struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `script` as `nft -f -` would (`handles`: as `nft -a`).
pub(crate) fn run(script: &str, handles: bool) -> Result<Output, NetError> {
    if let Some(library) = library() {
        if netfilter_socket_opens() {
            if let Ok(script) = CString::new(script) {
                return Ok(in_process(library, &script, handles));
            }
        }
    }
    spawn(script, handles)
}

fn library() -> Option<&'static Library> {
    static LIBRARY: OnceLock<Option<Library>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            if std::env::var_os("BERTH_NFT_PROCESS").is_some() {
                return None;
            }
            load()
        })
        .as_ref()
}

fn load() -> Option<Library> {
    // SAFETY: dlopen with a constant NUL-terminated name; the handle is never closed, so
    // every symbol resolved from it stays valid for the life of the process.
    let handle = unsafe { libc::dlopen(c"libnftables.so.1".as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        return None;
    }
    let symbol = |name: &CStr| -> Option<*mut c_void> {
        // SAFETY: `handle` is a live dlopen handle and `name` is NUL-terminated.
        let pointer = unsafe { libc::dlsym(handle, name.as_ptr()) };
        (!pointer.is_null()).then_some(pointer)
    };
    // SAFETY: each symbol is cast to the prototype libnftables.h (API version 1, the one
    // Debian 12's libnftables1 1.0.6 exports) declares for it.
    unsafe {
        Some(Library {
            ctx_new: function(symbol(c"nft_ctx_new")?),
            ctx_free: function(symbol(c"nft_ctx_free")?),
            buffer_output: function(symbol(c"nft_ctx_buffer_output")?),
            buffer_error: function(symbol(c"nft_ctx_buffer_error")?),
            output_buffer: function(symbol(c"nft_ctx_get_output_buffer")?),
            error_buffer: function(symbol(c"nft_ctx_get_error_buffer")?),
            set_flags: function(symbol(c"nft_ctx_output_set_flags")?),
            run: function(symbol(c"nft_run_cmd_from_buffer")?),
        })
    }
}

/// A symbol's address as the function pointer type `F`.
///
/// # Safety
/// `F` must be an `extern "C" fn` type matching the symbol's real prototype.
unsafe fn function<F: Copy>(pointer: *mut c_void) -> F {
    assert_eq!(
        std::mem::size_of::<F>(),
        std::mem::size_of::<*mut c_void>(),
        "invariant: F is a function pointer"
    );
    // SAFETY: same size (checked above); the caller guarantees the prototype.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&pointer) }
}

/// Opens and closes a NETLINK_NETFILTER socket, as libnftables is about to (see the module
/// doc: it exits the process when it cannot).
fn netfilter_socket_opens() -> bool {
    // SAFETY: plain socket(2); the descriptor is closed right after.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just opened by this function and is not shared.
    unsafe { libc::close(fd) };
    true
}

fn in_process(library: &Library, script: &CStr, handles: bool) -> Output {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: a context is created, used and freed on this thread under the lock; the
    // buffers it returns are copied before the context is freed.
    unsafe {
        let ctx = (library.ctx_new)(0);
        if ctx.is_null() {
            return Output {
                success: false,
                stdout: String::new(),
                stderr: "libnftables could not create a context".to_string(),
            };
        }
        (library.buffer_output)(ctx);
        (library.buffer_error)(ctx);
        if handles {
            (library.set_flags)(ctx, OUTPUT_HANDLE);
        }
        let status = (library.run)(ctx, script.as_ptr());
        let text = |pointer: *const c_char| {
            if pointer.is_null() {
                String::new()
            } else {
                CStr::from_ptr(pointer).to_string_lossy().into_owned()
            }
        };
        let output = Output {
            success: status == 0,
            stdout: text((library.output_buffer)(ctx)),
            stderr: text((library.error_buffer)(ctx)),
        };
        (library.ctx_free)(ctx);
        output
    }
}

fn spawn(script: &str, handles: bool) -> Result<Output, NetError> {
    let mut command = Command::new("nft");
    if handles {
        command.arg("-a");
    }
    let mut child = command
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetError::NftSpawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(NetError::NftSpawn)?;
    }
    let output = child.wait_with_output().map_err(NetError::NftSpawn)?;
    Ok(Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_nft_cannot_parse_fails_with_its_message_on_either_path() {
        // Parsing fails before any netlink work, so this needs neither root nor nf_tables.
        let out = run("this is not nft syntax\n", false).expect("nft or libnftables runs");
        assert!(!out.success);
        assert!(out.stderr.contains("syntax error"), "{}", out.stderr);
    }
}
