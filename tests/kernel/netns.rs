//! Network namespaces owned by one test: creation, deletion on drop, running
//! commands and closures inside them, and the prerequisite check.
//!
//! Every namespace this suite creates is named `knc-kt<pid>-<test>-<role>`,
//! so names never collide between tests of one run or between concurrent
//! runs, and leftovers of a killed run (whose pid is gone) can be recognised
//! and removed without touching anything else.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;

/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/var/run/netns";

/// Prefix of every namespace this process creates.
pub fn prefix() -> String {
    format!("knc-kt{}-", std::process::id())
}

/// True when the kernel tests can run here. Otherwise prints a loud
/// `SKIPPED` line and returns false, or panics when `CI` is set (in CI
/// these tests must run).
pub fn available(test: &str) -> bool {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    match CHECK.get_or_init(check_prerequisites) {
        Ok(()) => true,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("kernel test {test} cannot run, and CI is set so it must: {why}")
        }
        Err(why) => {
            // Straight to the stderr handle: the test harness captures
            // `eprintln!` of passing tests, and a skip must not go unseen.
            let _ = writeln!(
                io::stderr(),
                "\n*** SKIPPED: kernel test {test}: {why} \
                 (needs root, `ip`, `nft` and `iptables-restore`; set CI=1 to make this a failure) ***"
            );
            false
        }
    }
}

fn check_prerequisites() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root".into());
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("nft", "--version"),
        ("iptables-restore", "--version"),
        ("iptables-save", "--version"),
    ] {
        match Command::new(tool).arg(arg).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("`{tool} {arg}` failed: {:?}", out.status)),
            Err(e) => return Err(format!("`{tool}` not runnable: {e}")),
        }
    }
    sweep_leftovers();
    // Creating a namespace needs CAP_SYS_ADMIN, which root in a container
    // may lack.
    let probe = format!("{}check", prefix());
    let out = Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    Ok(())
}

/// Deletes namespaces left behind by earlier runs of this suite that were
/// killed before their guards ran: names `knc-kt<pid>-…` whose pid no
/// longer exists. Anything else is left alone.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("knc-kt") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Moves the calling thread into the named network namespace. Only ever
/// call this on a dedicated thread that ends when its work is done: the
/// namespace is per thread and must never leak into a pooled thread.
pub fn enter(name: &str) -> io::Result<()> {
    let handle = File::open(format!("{NETNS_DIR}/{name}"))?;
    // SAFETY: setns on a valid namespace fd only changes this thread's
    // network namespace.
    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A network namespace created by this test; deleted when dropped, also on
/// panic.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `knc-kt<pid>-<test>-<role>`.
    pub fn create(test: &str, role: &str) -> Netns {
        let name = format!("{}{test}-{role}", prefix());
        run(Command::new("ip").args(["netns", "add", &name]));
        Netns { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip` commands (one per line, without the leading `ip`) inside
    /// the namespace, as one `ip -batch` process.
    pub fn ip_batch(&self, lines: &[String]) {
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip -batch");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(lines.join("\n").as_bytes())
            .expect("write ip batch");
        let out = child.wait_with_output().expect("wait ip -batch");
        assert!(
            out.status.success(),
            "ip -n {} -batch failed ({}):\n{}\nbatch was:\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            lines.join("\n")
        );
    }

    /// Runs a program inside the namespace (`ip netns exec`); returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args))
    }

    /// Runs `f` on a fresh thread that has entered this namespace.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let name = self.name.clone();
        thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn(move || {
                enter(&name).unwrap_or_else(|e| panic!("setns into {name}: {e}"));
                f()
            })
            .expect("spawn namespace thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Writes sysctls (`("net/ipv4/ip_forward", "1")`, paths under
    /// `/proc/sys`) inside the namespace.
    pub fn sysctls(&self, settings: &[(String, &'static str)]) {
        let settings = settings.to_vec();
        let name = self.name.clone();
        self.run_in(move || {
            for (key, value) in settings {
                std::fs::write(format!("/proc/sys/{key}"), value)
                    .unwrap_or_else(|e| panic!("sysctl {key}={value} in {name}: {e}"));
            }
        });
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete network namespace {}", self.name);
        }
    }
}
