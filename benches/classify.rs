//! Cost of the statement classifier over the whole `sql-corpus/`: ns per statement for
//! tokenizing, `classify`, `digest`, `normalize`, `parse_set` and a `ClassifyCache` hit,
//! with the heap allocations each makes (a counting global allocator).
//!
//! `cargo bench --bench classify` prints a table; it exits non-zero when the cache-hit path
//! (or `classify` / `digest`) allocates, which is the allocation-free proof the issue asks.

use shoal::classify::{classify, digest, normalize, parse_set, ClassifyCache, Tokenizer, CACHE_ENTRIES_MAX};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts allocations (and reallocations) made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Each trial runs the whole corpus at least this long.
const TRIAL_TIME_MIN: Duration = Duration::from_millis(200);
/// Trials per operation; the table shows the fastest and the median.
const TRIALS: usize = 9;

/// Statements of every corpus file (the text after each `-- expect:` block's directives).
fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sql-corpus/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("corpus file");
        let mut body: Vec<&str> = Vec::new();
        let mut open = false;
        for line in text.lines().chain(std::iter::once("")) {
            if line.starts_with("-- expect:") {
                if !body.is_empty() {
                    out.push(body.join("\n").into_bytes());
                }
                body.clear();
                open = true;
            } else if open && body.is_empty() && (line.starts_with("-- set:") || line.starts_with("-- use:")) {
            } else if open && (line.trim().is_empty() || line == ";;") {
                if !body.is_empty() {
                    out.push(body.join("\n").into_bytes());
                    body.clear();
                    open = false;
                }
            } else if open {
                body.push(line);
            }
        }
    }
    out
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`, Linux), so a
/// trial is not charged for the time other processes held the CPU; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

struct Row {
    name: &'static str,
    /// Fastest trial in CPU time (wall time where unavailable): the machine is shared, and
    /// contention only ever adds time.
    ns_min: f64,
    /// Median trial in wall time.
    ns_median: f64,
    mb_per_s: f64,
    allocs_per_stmt: f64,
}

/// Runs `f` over the corpus in `TRIALS` trials of at least `TRIAL_TIME_MIN` each.
fn measure(name: &'static str, stmts: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> Row {
    let bytes: usize = stmts.iter().map(Vec::len).sum();
    for s in stmts {
        f(s); // warm up
    }
    let mut per_stmt = Vec::with_capacity(TRIALS);
    let mut cpu_per_stmt = Vec::with_capacity(TRIALS);
    let mut allocs = 0u64;
    let mut total = 0f64;
    for _ in 0..TRIALS {
        let mut rounds = 0u64;
        // Reading the CPU clock allocates: outside the counted window.
        let cpu_start = thread_cpu_ns();
        let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = Instant::now();
        while start.elapsed() < TRIAL_TIME_MIN {
            for s in stmts {
                f(black_box(s));
            }
            rounds += 1;
        }
        let elapsed = start.elapsed();
        allocs += ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
        let cpu = thread_cpu_ns().zip(cpu_start).map(|(b, a)| b.saturating_sub(a));
        let n = rounds as f64 * stmts.len() as f64;
        total += n;
        per_stmt.push(elapsed.as_nanos() as f64 / n);
        cpu_per_stmt.push(cpu.unwrap_or(elapsed.as_nanos() as u64) as f64 / n);
    }
    per_stmt.sort_by(f64::total_cmp);
    cpu_per_stmt.sort_by(f64::total_cmp);
    let ns_min = cpu_per_stmt[0];
    let mean_len = bytes as f64 / stmts.len() as f64;
    Row {
        name,
        ns_min,
        ns_median: per_stmt[TRIALS / 2],
        mb_per_s: mean_len / ns_min * 1e3,
        allocs_per_stmt: allocs as f64 / total,
    }
}

fn main() {
    let stmts = corpus();
    let bytes: usize = stmts.iter().map(Vec::len).sum();
    println!("corpus: {} statements, {} bytes, mean {} bytes", stmts.len(), bytes, bytes / stmts.len().max(1));

    let mut cache = ClassifyCache::new(CACHE_ENTRIES_MAX);
    let mut by_digest = ClassifyCache::new(CACHE_ENTRIES_MAX);
    for s in &stmts {
        cache.classify(s);
        by_digest.classify_by_digest(s);
    }
    let rows = vec![
        measure("tokenize", &stmts, |s| {
            black_box(Tokenizer::new(s).count());
        }),
        measure("classify", &stmts, |s| {
            black_box(classify(s));
        }),
        measure("digest (FNV, public)", &stmts, |s| {
            black_box(digest(s));
        }),
        measure("cache hit, same text", &stmts, |s| {
            black_box(cache.classify(s));
        }),
        measure("cache hit, same digest", &stmts, |s| {
            black_box(by_digest.classify_by_digest(s));
        }),
        measure("normalize (String)", &stmts, |s| {
            black_box(normalize(s));
        }),
        measure("parse_set", &stmts, |s| {
            black_box(parse_set(s));
        }),
    ];
    let (text, shape) = (cache.stats(), by_digest.stats());

    println!();
    println!("| operation                   | CPU ns/stmt (min) | wall ns/stmt (median) | MB/s (min) | allocs/stmt |");
    println!("|-----------------------------|------------------:|----------------------:|-----------:|------------:|");
    for r in &rows {
        println!(
            "| {:<27} | {:>17.0} | {:>21.0} | {:>10.0} | {:>11.3} |",
            r.name, r.ns_min, r.ns_median, r.mb_per_s, r.allocs_per_stmt
        );
    }
    println!();
    println!("cache (same text):   {text:?}");
    println!("cache (same digest): {shape:?}");

    let must_not_allocate =
        ["tokenize", "classify", "digest (FNV, public)", "cache hit, same text", "cache hit, same digest"];
    let mut failed = false;
    for r in rows.iter().filter(|r| must_not_allocate.contains(&r.name)) {
        if r.allocs_per_stmt > 0.0 {
            eprintln!("FAIL: {} allocates ({} per statement)", r.name, r.allocs_per_stmt);
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    println!("ok: tokenize, classify, digest and both cache-hit paths made no heap allocation");
}
