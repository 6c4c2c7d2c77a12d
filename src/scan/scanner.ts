/**
 * Scans one side's tree and diffs it against that side's snapshot, one directory at a time.
 *
 * fdir drives the crawl. It reads each directory once through an injected fs; that seam
 * records each directory's typed listing, so the scanner sees what fdir leaves out (FIFOs,
 * sockets, devices: skipped with a warning) and which directories could not be read. The
 * children of an unreadable directory are never diffed: nothing below it can look deleted.
 *
 * Each directory's children are lstat'ed synchronously in one batch (Perf: about 2.5 times
 * faster than a promise per file on Node 20) and compared with the snapshot's records for
 * that directory, fetched with one indexed query.
 */
import * as nodeFs from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import { join } from 'node:path';
import { fdir } from 'fdir';
import type { FSLike } from 'fdir';
import type { Change, SnapshotRecord } from '../core/change.js';
import { detectRenames, diffChildren } from '../core/change.js';
import type { Entry } from '../core/entry.js';
import type { Filter } from '../core/filter.js';
import { PRIVATE_DIR, comparePaths, joinRel, parentOf } from '../core/paths.js';
import type { Problem, Warning } from '../core/problem.js';
import { describeIoError, errnoCode } from '../errors.js';
import { FollowedLinks } from './follow.js';

export interface ScanSource {
  /** Records of the direct children of a directory. */
  children(dir: string): SnapshotRecord[];
  /** Synced entries strictly below a path (for renamed directories). */
  descendants(path: string): Entry[];
}

export interface ScanOptions {
  readonly root: string;
  readonly snapshot: ScanSource;
  /** Only these directories (and new directories found in them); see endpoint ScanScope. */
  readonly scope?: readonly string[];
  /** Include/exclude rules; an excluded directory is not entered (see core/filter.ts). */
  readonly filter?: Filter;
  /** -n: how symbolic links are treated (default copy). */
  readonly symlinks?: SymlinkMode;
  /** Adds what only some sessions need (xattrs, access time) to a scanned entry. */
  readonly decorate?: (abs: string, entry: Entry, st: Stats) => Entry;
}

export type SymlinkMode = 'copy' | 'skip' | 'follow';

export interface ScanStats {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** Scoped scans that did not list the root: it holds entries (for the safety check). */
  rootHasEntries?: boolean;
}

export interface ScanResult {
  readonly changes: Change[];
  readonly problems: Problem[];
  readonly warnings: Warning[];
  readonly stats: ScanStats;
}

/** The names in one directory, as read during the crawl. */
type Listing = string[];

export function entryFromStats(path: string, st: Stats, target?: string): Entry | undefined {
  const kind = st.isFile()
    ? 'file'
    : st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : undefined;
  if (kind === undefined) return undefined;
  const e: Entry = {
    path,
    kind,
    size: kind === 'file' ? st.size : 0,
    mtimeMs: st.mtimeMs,
    mode: st.mode & 0o7777,
    ino: st.ino,
    uid: st.uid,
    gid: st.gid,
  };
  return target !== undefined ? { ...e, target } : e;
}

function specialKind(st: Stats): string {
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice()) return 'block device';
  if (st.isCharacterDevice()) return 'character device';
  return 'special file';
}

/**
 * Crawls `root` (or the subtree `start` of it) and returns each readable directory's
 * listing, keyed by relative path, into `listings`.
 */
function crawl(
  root: string,
  problems: Problem[],
  filter?: Filter,
  start = '',
  listings = new Map<string, Listing>(),
): Map<string, Listing> {
  const rootWithSep = root.endsWith('/') ? root : `${root}/`;
  const relOf = (abs: string): string => {
    const a = abs.endsWith('/') ? abs : `${abs}/`;
    return a.length <= rootWithSep.length ? '' : a.slice(rootWithSep.length, -1);
  };
  const readdirSync = ((path: string, options: { withFileTypes: true }) => {
    let ents: Dirent[];
    try {
      ents = nodeFs.readdirSync(path, options);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') {
        problems.push({
          path: relOf(path),
          message: `cannot read directory: ${describeIoError(e)}`,
        });
      }
      throw e;
    }
    listings.set(
      relOf(path),
      ents.map((d) => d.name),
    );
    return ents;
  }) as unknown as FSLike['readdirSync'];
  const fs: FSLike = {
    readdir: nodeFs.readdir,
    readdirSync,
    realpath: nodeFs.realpath,
    realpathSync: nodeFs.realpathSync,
    stat: nodeFs.stat,
    statSync: nodeFs.statSync,
  };
  new fdir({ fs })
    .withRelativePaths()
    .onlyCounts()
    .exclude((name, path) => name === PRIVATE_DIR || (filter?.excluded(relOf(path), true) ?? false))
    .crawl(start === '' ? root : join(root, start))
    .sync();
  return listings;
}

/** True when the root holds nothing but the private directory (or cannot be read). */
function rootIsEmpty(root: string): boolean {
  let dir: nodeFs.Dir | undefined;
  try {
    dir = nodeFs.opendirSync(root);
    for (let d = dir.readSync(); d !== null; d = dir.readSync())
      if (d.name !== PRIVATE_DIR) return false;
    return true;
  } catch {
    return true;
  } finally {
    dir?.closeSync();
  }
}

/**
 * A scoped crawl: lists each scope directory on its own. A scope directory the
 * snapshot does not hold as a synced directory is replaced by its nearest known ancestor,
 * and a directory found in a listed one that the snapshot does not hold is crawled in full:
 * its whole contents are new (or moved there, which detectRenames then pairs up).
 */
function crawlScoped(
  root: string,
  scope: readonly string[],
  snapshot: ScanSource,
  problems: Problem[],
  filter?: Filter,
): Map<string, Listing> {
  const listings = new Map<string, Listing>();
  // An excluded directory (or one below it) is never listed, as in a full crawl.
  const excluded = (dir: string): boolean => {
    for (let d = dir; d !== ''; d = parentOf(d)) if (filter?.excluded(d, true)) return true;
    return false;
  };
  // Perf: one query per directory, however many scope paths share it.
  const knownCache = new Map<string, Map<string, SnapshotRecord>>();
  const known = (dir: string): Map<string, SnapshotRecord> => {
    let m = knownCache.get(dir);
    if (!m) knownCache.set(dir, (m = new Map(snapshot.children(dir).map((r) => [r.path, r]))));
    return m;
  };
  const isKnownDir = (r: SnapshotRecord | undefined): boolean =>
    r?.entry?.kind === 'dir' && r.state === 'synced';
  const dirs = new Set<string>();
  for (let d of scope) {
    while (d !== '' && !isKnownDir(known(parentOf(d)).get(d))) d = parentOf(d);
    dirs.add(d);
  }
  // The root is listed only when in scope (Perf: a root of 20k entries costs a second per
  // pass on a loaded host); otherwise a peek tells whether it still holds anything, which
  // is all the safety check needs. An empty root is listed, so its deletes show.
  if (!dirs.has('') && rootIsEmpty(root)) dirs.add('');
  for (const dir of [...dirs].sort(comparePaths)) {
    if (listings.has(dir) || excluded(dir)) continue;
    let ents: Dirent[];
    try {
      ents = nodeFs.readdirSync(dir === '' ? root : join(root, dir), { withFileTypes: true });
    } catch (e) {
      // Gone or no longer a directory since the event: its parent's listing says so.
      const code = errnoCode(e);
      if (dir !== '' && (code === 'ENOENT' || code === 'ENOTDIR')) continue;
      if (code !== 'ENOENT') {
        problems.push({ path: dir, message: `cannot read directory: ${describeIoError(e)}` });
      }
      continue;
    }
    listings.set(
      dir,
      ents.map((d) => d.name),
    );
    const records = known(dir);
    for (const d of ents) {
      if (!d.isDirectory() || d.name === PRIVATE_DIR) continue;
      const path = joinRel(dir, d.name);
      if (!isKnownDir(records.get(path)) && !listings.has(path))
        if (!filter?.excluded(path, true)) crawl(root, problems, filter, path, listings);
    }
  }
  return listings;
}

export function scanTree(opts: ScanOptions): ScanResult {
  const problems: Problem[] = [];
  const warnings: Warning[] = [];
  const stats: ScanStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const filter = opts.filter;
  const listings = opts.scope
    ? crawlScoped(opts.root, opts.scope, opts.snapshot, problems, filter)
    : crawl(opts.root, problems, filter);
  if (opts.scope && !listings.has('') && !rootIsEmpty(opts.root)) {
    stats.rootHasEntries = true;
  } else if (!listings.has('')) {
    // The root itself could not be read: callers decide (this is a safety halt).
    return { changes: [], problems, warnings, stats };
  }
  const changes: Change[] = [];
  const dirs = [...listings.keys()].sort(comparePaths);
  const follow = new FollowedLinks();
  const seen = new Set(dirs);
  for (let di = 0; di < dirs.length; di++) {
    const dir = dirs[di]!;
    const listing = listings.get(dir)!;
    const current: Entry[] = [];
    const unknown = new Set<string>();
    const absDir = dir === '' ? opts.root : join(opts.root, dir);
    for (const name of listing) {
      if (name === PRIVATE_DIR) continue;
      const path = joinRel(dir, name);
      const abs = join(absDir, name);
      let st: Stats;
      try {
        st = nodeFs.lstatSync(abs);
      } catch (e) {
        // Vanished since the listing: it simply is not there.
        if (errnoCode(e) !== 'ENOENT') {
          problems.push({ path, message: `cannot stat: ${describeIoError(e)}` });
          unknown.add(path);
        }
        continue;
      }
      let target: string | undefined;
      if (st.isSymbolicLink() && opts.symlinks === 'skip') {
        unknown.add(path);
        continue;
      }
      if (st.isSymbolicLink() && opts.symlinks === 'follow') {
        const r = follow.resolve(abs, absDir);
        if (r.kind === 'loop' || r.kind === 'error') {
          problems.push({ path, message: r.message });
          unknown.add(path);
          continue;
        }
        if (r.kind === 'ok') {
          st = r.stats;
          if (st.isDirectory() && !filter?.excluded(path, true)) {
            // The followed directory is crawled under the link's own path.
            crawl(opts.root, problems, filter, path, listings);
            for (const k of listings.keys()) {
              if (!seen.has(k)) {
                seen.add(k);
                dirs.push(k);
              }
            }
          }
        }
      }
      if (filter?.excluded(path, st.isDirectory())) {
        // Neither synced nor deleted: its snapshot record (if any) is left alone.
        unknown.add(path);
        continue;
      }
      if (st.isSymbolicLink()) {
        try {
          target = nodeFs.readlinkSync(abs);
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') {
            problems.push({ path, message: `cannot read link: ${describeIoError(e)}` });
            unknown.add(path);
          }
          continue;
        }
      }
      let e = entryFromStats(path, st, target);
      if (e !== undefined && opts.decorate) e = opts.decorate(abs, e, st);
      if (e === undefined) {
        warnings.push({
          path,
          message: `skipped: ${specialKind(st)} (only files, directories and symbolic links are synced)`,
        });
        unknown.add(path);
        continue;
      }
      if (e.kind === 'file') {
        stats.files++;
        stats.bytes += e.size;
      } else if (e.kind === 'dir') {
        // A directory that could not be listed has no listing, so its children are never
        // diffed and keep their snapshot records.
        stats.dirs++;
      } else stats.symlinks++;
      current.push(e);
    }
    let before = opts.snapshot.children(dir);
    if (unknown.size > 0) before = before.filter((r) => !unknown.has(r.path));
    for (const c of diffChildren(before, current)) {
      // An excluded path is left alone whether or not it is still there: its record stays
      // and its deletion does not propagate (it is in `unknown` only while it exists).
      // Perf: only deletions are checked, the rest were filtered as they were listed.
      if (filter && c.new === null && c.old && filter.excluded(c.path, c.old.kind === 'dir'))
        continue;
      changes.push(c);
    }
  }
  return {
    changes: detectRenames(changes, (p) => opts.snapshot.descendants(p)),
    problems,
    warnings,
    stats,
  };
}
