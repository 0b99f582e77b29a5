//! Deterministic test data for the WAL's tests and benchmarks (not part of the API).

/// `n` pseudo-random bytes from `seed` (xorshift64): LZ4 cannot shrink them, so they
/// exercise the raw (uncompressed) record path. The same seed gives the same bytes.
pub fn incompressible(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Crash tests: runs test `name` of this very test binary as a child (with `env` set to
/// `dir`, which tells it to act as the child), lets it work for `work`, kills it with
/// SIGKILL and returns the lines it printed before it died.
pub fn run_and_kill(name: &str, env: &str, dir: &std::path::Path, work: std::time::Duration) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the crash child");
    let stdout = child.stdout.take().expect("child stdout");
    let lines = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    std::thread::sleep(work);
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    lines.join().expect("child output")
}
