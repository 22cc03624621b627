//! The database as the rest of Vigil sees it: one data directory, opened once.
//!
//! [`Db::open`] takes an exclusive lock on `<dir>/lock` (a second process gets a clear error
//! instead of two writers corrupting each other), replays `<dir>/wal` into a fresh [`Head`],
//! and then hands the head the WAL as its commit log, so from then on every batch is logged
//! before it becomes visible. Damage found in the WAL is cut and counted, never fatal; only real
//! I/O errors (permissions, a read error) stop the open.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::head::{Appender, Head, HeadLog, HeadOptions, LogError, SeriesSamples};
use super::index::{IndexStats, Matcher, SeriesRef};
use super::labels::Labels;
use super::wal::{Record, RefSample, ReplayReport, Wal, WalError, WalOptions};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create data directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open lock file {}: {source}", path.display())]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("data directory {} is in use by another process (lock file {} is held)", dir.display(), dir.join("lock").display())]
    Locked { dir: PathBuf },
    #[error(transparent)]
    Wal(#[from] WalError),
}

#[derive(Debug, Clone, Default)]
pub struct DbOptions {
    pub head: HeadOptions,
    pub wal: WalOptions,
}

/// What opening the database found, for logs and metrics.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub replay: ReplayReport,
    /// Series records whose labels were invalid (empty or duplicate names); skipped.
    pub invalid_series: u64,
    /// Samples naming a series no record defined (only after damage was cut); skipped.
    pub orphan_samples: u64,
}

pub struct Db {
    dir: PathBuf,
    head: Head,
    wal: Arc<Wal>,
    report: OpenReport,
    // Held for the life of the Db: the OS releases the flock when the file closes.
    _lock: File,
}

struct WalLog(Arc<Wal>);

impl HeadLog for WalLog {
    fn log_series(&self, series: &[(SeriesRef, &Labels)]) -> Result<(), LogError> {
        Ok(self.0.log_series(series.iter().map(|(r, l)| (*r, l.iter())))?)
    }

    fn log_samples(&self, samples: &[RefSample]) -> Result<(), LogError> {
        Ok(self.0.log_samples(samples)?)
    }
}

impl Db {
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| DbError::CreateDir { path: dir.to_path_buf(), source })?;
        let lock = lock_dir(dir)?;
        let mut head = Head::new(opts.head, None);
        let mut report = OpenReport::default();
        let (wal, replay) = Wal::open(&dir.join("wal"), opts.wal, |record| match record {
            Record::Series(series) => {
                for s in series {
                    match Labels::new(s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
                        Ok(labels) if !labels.is_empty() => {
                            head.restore_series(s.series, &labels);
                        }
                        _ => report.invalid_series += 1,
                    }
                }
            }
            Record::Samples(samples) => {
                let (_, orphans) = head.restore_samples(samples);
                report.orphan_samples += orphans as u64;
            }
        })?;
        report.replay = replay;
        if report.invalid_series > 0 || report.orphan_samples > 0 {
            tracing::warn!(
                invalid_series = report.invalid_series,
                orphan_samples = report.orphan_samples,
                "WAL replay skipped records it could not apply"
            );
        }
        let wal = Arc::new(wal);
        head.set_log(Box::new(WalLog(wal.clone())));
        Ok(Db { dir: dir.to_path_buf(), head, wal, report, _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    pub fn appender(&self) -> Appender<'_> {
        self.head.appender()
    }

    /// Series matching all matchers with samples in `[mint, maxt]`, sorted by labels.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.head.select(matchers, mint, maxt)
    }

    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.head.label_names(matchers)
    }

    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.head.label_values(name, matchers)
    }

    pub fn index_stats(&self, top_n: usize) -> IndexStats {
        self.head.index_stats(top_n)
    }
}

fn lock_dir(dir: &Path) -> Result<File, DbError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DbError::LockFile { path: path.clone(), source })?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; it only reads the fd and flags.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(if err.kind() == std::io::ErrorKind::WouldBlock {
                DbError::Locked { dir: dir.to_path_buf() }
            } else {
                DbError::LockFile { path, source: err }
            });
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn labels(name: &str, i: usize) -> Labels {
        Labels::new([("__name__", name.to_string()), ("i", i.to_string())]).unwrap()
    }

    #[test]
    fn samples_survive_reopen_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            for t in 0..300i64 {
                let mut app = db.appender();
                for i in 0..20 {
                    let v = if t == 299 { f64::from_bits(STALE) } else { t as f64 * 0.1 + i as f64 };
                    app.append(&labels("m", i), t * 1000, v);
                }
                app.commit().unwrap();
            }
        }
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(db.open_report().replay.corruptions, vec![]);
        let sel = db.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX);
        assert_eq!(sel.len(), 20);
        for s in &sel {
            let i: usize = s.labels.get("i").unwrap().parse().unwrap();
            let got = s.samples();
            assert_eq!(got.len(), 300);
            for (t, (gt, gv)) in got.iter().enumerate() {
                assert_eq!(*gt, t as i64 * 1000);
                let want = if t == 299 { f64::from_bits(STALE) } else { t as f64 * 0.1 + i as f64 };
                assert_eq!(gv.to_bits(), want.to_bits());
            }
        }
        // New series after reopen get fresh refs that do not collide with replayed ones.
        let mut app = db.appender();
        let r = app.append(&labels("other", 0), 1, 1.0);
        app.commit().unwrap();
        assert!(sel.iter().all(|s| s.series_ref != r));
    }

    #[test]
    fn second_open_of_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let err = Db::open(dir.path(), DbOptions::default()).err().unwrap();
        assert!(matches!(err, DbError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another process"));
    }

    #[test]
    fn torn_wal_tail_keeps_everything_before_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            for t in 0..10 {
                let mut app = db.appender();
                app.append(&labels("m", 0), t, t as f64);
                app.commit().unwrap();
            }
        }
        // Cut the last record short, as a crash in the middle of a write would.
        let seg = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().chars().all(|c| c.is_ascii_digit()))
            .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
            .max()
            .unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(db.open_report().replay.corruptions.len(), 1);
        let got = db.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)[0].samples();
        assert_eq!(got, (0..9).map(|t| (t, t as f64)).collect::<Vec<_>>());
    }
}
