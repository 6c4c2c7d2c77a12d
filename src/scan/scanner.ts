/**
 * Scans one side's tree and diffs it against that side's snapshot, one directory at a time,
 * as soon as the crawl reads it: nothing of a directory is kept once it is diffed, so the
 * memory of a scan grows with the changes found, not with the tree.
 *
 * fdir drives the crawl. It reads each directory once through an injected fs; that seam
 * hands each directory's listing to the diff, so the scanner sees what fdir leaves out
 * (FIFOs, sockets, devices: skipped with a warning) and which directories could not be read.
 * The children of an unreadable directory are never diffed: nothing below it can look
 * deleted.
 *
 * Each directory is listed and its children lstat'ed in one call into the scan addon
 * (native-list.ts; Perf: a third less time than Node's readdirSync and lstatSync), or, where
 * the addon is not built, synchronously in one batch with Node's fs (Perf: about 2.5 times
 * faster than a promise per file on Node 20), and compared with the snapshot's compact
 * record of that directory (snapshot/dir-record.ts) in place: an unchanged child costs no
 * SQLite row and no object. Only a changed, added or deleted child has its row read. A
 * directory without a record (not rebuilt yet, or an older database) is compared with its
 * rows, as before schema 004.
 */
import * as nodeFs from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import { join } from 'node:path';
import { fdir } from 'fdir';
import type { FSLike } from 'fdir';
import type { Change, SnapshotRecord } from '../core/change.js';
import { detectRenames, diffChildren, mergeByPath } from '../core/change.js';
import type { Entry } from '../core/entry.js';
import { sameLocalState } from '../core/entry.js';
import type { Filter } from '../core/filter.js';
import { PRIVATE_DIR, comparePaths, joinRel, parentOf } from '../core/paths.js';
import type { Problem, Warning } from '../core/problem.js';
import { describeIoError, errnoCode } from '../errors.js';
import type { StoredDirRecord } from '../snapshot/store.js';
import { DirRecordReader } from '../snapshot/dir-record.js';
import { FollowedLinks } from './follow.js';
import type { ListDir, StatListing } from './native-list.js';
import {
  FIELD_ERRNO,
  FIELD_GID,
  FIELD_INO,
  FIELD_MODE,
  FIELD_MTIME_MS,
  FIELD_SIZE,
  FIELD_UID,
  NUMS,
  nativeListDir,
} from './native-list.js';

export interface ScanSource {
  /** Records of the direct children of a directory. */
  children(dir: string): SnapshotRecord[];
  /** Synced entries strictly below a path (for renamed directories). */
  descendants(path: string): Entry[];
  /** The compact record of a directory's children, when the snapshot has one. */
  dirRecord?(dir: string): StoredDirRecord | undefined;
  /** One record (read for the children a compact record shows changed). */
  get?(path: string): SnapshotRecord | undefined;
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
  /**
   * Called about every PROGRESS_EVERY directories with the totals so far, so a display can
   * show that the scan of a huge tree is moving. It must not throw.
   */
  readonly onProgress?: (p: ScanProgress) => void;
  /**
   * One part of a tree split across threads (splitTree): the scan takes items by index
   * from `take` (shared by the threads) until there are none left, and leaves renames to
   * the caller, which merges the parts' changes first (renames may cross parts).
   */
  readonly part?: ScanPart;
  /** List and lstat with Node's fs even where the scan addon is loaded (tests compare both). */
  readonly nodeListing?: boolean;
}

/** A directory of a split tree: listed already (its listing given), or to crawl whole. */
export interface SplitItem {
  readonly dir: string;
  readonly listing?: readonly string[];
}

export interface ScanPart {
  readonly items: readonly SplitItem[];
  /** The index of the next item to scan (each index is handed out once among the threads). */
  take(): number;
}

export interface ScanProgress {
  readonly dirs: number;
  readonly files: number;
  readonly bytes: number;
}

export const PROGRESS_EVERY = 256;

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

/**
 * Receives each directory's listing as soon as the crawl has read it, with the lstat numbers
 * of its names when the scan addon listed it (then the listing is sorted already); null
 * when the addon declined the directory and Node's fs listed it.
 */
type Visit = (dir: string, listing: Listing, nums?: Float64Array | null) => void;

/** What fdir reads of a directory the addon listed: its subdirectories (to crawl) only. */
class ListedDir {
  constructor(readonly name: string) {}
  isFile(): boolean {
    return false;
  }
  isDirectory(): boolean {
    return true;
  }
  isSymbolicLink(): boolean {
    return false;
  }
}

function subdirsOf(listed: StatListing): ListedDir[] {
  const out: ListedDir[] = [];
  const { names, nums } = listed;
  for (let i = 0; i < names.length; i++)
    if ((nums[i * NUMS + FIELD_MODE]! & S_IFMT) === S_IFDIR) out.push(new ListedDir(names[i]!));
  return out;
}

export function entryFromStats(path: string, st: Stats, target?: string): Entry | undefined {
  const type = st.mode & S_IFMT;
  const kind =
    type === S_IFREG ? 'file' : type === S_IFDIR ? 'dir' : type === S_IFLNK ? 'symlink' : undefined;
  if (kind === undefined) return undefined;
  return entryOf(path, kind, st.size, st.mtimeMs, st.mode, st.ino, st.uid, st.gid, target);
}

/** An entry from a child's lstat numbers (from Node's Stats or the scan addon). */
function entryOf(
  path: string,
  kind: Entry['kind'],
  size: number,
  mtimeMs: number,
  mode: number,
  ino: number,
  uid: number,
  gid: number,
  target: string | undefined,
): Entry {
  const e: Entry = {
    path,
    kind,
    size: kind === 'file' ? size : 0,
    mtimeMs,
    mode: mode & 0o7777,
    ino,
    uid,
    gid,
  };
  return target !== undefined ? { ...e, target } : e;
}

// The file types of st_mode, as Node's Stats and the scan addon give it.
const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFBLK, S_IFCHR } = nodeFs.constants;

function specialKind(type: number): string {
  if (type === S_IFIFO) return 'FIFO';
  if (type === S_IFSOCK) return 'socket';
  if (type === S_IFBLK) return 'block device';
  if (type === S_IFCHR) return 'character device';
  return 'special file';
}

/**
 * Crawls `root` (or the subtree `start` of it) and hands each readable directory's listing
 * to `visit` as soon as it is read.
 */
function crawl(
  root: string,
  problems: Problem[],
  visit: Visit,
  filter?: Filter,
  start = '',
  listDir?: ListDir,
): void {
  const rootWithSep = root.endsWith('/') ? root : `${root}/`;
  const relOf = (abs: string): string => {
    const a = abs.endsWith('/') ? abs : `${abs}/`;
    return a.length <= rootWithSep.length ? '' : a.slice(rootWithSep.length, -1);
  };
  const readdirSync = ((path: string, options: { withFileTypes: true }) => {
    const listed = listDir?.(path);
    if (listed) {
      visit(relOf(path), listed.names, listed.nums);
      return subdirsOf(listed);
    }
    const declined = listDir ? null : undefined;
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
    visit(
      relOf(path),
      ents.map((d) => d.name),
      declined,
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
}

/** A tree cut into items for several threads (see splitTree). */
export interface TreeSplit {
  readonly items: SplitItem[];
  /** Names listed while splitting (how big the tree is, at least). */
  readonly names: number;
}

/**
 * Cuts a tree into directories that threads can scan independently: breadth first from the
 * root, each directory listed here becomes an item with its listing (the scan visits just
 * that directory), and the directories not listed yet when it stops are items crawled whole
 * (each with everything below it). It stops once it has `items` items and has seen
 * `minNames` names, or when the tree is listed in full. It skips what a crawl skips (the
 * private directory, excluded directories, links); a directory it cannot read becomes an
 * item to crawl, whose scan reports the problem. Undefined when the root cannot be read
 * (a plain scan reports that).
 *
 * Perf: readdir only (no lstat): a few milliseconds for the first 20,000 names.
 */
export function splitTree(
  root: string,
  opts: { readonly items: number; readonly minNames: number; readonly filter?: Filter },
): TreeSplit | undefined {
  const listed: SplitItem[] = [];
  const queue: string[] = [''];
  let head = 0;
  let names = 0;
  while (head < queue.length) {
    if (listed.length + queue.length - head >= opts.items && names >= opts.minNames) break;
    const dir = queue[head++]!;
    let ents: Dirent[];
    try {
      ents = nodeFs.readdirSync(dir === '' ? root : join(root, dir), { withFileTypes: true });
    } catch {
      if (dir === '') return undefined;
      listed.push({ dir });
      continue;
    }
    names += ents.length;
    listed.push({ dir, listing: ents.map((d) => d.name) });
    for (const d of ents) {
      if (!d.isDirectory() || d.name === PRIVATE_DIR) continue;
      const path = joinRel(dir, d.name);
      if (!excludedDir(opts.filter, path)) queue.push(path);
    }
  }
  for (; head < queue.length; head++) listed.push({ dir: queue[head]! });
  return { items: listed, names };
}

const excludedDir = (f: Filter | undefined, dir: string): boolean =>
  f?.excluded(dir, true) ?? false;

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
        if (!filter?.excluded(path, true))
          crawl(root, problems, (d, l) => listings.set(d, l), filter, path);
    }
  }
  return listings;
}

const KIND_FILE = 1;
const KIND_DIR = 2;
const KIND_SYMLINK = 3;
const KIND_NAMES: readonly (Entry['kind'] | undefined)[] = [undefined, 'file', 'dir', 'symlink'];

export function scanTree(opts: ScanOptions): ScanResult {
  const problems: Problem[] = [];
  const warnings: Warning[] = [];
  const stats: ScanStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const filter = opts.filter;
  const snapshot = opts.snapshot;
  const follow = opts.symlinks === 'follow' ? new FollowedLinks() : undefined;
  // Changes of the directories that have any, keyed by directory; put in path order at the
  // end (inPathOrder), as if the directories had been visited in order.
  const byDir = new Map<string, Change[]>();
  // -n follow only: a directory reached through two links is diffed once.
  const visitedDirs = follow ? new Set<string>() : undefined;
  let rootRead = false;
  let visited = 0;
  // An excluded path is left alone whether or not it is still there: its record stays and
  // its deletion does not propagate (it is in `unknown` only while it exists). Perf: only
  // deletions are checked, the rest were filtered as they were listed.
  const goneExcluded = (path: string, old: Entry | null | undefined): boolean =>
    filter !== undefined &&
    old !== null &&
    old !== undefined &&
    filter.excluded(path, old.kind === 'dir');

  // The addon lists and lstats each directory in one call; not for -n follow and the
  // decorated sessions, which need Node's Stats of every child.
  const listDir =
    opts.symlinks !== 'follow' && !opts.decorate && !opts.nodeListing ? nativeListDir() : undefined;
  const visit: Visit = (dir, given, listedNums) => {
    if (visitedDirs) {
      if (visitedDirs.has(dir)) return;
      visitedDirs.add(dir);
    }
    if (dir === '') rootRead = true;
    if (opts.onProgress && ++visited % PROGRESS_EVERY === 0)
      opts.onProgress({ dirs: visited, files: stats.files, bytes: stats.bytes });
    const absDir = dir === '' ? opts.root : join(opts.root, dir);
    let listing = given;
    let nums = listedNums ?? undefined;
    if (listedNums === undefined && listDir) {
      // Listed without the addon (splitTree's and a scoped scan's listings): listed again
      // by the addon, which lstats as it lists. Where it declines, that listing stands.
      const again = listDir(absDir);
      if (again) ({ names: listing, nums } = again);
    }
    const stored = snapshot.get ? snapshot.dirRecord?.(dir) : undefined;
    const get = (path: string): SnapshotRecord | undefined => snapshot.get?.(path);
    const record = stored ? new DirRecordReader(stored.names, stored.attrs) : undefined;
    // The record is sorted by name; walking the listing in the same order pairs them up.
    if (record && nums === undefined) listing.sort();
    const changes: Change[] = [];
    /** Without a record: every child, diffed against the rows at the end. */
    const current: Entry[] = [];
    const unknown = new Set<string>();
    const gone: string[] = [];
    const goneName = (name: string): void => {
      gone.push(name);
    };
    for (let i = 0; i < listing.length; i++) {
      const name = listing[i]!;
      if (name === PRIVATE_DIR) continue;
      const k = record ? record.seek(name, goneName) : -1;
      const path = joinRel(dir, name);
      // Node's Stats of the child, when Node lstat'ed it (always without the addon, and
      // for a name the addon could not lstat: Node then reports why in its own words).
      let st: Stats | undefined;
      let mode: number, size: number, mtimeMs: number, ino: number, uid: number, gid: number;
      const at = i * NUMS;
      if (nums !== undefined && nums[at + FIELD_ERRNO] === 0) {
        mode = nums[at + FIELD_MODE]!;
        size = nums[at + FIELD_SIZE]!;
        mtimeMs = nums[at + FIELD_MTIME_MS]!;
        ino = nums[at + FIELD_INO]!;
        uid = nums[at + FIELD_UID]!;
        gid = nums[at + FIELD_GID]!;
      } else {
        try {
          // Perf: no exception (with its stack) for a file that vanished since the listing.
          st = nodeFs.lstatSync(`${absDir}/${name}`, { throwIfNoEntry: false });
        } catch (e) {
          problems.push({ path, message: `cannot stat: ${describeIoError(e)}` });
          unknown.add(path);
          continue;
        }
        if (st === undefined) {
          // Vanished since the listing: it simply is not there.
          if (k >= 0) gone.push(name);
          continue;
        }
        ({ mode, size, mtimeMs, ino, uid, gid } = st);
      }
      let type = mode & S_IFMT;
      let target: string | undefined;
      if (type === S_IFLNK && opts.symlinks === 'skip') {
        unknown.add(path);
        continue;
      }
      if (follow && type === S_IFLNK) {
        const abs = `${absDir}/${name}`;
        const r = follow.resolve(abs, absDir);
        if (r.kind === 'loop' || r.kind === 'error') {
          problems.push({ path, message: r.message });
          unknown.add(path);
          continue;
        }
        if (r.kind === 'ok') {
          st = r.stats;
          ({ mode, size, mtimeMs, ino, uid, gid } = st);
          type = mode & S_IFMT;
          // The followed directory is crawled under the link's own path.
          if (type === S_IFDIR && !filter?.excluded(path, true))
            crawl(opts.root, problems, visit, filter, path);
        }
      }
      if (filter?.excluded(path, type === S_IFDIR)) {
        // Neither synced nor deleted: its snapshot record (if any) is left alone.
        unknown.add(path);
        continue;
      }
      const kind =
        type === S_IFREG
          ? KIND_FILE
          : type === S_IFDIR
            ? KIND_DIR
            : type === S_IFLNK
              ? KIND_SYMLINK
              : 0;
      if (kind === 0) {
        warnings.push({
          path,
          message: `skipped: ${specialKind(type)} (only files, directories and symbolic links are synced)`,
        });
        unknown.add(path);
        continue;
      }
      if (kind === KIND_SYMLINK) {
        try {
          target = nodeFs.readlinkSync(`${absDir}/${name}`);
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') {
            problems.push({ path, message: `cannot read link: ${describeIoError(e)}` });
            unknown.add(path);
          } else if (k >= 0) gone.push(name);
          continue;
        }
      }
      if (kind !== KIND_FILE) size = 0;
      if (kind === KIND_FILE) {
        stats.files++;
        stats.bytes += size;
      } else if (kind === KIND_DIR) {
        // A directory that could not be listed is never visited, so its children are
        // never diffed and keep their snapshot records.
        stats.dirs++;
      } else stats.symlinks++;
      // Perf: the common case of a rescan, decided without an object (links and xattrs,
      // which the record does not hold, take the row path below).
      const unchanged =
        k >= 0 &&
        target === undefined &&
        record!.same(k, kind, size, mtimeMs, mode & 0o7777, ino, uid, gid);
      if (unchanged && !opts.decorate) continue;
      let e = entryOf(path, KIND_NAMES[kind]!, size, mtimeMs, mode, ino, uid, gid, target);
      // With a decorator the addon is not used (see listDir below), so Node's Stats is here.
      if (opts.decorate) e = opts.decorate(`${absDir}/${name}`, e, st!);
      if (!record) {
        current.push(e);
        continue;
      }
      if (unchanged && e.xattrs === undefined) continue;
      const r = k >= 0 ? get(path) : undefined;
      if (r === undefined) changes.push({ path, old: null, new: e });
      else if (r.entry === null || r.state !== 'synced' || !sameLocalState(r.entry, e))
        changes.push({ path, old: r.entry, new: e });
    }
    if (record) {
      record.rest(goneName);
      for (const name of gone) {
        const r = get(joinRel(dir, name));
        // A record that was never synced and is gone now still yields a change, so that
        // its row is dropped.
        if (r && !goneExcluded(r.path, r.entry))
          changes.push({ path: r.path, old: r.entry, new: null });
      }
    } else {
      let before = snapshot.children(dir);
      if (unknown.size > 0) before = before.filter((r) => !unknown.has(r.path));
      for (const c of diffChildren(before, current))
        if (c.new !== null || !goneExcluded(c.path, c.old)) changes.push(c);
    }
    if (changes.length > 0) byDir.set(dir, changes);
  };

  if (opts.part) {
    const { items, take } = opts.part;
    for (let i = take(); i < items.length; i = take()) {
      const item = items[i]!;
      if (item.listing) visit(item.dir, [...item.listing]);
      else crawl(opts.root, problems, visit, filter, item.dir, listDir);
    }
    // splitTree read the root, which one of the parts visits; renames are the caller's.
    return { changes: inPathOrder(byDir), problems, warnings, stats };
  }
  if (opts.scope) {
    const listings = crawlScoped(opts.root, opts.scope, snapshot, problems, filter);
    if (!listings.has('') && !rootIsEmpty(opts.root)) stats.rootHasEntries = true;
    for (const dir of [...listings.keys()].sort(comparePaths)) visit(dir, listings.get(dir)!);
    if (stats.rootHasEntries) rootRead = true;
  } else {
    crawl(opts.root, problems, visit, filter, '', listDir);
  }
  if (!rootRead) {
    // The root itself could not be read: callers decide (this is a safety halt).
    return { changes: [], problems, warnings, stats };
  }
  return {
    changes: detectRenames(inPathOrder(byDir), (p) => snapshot.descendants(p)),
    problems,
    warnings,
    stats,
  };
}

/**
 * The scans of the parts of one split tree as the one scan of the whole: changes merged in
 * comparePaths order (each part's are in that order), then renames detected across them;
 * problems and warnings in path order, stats summed.
 */
export function joinParts(
  parts: readonly ScanResult[],
  descendants: (path: string) => Entry[],
): ScanResult {
  // No path is in two parts: each directory was visited by one of them.
  let changes: Change[] = [];
  for (const p of parts) {
    const merged: Change[] = [];
    mergeByPath(changes, p.changes, (i, j) => merged.push(i >= 0 ? changes[i]! : p.changes[j]!));
    changes = merged;
  }
  const byPathOf = <T extends { path: string }>(a: T, b: T): number => comparePaths(a.path, b.path);
  const stats: ScanStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  for (const p of parts) {
    stats.files += p.stats.files;
    stats.dirs += p.stats.dirs;
    stats.symlinks += p.stats.symlinks;
    stats.bytes += p.stats.bytes;
  }
  return {
    changes: detectRenames(changes, descendants),
    problems: parts.flatMap((p) => p.problems).sort(byPathOf),
    warnings: parts.flatMap((p) => p.warnings).sort(byPathOf),
    stats,
  };
}

/** Code-unit order, which is comparePaths order for paths in one directory. */
const byPath = (a: Change, b: Change): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * The changes of every directory as one list in comparePaths order: each directory's
 * changes sorted by name, with the changes below a subdirectory right after the
 * subdirectory (a depth-first walk over the directories that hold changes).
 *
 * Perf: reconcile and the content check sort by path; V8's sort finds a sorted list in one
 * pass, so a reset's million changes cost them no sort. Iterative: a tree may be deeper
 * than the stack.
 */
function inPathOrder(byDir: Map<string, Change[]>): Change[] {
  // The directories that hold changes, or lead to one that does, listed under their
  // parent. Registered on the way up from each directory in comparePaths order, so a
  // parent's list is in that order too: a subdirectory joins it with the first directory
  // at or below it.
  const subdirs = new Map<string, string[]>();
  const linked = new Set<string>(['']);
  for (const dir of [...byDir.keys()].sort(comparePaths)) {
    for (let d = dir; !linked.has(d); d = parentOf(d)) {
      linked.add(d);
      const parent = parentOf(d);
      const list = subdirs.get(parent);
      if (list) list.push(d);
      else subdirs.set(parent, [d]);
    }
  }
  const out: Change[] = [];
  interface Frame {
    readonly kids: Change[];
    i: number;
    readonly subs: string[];
    j: number;
  }
  const frame = (dir: string): Frame => ({
    kids: byDir.get(dir)?.sort(byPath) ?? [],
    i: 0,
    subs: subdirs.get(dir) ?? [],
    j: 0,
  });
  const stack: Frame[] = [frame('')];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const sub = f.subs[f.j];
    const kid = f.kids[f.i];
    if (sub !== undefined && (kid === undefined || sub < kid.path)) {
      // A subdirectory with changes below it but none of its own here.
      f.j++;
      stack.push(frame(sub));
    } else if (kid !== undefined) {
      f.i++;
      out.push(kid);
      if (sub === kid.path) {
        f.j++;
        stack.push(frame(sub));
      }
    } else {
      stack.pop();
    }
  }
  return out;
}
