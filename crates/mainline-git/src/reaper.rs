//! Killing our git process groups when this process dies, however it dies.
//!
//! Each git runs in its own process group, with `PR_SET_PDEATHSIG` so the kernel kills git
//! itself when we die. That signal is not inherited: git's own children (`git-remote-http`,
//! `ssh`) would be orphaned and keep waiting on a silent remote. So the first git call starts
//! one small watcher (`sh`, in its own process group, deaf to terminal signals) that reads
//! `+ PGID` / `- PGID` lines from a pipe only we hold. When we die — exit, panic, SIGTERM or
//! SIGKILL — the pipe closes, and the watcher ends every group still registered, then exits.
//!
//! Ending is SIGTERM first, SIGKILL one second later: git removes its `*.lock` files on SIGTERM.
//! Only git calls to a remote across the network are registered (and get PDEATHSIG): a local
//! remote's children are its server side (receive-pack), which must be left to finish — killed
//! mid-push it would leave the remote's ref locked, failing every later push to that ref.
//!
//! Invariants: a group is registered before its git can start anything that could outlive it,
//! and released only after its leader was reaped (its group was killed first on a timeout).
//! Must never: block a git call (a watcher that cannot start, or a full pipe, only costs the
//! orphan protection, which is logged), or kill a group it was not told about.

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The watcher: a set of live groups in a string, killed at end of input.
const SCRIPT: &str = r#"trap '' INT TERM HUP PIPE
live=' '
while read -r op pg; do
  case "$op" in
    +) live="$live$pg " ;;
    -) case "$live" in *" $pg "*) live="${live%% $pg *} ${live#* $pg }" ;; esac ;;
  esac
done
[ "$live" = ' ' ] && exit 0
for pg in $live; do kill -TERM -"$pg" 2>/dev/null; done
sleep 1
for pg in $live; do kill -KILL -"$pg" 2>/dev/null; done
"#;

fn watcher() -> &'static Mutex<Option<ChildStdin>> {
    static WATCHER: OnceLock<Mutex<Option<ChildStdin>>> = OnceLock::new();
    WATCHER.get_or_init(|| {
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not in our group: a Ctrl-C meant for us must not kill the watcher first.
            .process_group(0)
            .spawn();
        match spawned {
            Ok(mut child) => {
                let stdin = child.stdin.take();
                // Never waited for: it ends only after we do, and init reaps it then.
                drop(child);
                Mutex::new(stdin)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the git orphan watcher (sh); git helpers may outlive a killed mainline");
                Mutex::new(None)
            }
        }
    })
}

fn send(line: &str) {
    let mut slot = watcher().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pipe) = slot.as_mut() {
        if pipe.write_all(line.as_bytes()).is_err() {
            tracing::warn!(
                "the git orphan watcher is gone; git helpers may outlive a killed mainline"
            );
            *slot = None;
        }
    }
}

/// Kill group `pgid` if this process dies before [`release`].
pub(crate) fn register(pgid: u32) {
    send(&format!("+ {pgid}\n"));
}

/// The group's leader was reaped: forget it (its id may be reused).
pub(crate) fn release(pgid: u32) {
    send(&format!("- {pgid}\n"));
}
