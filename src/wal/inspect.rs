//! `shoal wal info | dump | verify`: read-only inspection of a WAL directory. Never
//! repairs anything; it shows what recovery would do (or why it would refuse).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{Result, WalError};
use super::meta::{Meta, MetaStore};
use super::options::WalOptions;
use super::record::{self, Decode, FLAG_LZ4};
use super::recovery::{self, Plan};
use super::segment::{self, SegmentScan, SEGMENT_HEADER_BYTES};
use super::Lsn;

/// Bytes of payload `dump` shows per record.
const DUMP_PREVIEW_BYTES: usize = 48;

/// The `shoal wal` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum WalCommand {
    /// Segments, LSN range, metadata, and what opening would repair or refuse.
    Info {
        /// The WAL directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print records starting at an LSN.
    Dump {
        /// The WAL directory.
        #[arg(long)]
        dir: PathBuf,
        /// First LSN to print.
        #[arg(long, default_value_t = 1)]
        from: Lsn,
        /// Most records to print.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Check every record (checksums, LSN order, decompression) and the metadata; exits
    /// with an error if anything is wrong.
    Verify {
        /// The WAL directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs one subcommand, writing its report to `out`.
pub fn run(cmd: &WalCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        WalCommand::Info { dir } => info(dir, out),
        WalCommand::Dump { dir, from, limit } => dump(dir, *from, *limit, out),
        WalCommand::Verify { dir } => verify(dir, out),
    }
}

struct Snapshot {
    meta: std::result::Result<Option<Meta>, WalError>,
    scans: Vec<SegmentScan>,
    tmps: Vec<PathBuf>,
    plan: Result<Plan>,
}

fn snapshot(dir: &Path, check_payloads: bool) -> Result<Snapshot> {
    if !dir.is_dir() {
        return Err(WalError::io(
            "inspecting",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    let opts = WalOptions::default();
    let (segs, tmps) = segment::list_dir(dir)?;
    let mut scans = Vec::with_capacity(segs.len());
    for (_, p) in &segs {
        scans.push(segment::scan_segment(p, opts.index_interval_bytes, check_payloads)?);
    }
    let meta =
        if MetaStore::path(dir).exists() { MetaStore::open(dir).map(|(m, _)| Some(m.get().clone())) } else { Ok(None) };
    let plan = match &meta {
        Ok(m) => recovery::decide(m.as_ref(), &scans, &tmps, &opts),
        Err(e) => Err(e.clone()),
    };
    Ok(Snapshot { meta, scans, tmps, plan })
}

fn w(out: &mut dyn Write, dir: &Path, s: std::fmt::Arguments<'_>) -> Result<()> {
    out.write_fmt(s).map_err(|e| WalError::io("writing the report for", dir, e))
}

fn info(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let s = snapshot(dir, false)?;
    let total: u64 = s.scans.iter().map(|x| x.file_bytes).sum();
    let records: u64 = s.scans.iter().map(|x| x.records).sum();
    w(out, dir, format_args!("WAL directory: {}\nformat version: {}\n", dir.display(), segment::FORMAT_VERSION))?;
    w(out, dir, format_args!("segments: {} ({} bytes, {} records)\n", s.scans.len(), total, records))?;
    for (i, x) in s.scans.iter().enumerate() {
        let last = x.last.map_or("-".to_string(), |(l, t)| format!("{l} (term {t})"));
        let tail = if i + 1 == s.scans.len() { " [tail]" } else { "" };
        w(
            out,
            dir,
            format_args!(
                "  {}  first {}  last {}  records {}  bytes {}{}\n",
                x.name, x.first_lsn, last, x.records, x.file_bytes, tail
            ),
        )?;
        if let Err(h) = &x.header {
            w(out, dir, format_args!("    header problem: {h:?}\n"))?;
        }
        if let Some(stop) = &x.stop {
            w(out, dir, format_args!("    damaged at offset {}: {:?}\n", stop.offset, stop.kind))?;
        }
    }
    for t in &s.tmps {
        w(out, dir, format_args!("  leftover temp file: {}\n", t.display()))?;
    }
    match &s.meta {
        Ok(Some(m)) => w(
            out,
            dir,
            format_args!(
                "meta: term {}  vote {}  commit {}  purge_floor {}  last_purged {:?}  snapshot {}\n",
                m.term,
                m.vote.as_ref().map_or("none".into(), |v| format!("{} bytes", v.len())),
                m.commit,
                m.purge_floor,
                m.last_purged,
                m.snapshot.as_ref().map_or("none".into(), |v| format!("{} bytes", v.len())),
            ),
        )?,
        Ok(None) => w(out, dir, format_args!("meta: missing ({})\n", super::meta::META_FILE))?,
        Err(e) => w(out, dir, format_args!("meta: unreadable: {e}\n"))?,
    }
    match &s.plan {
        Ok(p) => {
            w(
                out,
                dir,
                format_args!(
                    "log: first LSN {}  last LSN {} (term {})  uncommitted {}\n",
                    p.first_lsn, p.last_lsn, p.last_term, p.uncommitted_records
                ),
            )?;
            if p.actions.is_empty() {
                w(out, dir, format_args!("open: clean, nothing to repair\n"))?;
            }
            for a in &p.actions {
                w(out, dir, format_args!("open would: {a:?}\n"))?;
            }
        }
        Err(e) => w(out, dir, format_args!("open would refuse: {e}\n"))?,
    }
    Ok(())
}

fn dump(dir: &Path, from: Lsn, limit: u64, out: &mut dyn Write) -> Result<()> {
    let s = snapshot(dir, false)?;
    let mut printed = 0u64;
    for (i, x) in s.scans.iter().enumerate() {
        let next_first = s.scans.get(i + 1).map(|n| n.first_lsn);
        if next_first.is_some_and(|n| n <= from) || x.header.is_err() {
            continue;
        }
        let bytes = std::fs::read(&x.path).map_err(|e| WalError::io("reading", &x.path, e))?;
        let mut pos = SEGMENT_HEADER_BYTES as usize;
        while pos < bytes.len() && printed < limit {
            match record::decode(&bytes[pos..]) {
                Decode::Record(r) => {
                    if r.lsn >= from {
                        let payload = r.payload();
                        let (plen, preview) = match &payload {
                            Ok(p) => (p.len().to_string(), escape(&p[..p.len().min(DUMP_PREVIEW_BYTES)])),
                            Err(e) => ("?".into(), format!("<{e}>")),
                        };
                        let lz = if r.flags & FLAG_LZ4 != 0 { " lz4" } else { "" };
                        w(
                            out,
                            dir,
                            format_args!(
                                "{} term {} kind {} stored {}B payload {}B{} {}\n",
                                r.lsn,
                                r.term,
                                r.kind,
                                r.stored.len(),
                                plen,
                                lz,
                                preview
                            ),
                        )?;
                        printed += 1;
                    }
                    pos += r.total;
                }
                other => {
                    w(out, dir, format_args!("stopped: {} offset {}: {:?}\n", x.name, pos, other))?;
                    break;
                }
            }
        }
        if printed >= limit {
            break;
        }
    }
    w(out, dir, format_args!("({printed} records)\n"))
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .map(|&c| if c.is_ascii_graphic() || c == b' ' { (c as char).to_string() } else { format!("\\x{c:02x}") })
        .collect()
}

fn verify(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let s = snapshot(dir, true)?;
    let mut problems = 0usize;
    let n = s.scans.len();
    for (i, x) in s.scans.iter().enumerate() {
        if let Err(h) = &x.header {
            problems += 1;
            w(out, dir, format_args!("PROBLEM {}: header {h:?}\n", x.name))?;
        }
        if let Some(stop) = &x.stop {
            if i + 1 == n && s.plan.is_ok() {
                w(
                    out,
                    dir,
                    format_args!(
                        "warning {}: torn tail at offset {} ({:?}); opening will truncate it\n",
                        x.name, stop.offset, stop.kind
                    ),
                )?;
            } else {
                problems += 1;
                w(out, dir, format_args!("PROBLEM {}: bad data at offset {}: {:?}\n", x.name, stop.offset, stop.kind))?;
            }
        }
        for (off, e) in &x.payload_errors {
            problems += 1;
            w(out, dir, format_args!("PROBLEM {}: payload at offset {off}: {e}\n", x.name))?;
        }
    }
    if let Err(e) = &s.plan {
        problems += 1;
        w(out, dir, format_args!("PROBLEM: opening would refuse: {e}\n"))?;
    }
    if problems > 0 {
        return Err(WalError::VerifyFailed { problems, dir: dir.to_path_buf() });
    }
    let records: u64 = s.scans.iter().map(|x| x.records).sum();
    w(out, dir, format_args!("OK: {n} segments, {records} records verified\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::tests::{append_n, segment_files, small_opts};
    use crate::wal::Wal;

    fn run_str(cmd: WalCommand) -> (Result<()>, String) {
        let mut out = Vec::new();
        let r = run(&cmd, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn info_dump_verify_on_a_healthy_log() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
        append_n(&wal, 50, 2);
        wal.save_commit(40).unwrap();
        drop(wal);
        let d = dir.path().to_path_buf();
        let (r, s) = run_str(WalCommand::Info { dir: d.clone() });
        r.unwrap();
        assert!(s.contains("last LSN 50 (term 2)") && s.contains("commit 40") && s.contains("open: clean"), "{s}");
        let (r, s) = run_str(WalCommand::Dump { dir: d.clone(), from: 45, limit: 3 });
        r.unwrap();
        assert!(s.starts_with("45 term 2 kind 0") && s.contains("\n47 term 2") && s.contains("(3 records)"), "{s}");
        let (r, s) = run_str(WalCommand::Verify { dir: d });
        r.unwrap();
        assert!(s.contains("OK:") && s.contains("50 records"), "{s}");
    }

    #[test]
    fn verify_names_damage_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
        append_n(&wal, 90, 1);
        drop(wal);
        let seg = &segment_files(dir.path())[1];
        let mut bytes = std::fs::read(seg).unwrap();
        bytes[200] ^= 0x10;
        std::fs::write(seg, bytes).unwrap();
        let (r, s) = run_str(WalCommand::Verify { dir: dir.path().to_path_buf() });
        assert!(matches!(r, Err(WalError::VerifyFailed { .. })), "{r:?}");
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert!(s.contains(&format!("PROBLEM {name}: bad data at offset")), "{s}");
        let (r, s) = run_str(WalCommand::Info { dir: dir.path().to_path_buf() });
        r.unwrap();
        assert!(s.contains("open would refuse"), "{s}");
    }

    #[test]
    fn clap_parses_the_subcommands() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: WalCommand,
        }
        let c = Cli::try_parse_from(["wal", "dump", "--dir", "/x", "--from", "7"]).unwrap();
        assert_eq!(c.cmd, WalCommand::Dump { dir: "/x".into(), from: 7, limit: 100 });
    }
}
