//! Checkpoints: trimming the log without losing what is still live, as Prometheus does.
//!
//! Once the head has written its older samples into a block, the segments holding them are no
//! longer needed, except for the Series records of series that are still in the head: later
//! samples refer to them by ref only. [`Wal::checkpoint`] rewrites the previous checkpoint and
//! the segments up to `through` into `checkpoint.<through>`, keeping the Series records the
//! caller still knows and the samples at or after `mint`, then deletes those segments and the
//! previous checkpoint. Replay reads the newest checkpoint first and then the segments after it.
//!
//! The file is written as `checkpoint.<through>.tmp`, fsynced, renamed and the directory
//! fsynced, so a crash leaves either the old state or the new one: a leftover `.tmp` is deleted
//! on open, and so are segments a checkpoint already covers.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::record::{self, RecordType};
use super::{
    io_error, sync_dir_of, Listing, Reader, Record, RefSample, ReplayReport, Wal, WalError,
    CHECKPOINT_PREFIX, TMP_SUFFIX,
};

/// What a checkpoint kept and removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint written covers the segments up to and including this one.
    pub through: u32,
    pub series_kept: u64,
    pub series_dropped: u64,
    pub samples_kept: u64,
    pub samples_dropped: u64,
    /// Size of the checkpoint file.
    pub bytes: u64,
    /// Segments deleted after the checkpoint was in place.
    pub segments_removed: u32,
}

pub(crate) fn checkpoint_path(dir: &Path, n: u32) -> std::path::PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{n:08}"))
}

impl Wal {
    /// Folds the previous checkpoint and every segment up to `through` into a new checkpoint,
    /// keeping Series records whose ref `keep` accepts and samples of kept series with
    /// `t >= mint`, then deletes those segments and the older checkpoint. `through` must be
    /// below the segment being written ([`Wal::roll`] first to include everything logged).
    /// Nothing is deleted unless the new checkpoint is durably in place.
    pub fn checkpoint<K>(&self, through: u32, mut keep: K, mint: i64) -> Result<CheckpointStats, WalError>
    where
        K: FnMut(u64) -> bool,
    {
        let _one_at_a_time = self.maintenance.lock();
        let current = self.writer.lock().segment;
        if through >= current {
            return Err(WalError::CheckpointActiveSegment { through, current });
        }
        let listing = Listing::read(&self.dir)?;
        let previous = listing.checkpoints.last().map(|(n, _)| *n);
        let mut stats = CheckpointStats { through, ..CheckpointStats::default() };
        if previous.is_some_and(|p| p >= through) {
            return Ok(stats);
        }
        let mut sources: Vec<&Path> =
            listing.checkpoints.last().map(|(_, p)| p.as_path()).into_iter().collect();
        sources.extend(
            listing
                .segments
                .iter()
                .filter(|(n, _)| previous.is_none_or(|p| *n > p) && *n <= through)
                .map(|(_, p)| p.as_path()),
        );

        let final_path = checkpoint_path(&self.dir, through);
        let tmp_path = self.dir.join(format!("{CHECKPOINT_PREFIX}{through:08}{TMP_SUFFIX}"));
        let written = write_checkpoint(&tmp_path, &sources, &mut keep, mint, self.opts.compress, &mut stats);
        let written = written.and_then(|()| {
            fs::rename(&tmp_path, &final_path)
                .map_err(io_error("cannot rename WAL checkpoint", &tmp_path))?;
            sync_dir_of(&self.dir)
        });
        if let Err(e) = written {
            // The old checkpoint and segments are untouched; only the partial file goes.
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }

        for (n, path) in &listing.checkpoints {
            if *n < through {
                fs::remove_file(path).map_err(io_error("cannot remove old WAL checkpoint", path))?;
            }
        }
        stats.segments_removed = self.remove_segments_before(through.saturating_add(1))?;
        tracing::info!(
            through,
            series_kept = stats.series_kept,
            series_dropped = stats.series_dropped,
            samples_kept = stats.samples_kept,
            segments_removed = stats.segments_removed,
            "WAL checkpoint written"
        );
        Ok(stats)
    }
}

fn write_checkpoint(
    path: &Path,
    sources: &[&Path],
    keep: &mut dyn FnMut(u64) -> bool,
    mint: i64,
    compress: bool,
    stats: &mut CheckpointStats,
) -> Result<(), WalError> {
    let file = File::create(path).map_err(io_error("cannot create WAL checkpoint", path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut kept_samples: Vec<RefSample> = Vec::new();
    let mut write_err = None;
    let mut reader = Reader::default();
    // The checkpoint is a file of its own: its samples refer only to earlier ones in it.
    let mut encoder = record::SamplesEncoder::default();
    let mut packed = Vec::new();
    for source in sources {
        let mut scratch = ReplayReport::default();
        let mut on_record = |r: Record<'_>| {
            if write_err.is_some() {
                return;
            }
            record::begin(&mut buf);
            let mut typ = match r {
                Record::Series(series) => {
                    for s in &series {
                        if keep(s.series) {
                            stats.series_kept += 1;
                            let labels = s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                            record::encode_series_entry(&mut buf, s.series, labels);
                        } else {
                            stats.series_dropped += 1;
                        }
                    }
                    RecordType::Series
                }
                Record::Samples(samples) => {
                    kept_samples.clear();
                    kept_samples.extend(samples.iter().filter(|s| s.t >= mint && keep(s.series)));
                    stats.samples_kept += kept_samples.len() as u64;
                    stats.samples_dropped += (samples.len() - kept_samples.len()) as u64;
                    if compress {
                        encoder.encode(&mut buf, &kept_samples);
                        RecordType::SamplesDelta
                    } else {
                        record::encode_samples(&mut buf, &kept_samples);
                        RecordType::Samples
                    }
                }
            };
            if buf.len() == record::HEADER_LEN {
                return;
            }
            if compress && typ == RecordType::Series {
                if let Some(t) = record::compress_series(&buf[record::HEADER_LEN..], &mut packed) {
                    buf.truncate(record::HEADER_LEN);
                    buf.extend_from_slice(&packed);
                    typ = t;
                }
            }
            // Re-encoding a record that fitted cannot make it larger than the limit; if it
            // ever did, the record is left out and later samples must not refer to it.
            if record::finish(&mut buf, typ).is_ok() {
                stats.bytes += buf.len() as u64;
                if let Err(source) = out.write_all(&buf) {
                    write_err = Some(source);
                }
            } else if typ == RecordType::SamplesDelta {
                encoder.forget(true);
            }
        };
        let damage = reader.read_file(source, &mut on_record, &mut scratch)?;
        if let Some(d) = damage {
            return Err(WalError::Corrupt { path: source.to_path_buf(), offset: d.offset, kind: d.kind });
        }
        if let Some(source) = write_err.take() {
            return Err(WalError::Io {
                action: "cannot write WAL checkpoint",
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let file = out.into_inner().map_err(|e| WalError::Io {
        action: "cannot write WAL checkpoint",
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_error("cannot fsync WAL checkpoint", path))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::tests::{batch, open, replay, series, Owned};
    use super::super::{FsyncPolicy, Record, RefSeries, WalOptions};
    use super::*;

    fn small() -> WalOptions {
        WalOptions { segment_size: 400, fsync: FsyncPolicy::Never, compress: true }
    }

    #[test]
    fn checkpoint_keeps_live_series_and_recent_samples() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), small());
        // Series 1..=6, each followed by a batch: batch(i, 3) has refs 10i..10i+2, t 1000i..
        for i in 1..=6 {
            wal.log_series([(i, [("job", "a")])]).unwrap();
            wal.log_samples(&[RefSample { series: i, t: 1000 * i as i64, v: i as f64 }]).unwrap();
        }
        let through = wal.roll().unwrap() - 1;
        wal.log_samples(&[RefSample { series: 2, t: 9000, v: 9.0 }]).unwrap();
        let first_before = *wal.segments().start();

        // Series 2 and 5 are live; samples before t=3000 are in a block already.
        let stats = wal.checkpoint(through, |r| r == 2 || r == 5, 3000).unwrap();
        assert_eq!(stats.series_kept, 2);
        assert_eq!(stats.series_dropped, 4);
        assert_eq!(stats.samples_kept, 1); // series 5 at t=5000; series 2 at t=2000 is too old
        assert_eq!(stats.segments_removed, through - first_before + 1);
        assert_eq!(wal.segments(), through + 1..=through + 1);
        assert!(checkpoint_path(tmp.path(), through).exists());
        drop(wal);

        let (got, report) = replay(tmp.path());
        assert_eq!(report.checkpoint, Some(through));
        let s = |n: u64| RefSeries { series: n, labels: vec![("job".into(), "a".into())] };
        assert_eq!(
            got,
            vec![
                Owned::Series(vec![s(2)]),
                Owned::Series(vec![s(5)]),
                Owned::Samples(vec![RefSample { series: 5, t: 5000, v: 5.0 }]),
                Owned::Samples(vec![RefSample { series: 2, t: 9000, v: 9.0 }]),
            ]
        );
    }

    #[test]
    fn a_second_checkpoint_folds_in_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), small());
        crate::tsdb::wal::tests::log(&wal, &series(1));
        crate::tsdb::wal::tests::log(&wal, &series(2));
        let first = wal.roll().unwrap() - 1;
        wal.checkpoint(first, |_| true, i64::MIN).unwrap();
        crate::tsdb::wal::tests::log(&wal, &series(3));
        crate::tsdb::wal::tests::log(&wal, &batch(3, 2));
        let second = wal.roll().unwrap() - 1;
        let stats = wal.checkpoint(second, |r| r != 1, i64::MIN).unwrap();
        assert_eq!((stats.series_kept, stats.series_dropped, stats.samples_kept), (2, 1, 2));
        assert!(!checkpoint_path(tmp.path(), first).exists());
        // Checkpointing what is already covered changes nothing.
        assert_eq!(wal.checkpoint(first, |_| false, 0).unwrap().series_dropped, 0);
        drop(wal);
        let (got, report) = replay(tmp.path());
        assert_eq!(report.checkpoint, Some(second));
        assert_eq!(got, vec![series(2), series(3), batch(3, 2)]);
    }

    #[test]
    fn the_active_segment_cannot_be_checkpointed() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), small());
        let current = *wal.segments().end();
        assert!(matches!(
            wal.checkpoint(current, |_| true, 0),
            Err(WalError::CheckpointActiveSegment { through, current: c }) if through == current && c == current
        ));
    }

    #[test]
    fn leftovers_of_an_interrupted_checkpoint_are_cleaned_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), small());
        crate::tsdb::wal::tests::log(&wal, &series(1));
        let through = wal.roll().unwrap() - 1;
        crate::tsdb::wal::tests::log(&wal, &series(2));
        drop(wal);
        // As if the process died after the rename, before deleting the covered segment, and
        // while writing a later checkpoint.
        let seg = crate::tsdb::wal::segment_path(tmp.path(), through);
        fs::copy(&seg, checkpoint_path(tmp.path(), through)).unwrap();
        fs::write(tmp.path().join(format!("checkpoint.{:08}.tmp", through + 1)), b"partial").unwrap();
        let (got, report) = replay(tmp.path());
        assert_eq!(got, vec![series(1), series(2)]);
        assert_eq!(report.checkpoint, Some(through));
        assert!(!seg.exists());
        assert!(!tmp.path().join(format!("checkpoint.{:08}.tmp", through + 1)).exists());
    }

    #[test]
    fn a_damaged_checkpoint_keeps_its_good_prefix_and_the_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), small());
        crate::tsdb::wal::tests::log(&wal, &series(1));
        crate::tsdb::wal::tests::log(&wal, &series(2));
        let through = wal.roll().unwrap() - 1;
        wal.checkpoint(through, |_| true, 0).unwrap();
        crate::tsdb::wal::tests::log(&wal, &series(3));
        drop(wal);
        let cp = checkpoint_path(tmp.path(), through);
        let mut data = fs::read(&cp).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(&cp, data).unwrap();
        let (got, report) = replay(tmp.path());
        assert_eq!(got, vec![series(1), series(3)]);
        assert_eq!(report.corruptions.len(), 1);
        assert_eq!(report.corruptions[0].path, cp);
        assert!(report.corruptions[0].segments_dropped.is_empty());
    }

    #[test]
    fn replay_sees_checkpoint_records_through_the_public_callback() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), small());
        crate::tsdb::wal::tests::log(&wal, &series(7));
        let through = wal.roll().unwrap() - 1;
        wal.checkpoint(through, |_| true, 0).unwrap();
        drop(wal);
        let mut refs = Vec::new();
        let (_wal, _) = Wal::open(tmp.path(), small(), |r| {
            if let Record::Series(s) = r {
                refs.extend(s.into_iter().map(|s| s.series));
            }
        })
        .unwrap();
        assert_eq!(refs, vec![7]);
    }
}
