/**
 * What the sync engine knows about one path. Paths are relative to the sync root, use '/'
 * as separator, and have no leading or trailing slash.
 *
 * Times are kept as milliseconds since the epoch in a double (`mtimeMs`, as Node's fs.Stats
 * gives them). A double of that size resolves about 0.2 microseconds, finer than utimes()
 * can set; each side compares its own stat with its own snapshot, so the same double comes
 * back for an unchanged file and equality is exact.
 */
export type EntryKind = 'file' | 'dir' | 'symlink';

export interface Entry {
  readonly path: string;
  readonly kind: EntryKind;
  /** Bytes for files, 0 for directories and links. */
  readonly size: number;
  readonly mtimeMs: number;
  /** Permission bits (mode & 0o7777). */
  readonly mode: number;
  readonly ino: number;
  readonly uid: number;
  readonly gid: number;
  /** Link target, for symlinks only. */
  readonly target?: string;
  /** Content digest (xxh64, hex) for files whose content has been read; undefined if unknown. */
  readonly digest?: string;
  /**
   * Extended attributes (and POSIX ACLs) as canonical JSON `{name: base64}`, sorted by name;
   * undefined when none were read (the option is off) or the object has none.
   */
  readonly xattrs?: string;
  /** Access time, carried only to set it at the receiver (--preserve-access-time). */
  readonly atimeMs?: number;
}

/** True when two entries of one side describe the same, unmodified object. */
export function sameLocalState(a: Entry, b: Entry): boolean {
  return (
    a.kind === b.kind &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.mode === b.mode &&
    a.ino === b.ino &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.target === b.target &&
    a.xattrs === b.xattrs
  );
}

/** Only the content (what a transfer would carry) differs when this is false. */
export function sameContentShape(a: Entry, b: Entry): boolean {
  return a.kind === b.kind && a.size === b.size && a.target === b.target;
}

/**
 * True when the entries on the two sides hold the same content: same kind, same link
 * target, and for files equal digests, or, when a digest is missing, equal size and a
 * modification time within a microsecond (the rsync quick check; utimes() rounds).
 */
export function sameContent(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'dir') return true;
  if (a.kind === 'symlink') return a.target === b.target;
  if (a.size !== b.size) return false;
  if (a.digest !== undefined && b.digest !== undefined) return a.digest === b.digest;
  return Math.abs(a.mtimeMs - b.mtimeMs) < 0.001;
}

export function withPath(e: Entry, path: string): Entry {
  return { ...e, path };
}

/**
 * The entry with its content digest. Perf: a file's entry (no link target, xattrs or access
 * time) is built as one literal: a snapshot reads every field of it, and an object made by a
 * spread took ~1.4 us per read-out there against next to nothing for a literal (a 100k push's
 * profile, bench/RESULTS.md).
 */
export function withDigest(e: Entry, digest: string): Entry {
  if (e.target !== undefined || e.xattrs !== undefined || e.atimeMs !== undefined)
    return { ...e, digest };
  return {
    path: e.path,
    kind: e.kind,
    size: e.size,
    mtimeMs: e.mtimeMs,
    mode: e.mode,
    ino: e.ino,
    uid: e.uid,
    gid: e.gid,
    digest,
  };
}
