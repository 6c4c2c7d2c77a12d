-- The snapshot of one endpoint of one session: the tree as it was when last synced.
-- Rows are keyed by (dir, name) so that the children of a directory are one contiguous
-- range of the primary key: the scan diffs one directory at a time with one indexed query.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- kind: 1 file, 2 directory, 3 symlink; NULL when the path was never synced (a failed
-- first transfer keeps only its state and message).
-- state: 0 synchronized, 1 pending, 2 conflict, 3 error.
-- mtime: milliseconds since the epoch as a double, as Node's fs.Stats gives it.
CREATE TABLE entries (
  dir     TEXT NOT NULL,
  name    TEXT NOT NULL,
  kind    INTEGER,
  size    INTEGER,
  mtime   REAL,
  mode    INTEGER,
  ino     INTEGER,
  uid     INTEGER,
  gid     INTEGER,
  target  TEXT,
  digest  TEXT,
  state   INTEGER NOT NULL DEFAULT 0,
  message TEXT,
  PRIMARY KEY (dir, name)
) STRICT, WITHOUT ROWID;
