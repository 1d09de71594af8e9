//! Child processes that never outlive Portico: each is spawned from one
//! long-lived thread with `PR_SET_PDEATHSIG`, in its own process group, and is
//! registered so that a normal exit (including the end of a test binary)
//! kills it; dropping a [`Process`] kills it too. A [`Janitor`] is the one
//! child that outlives its parent on purpose: it waits for the parent to stop
//! or die and then removes what killing processes cannot (mounts, network
//! interfaces, cgroups).

use std::{
    collections::BTreeSet,
    fs::File,
    io,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Children are forked by this thread, which lives as long as the process:
/// the kernel's parent-death signal fires when the forking *thread* ends.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("portico-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the process-spawner thread");
        // SAFETY: registering a plain extern "C" function with atexit.
        unsafe { libc::atexit(kill_registered_at_exit) };
        Mutex::new(tx)
    })
}

fn registry() -> &'static Mutex<BTreeSet<i32>> {
    static LIVE: OnceLock<Mutex<BTreeSet<i32>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

fn dirs_to_remove() -> &'static Mutex<Vec<PathBuf>> {
    static DIRS: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    DIRS.get_or_init(Default::default)
}

/// Removes `dir` when the process exits normally (for objects held in statics, never dropped).
pub fn remove_at_exit(dir: &Path) {
    dirs_to_remove().lock().unwrap().push(dir.to_path_buf());
}

/// Janitors still waiting: their pid and the write end of their stdin pipe.
fn janitors() -> &'static Mutex<Vec<(i32, i32)>> {
    static JANITORS: OnceLock<Mutex<Vec<(i32, i32)>>> = OnceLock::new();
    JANITORS.get_or_init(Default::default)
}

extern "C" fn kill_registered_at_exit() {
    if let Ok(live) = registry().lock() {
        for pid in live.iter() {
            // SAFETY: signalling a pid this process spawned and has not reaped.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
    if let Ok(janitors) = janitors().lock() {
        for (pid, fd) in janitors.iter() {
            // SAFETY: closing our end of the janitor's pipe (it then sweeps) and reaping it.
            unsafe {
                libc::close(*fd);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
        }
    }
    if let Ok(dirs) = dirs_to_remove().lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A running child process with its output going to a log file.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program args…`, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> io::Result<Process> {
        Self::spawn_with_env(name, program, args, &[], log)
    }

    /// Like [`Process::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &std::ffi::OsStr)],
        log: &Path,
    ) -> io::Result<Process> {
        let out = File::options().create(true).append(true).open(log)?;
        let mut cmd = Command::new(program);
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        spawner().lock().unwrap().send((cmd, tx)).map_err(io::Error::other)?;
        let child = rx.recv().map_err(io::Error::other)??;
        registry().lock().unwrap().insert(child.id() as i32);
        Ok(Process {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The component's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Some(status)` when the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after `grace`; waits until the process is gone.
    /// Returns the exit status when it ended by itself within `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id() as i32;
        let mut status = self.exited();
        if status.is_none() {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + grace;
            while status.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                status = self.exited();
            }
            if status.is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        registry().lock().unwrap().remove(&pid);
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let _ = self.child.kill();
        let _ = self.child.wait();
        registry().lock().unwrap().remove(&pid);
    }
}

/// A shell script that runs after its parent is done with what it guards:
/// it waits for its stdin to close — [`Janitor::finish`], the end of the
/// process, or the kernel closing the pipe when the parent is killed — and
/// then does its work. Not killed with its parent; in its own process group,
/// so Ctrl-C does not reach it either.
pub struct Janitor {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
}

impl Janitor {
    /// Starts `bash -c script` with `args`; its output goes to this process's stderr.
    pub fn spawn(script: &str, args: &[&Path]) -> io::Result<Janitor> {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("portico-janitor")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        if let Some(fd) = stdin.as_ref().map(std::os::fd::AsRawFd::as_raw_fd) {
            janitors().lock().unwrap().push((child.id() as i32, fd));
        }
        Ok(Janitor { child, stdin })
    }

    /// Lets the janitor work and waits until it is done; true when it succeeded.
    pub fn finish(&mut self) -> bool {
        let pid = self.child.id() as i32;
        janitors().lock().unwrap().retain(|(p, _)| *p != pid);
        drop(self.stdin.take());
        self.child.wait().is_ok_and(|s| s.success())
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.finish();
        }
    }
}
