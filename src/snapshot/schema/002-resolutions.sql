-- Bidirectional sessions: a decision a user stored with `asyncadmin --resolve PATH --keep
-- local|remote|both` for a path in conflict. The next run applies it and deletes the row.
-- keep: 'local' or 'remote' (the session's sides as async names them: -d is local) or 'both'.
CREATE TABLE resolutions (
  path    TEXT PRIMARY KEY,
  keep    TEXT NOT NULL CHECK (keep IN ('local', 'remote', 'both')),
  created TEXT NOT NULL
) STRICT;
