-- One compact record per directory, read by the scan instead of one entries row per child
-- (a rescan of 1M files reads 20k of these rather than 1M rows and makes no object per
-- unchanged file). It is a cache of the entries table, never the truth: a directory whose
-- record is missing is scanned from its rows. Every write to entries deletes the record of
-- the directory it touches in the same transaction, and the store rebuilds the records of
-- such directories before the next scan (SnapshotStore.flushDirRecords), so a record that
-- exists always matches its rows, also after kill -9.
--
-- names: the children's names joined by '/' (a name never holds one), sorted by UTF-16
--        code units (JavaScript's default sort).
-- attrs: 36 bytes per child in the same order, little-endian: size f64, mtime f64, ino f64,
--        uid u32, gid u32, mode u16, kind u8 (0 never synced, 1 file, 2 dir, 3 symlink),
--        flags u8 (bit 0: the row must be read: not synced, or has a link target or xattrs).
--
-- A rowid table, unlike entries: a record of 50 children is ~2.3 KB, which a rowid table
-- keeps on one leaf page while a WITHOUT ROWID one spills to overflow pages (measured on 1M
-- files in 20k directories: random reads of every record 3.5-5 times faster).
CREATE TABLE dirs (
  dir   TEXT PRIMARY KEY,
  names TEXT NOT NULL,
  attrs BLOB NOT NULL
) STRICT;
