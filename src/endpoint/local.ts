/**
 * LocalEndpoint serves a directory on this host: its scans, its snapshot database, its
 * transfer cache and its placements. The local side of every session is one; so is the
 * peer when -r is a plain path; the daemon drives one per session on the server side.
 *
 * Placement (STYLE principle 7): file data is written into the transfer cache
 * `<dir>/.private-asp/<name>/cache/`, each piece verified against the sender's digest by the
 * worker that writes it, metadata set on the cached file, the target re-checked, and only
 * then renamed into place. A final path never holds a partial file.
 *
 * Big files (more than one piece) are staged in the partial store instead
 * (`<dir>/.private-asp/<name>/partial/`, endpoint/partial-store.ts), which survives the run:
 * each piece is made durable and then marked in a manifest, so an interrupted file resumes
 * from the pieces already held (resumable(), pieceDigests(), SegmentData.skip).
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import type { Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { PathState, SnapshotRecord } from '../core/change.js';
import type { Entry } from '../core/entry.js';
import { sameLocalState, withDigest } from '../core/entry.js';
import type { Filter } from '../core/filter.js';
import { compileFilter } from '../core/filter.js';
import type { Op } from '../core/plan.js';
import {
  PRIVATE_DIR,
  comparePaths,
  depthOf,
  isWithin,
  parentOf,
  unsafeRelPathReason,
} from '../core/paths.js';
import type { Problem } from '../core/problem.js';
import { SessionError, describeIoError, errnoCode } from '../errors.js';
import type { XXHashAPI } from 'xxhash-wasm';
import { CHUNK_SIZE, combineDigests, loadHasher } from '../hash/digest.js';
import type { CreateMeta, StagedStat, WorkPool, WriteItem } from '../hash/pool.js';
import { nativeIo } from '../hash/native-io.js';
import { listTree } from '../scan/list.js';
import { decorator } from '../scan/decorate.js';
import type { ScanThreads } from '../scan/scan-thread.js';
import { defaultScanThreads, threadMinEntries } from '../scan/scan-thread.js';
import type { ScanProgress } from '../scan/scanner.js';
import { entryFromStats } from '../scan/scanner.js';
import { SessionLock } from '../snapshot/lock.js';
import { SnapshotStore } from '../snapshot/store.js';
import type { Segment } from '../transfer/batches.js';
import { isChunked } from '../transfer/batches.js';
import type {
  ApplyResult,
  ChangeHint,
  DataBatch,
  Endpoint,
  FinishOptions,
  HashReply,
  Pacer,
  PieceDigests,
  PieceRequest,
  PlaceResult,
  Prepared,
  RecordUpdate,
  ResumeOffer,
  ScanReply,
  ScanScope,
  SegmentData,
  SessionIdentity,
  SessionSpec,
  WatchHandle,
} from './endpoint.js';
import { watchFileDeletion, watchTree } from '../watch/watcher.js';
import { PartialStore } from './partial-store.js';
import type { XattrSelection } from './xattrs.js';
import { readXattrs, writeXattrs } from './xattrs.js';

/** A file being received: its segments may arrive in any order, on several lanes. */
interface Inbound {
  readonly cache: string;
  readonly pieces: (readonly string[])[];
  got: number;
  failed: string | undefined;
  vanished: boolean;
  /** A big file staged in the partial store (kept across runs) rather than the cache. */
  readonly partial: boolean;
  /** Some pieces came from an earlier run: the whole file is re-hashed before placing. */
  readonly resumed: boolean;
  /** Set when a worker created the cached file whole, with its metadata (see WriteItem). */
  staged?: StagedStat;
  /** The worker also renamed it into place (see WriteItem.placeAt). */
  placed?: boolean;
  /** The file's digest, when the worker that created it whole computed it. */
  digest?: string;
}

/**
 * Sets a path's access and modification times (ms since the epoch; `isLink`: a symbolic
 * link's own): to the nanosecond through the io addon (hash/native-io.ts), else with Node's
 * utimes, which takes seconds in a double (Node 20 then truncates them to microseconds).
 */
function setTimes(abs: string, atimeMs: number, mtimeMs: number, isLink: boolean): void {
  const io = nativeIo();
  if (io) io.setTimes(abs, atimeMs, mtimeMs, isLink);
  else (isLink ? lutimesSync : utimesSync)(abs, atimeMs / 1000, mtimeMs / 1000);
}

export interface LocalEndpointOptions {
  /** Where this endpoint's scans run (--scan-threads); default: the process's threads. */
  readonly scanThreads?: ScanThreads;
  /** Hears the progress of this endpoint's full scans (a display on huge trees). */
  readonly onScanProgress?: (p: ScanProgress) => void;
}

/**
 * The transfer cache is split into this many directories, one per batch in turn. Perf:
 * creating and renaming files takes the directory's lock, so workers writing batches into
 * one shared directory wait for each other (measured: 140 µs per create instead of ~40).
 */
const CACHE_SHARDS = 16;
/** A snapshot file holds ~140 bytes per entry (rows and records: 43 MB for 306k entries). */
const RESET_BYTES_PER_ENTRY = 140;

const META_KEYS: Record<keyof SessionIdentity, string> = {
  name: 'name',
  localDir: 'local_dir',
  remoteDir: 'remote_dir',
  remoteHost: 'remote_host',
  direction: 'direction',
};

export class LocalEndpoint implements Endpoint {
  readonly label: string;
  private spec: SessionSpec | undefined;
  private root = '';
  private dbPath = '';
  private sessionDir = '';
  private cacheDir = '';
  private partials: PartialStore | undefined;
  private store: SnapshotStore | undefined;
  /**
   * A reset's estimate of how many entries the snapshot it dropped held (its file size over
   * RESET_BYTES_PER_ENTRY), for the first scan's choice of a thread: an emptied snapshot
   * says nothing of the tree's size, the dropped file does. Cleared by that scan.
   */
  private droppedEntries = 0;
  private lock: SessionLock | undefined;
  private readonly inbound = new Map<string, Inbound>();
  private cacheSeq = 0;
  private batchSeq = 0;
  /** Directories whose contents or metadata this run changed; settle() records them. */
  private readonly touchedDirs = new Set<string>();
  private hasher: XXHashAPI | undefined;
  private filter: Filter | undefined;
  /** Absolute keep directory (--keep-dir-*), when deletes are moves. */
  private keepDir: string | undefined;
  /** --dry-run: the temporary copy of the snapshot this run reads (and may scribble on). */
  private dryDir: string | undefined;
  /** --dry-run with --create-dir and no directory yet: scans as an empty tree. */
  private virtual = false;
  /**
   * Directories known to exist at the receiver during the placement of file data (Perf:
   * one lstat per directory instead of one per file). Cleared whenever apply() may have
   * moved or removed directories; a stale entry only costs a retry in place().
   */
  private readonly knownDirs = new Set<string>();

  constructor(
    private readonly pool: WorkPool,
    label: 'local' | 'peer',
    private readonly opts: LocalEndpointOptions = {},
  ) {
    this.label = label;
  }

  // --- session ----------------------------------------------------------------------------

  async prepare(spec: SessionSpec): Promise<Prepared> {
    this.spec = spec;
    const which = spec.role === 'local' ? 'Local' : 'Remote';
    const code = spec.role === 'local' ? 'ERR_LOCAL_DIR' : 'ERR_REMOTE_DIR';
    const dir = resolve(spec.dir);
    this.filter = compileFilter(spec.filters ?? []);
    this.virtual = false;
    if (spec.mountSignature !== undefined) {
      const sig = isAbsolute(spec.mountSignature)
        ? spec.mountSignature
        : join(dir, spec.mountSignature);
      if (!existsSync(sig)) {
        throw new SessionError(
          'ERR_MOUNT_SIGNATURE',
          `${which} mount signature ${sig} is missing: the ${which.toLowerCase()} file system may not be mounted. Nothing was synced.`,
          `Mount the file system that holds ${spec.dir}, or create the signature file there if it is the right directory.`,
        );
      }
    }
    let st: Stats | undefined;
    try {
      st = statSync(dir);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') {
        throw new SessionError(
          code,
          `${which} directory ${spec.dir} cannot be used: ${describeIoError(e)}.`,
        );
      }
    }
    if (st === undefined) {
      if (!spec.createDir) {
        throw new SessionError(
          code,
          `${which} directory ${spec.dir} does not exist.`,
          'Create it, or pass --create-dir to have async create it.',
        );
      }
      try {
        if (spec.dryRun) this.virtual = true;
        else mkdirSync(dir, { recursive: true });
      } catch (e) {
        throw new SessionError(
          code,
          `Cannot create ${which.toLowerCase()} directory ${spec.dir}: ${describeIoError(e)}.`,
        );
      }
    } else if (!st.isDirectory()) {
      throw new SessionError(code, `${which} directory ${spec.dir} is not a directory.`);
    }
    this.root = this.virtual ? dir : realpathSync(dir);
    if (spec.keepDir !== undefined) this.keepDir = this.checkKeepDir(spec.keepDir, which);
    const dbDir = spec.dbDir !== undefined ? resolve(spec.dbDir) : this.root;
    if (spec.dbDir !== undefined) {
      if (!existsSync(dbDir) || !statSync(dbDir).isDirectory()) {
        throw new SessionError(
          'ERR_DB_LOCATION',
          `Database directory ${spec.dbDir} does not exist or is not a directory.`,
          'Create it first; it must be on a local file system.',
        );
      }
      const realDb = realpathSync(dbDir);
      if (isWithin(realDb, this.root) && realDb !== this.root) {
        throw new SessionError(
          'ERR_DB_LOCATION',
          `Database directory ${spec.dbDir} is inside the synced directory ${spec.dir}.`,
          'Put it outside the synced tree, or leave -b/-B out to keep it in .private-asp.',
        );
      }
    }
    const name = spec.identity.name;
    this.sessionDir = join(
      spec.dbDir !== undefined ? realpathSync(dbDir) : this.root,
      PRIVATE_DIR,
      name,
    );
    this.dbPath = join(this.sessionDir, 'snap.db');
    this.cacheDir = join(this.root, PRIVATE_DIR, name, 'cache');
    this.partials = new PartialStore(join(this.root, PRIVATE_DIR, name, 'partial'), this.pool);
    return { dir: this.root, dbPath: this.dbPath, dbExisted: existsSync(this.dbPath) };
  }

  /**
   * A keep directory must be outside the synced tree (else what is moved there would sync
   * or be moved again) and on the same file system (a move must be a rename, not a copy).
   */
  private checkKeepDir(keep: string, which: string): string {
    const abs = resolve(keep);
    let cur = abs;
    while (!existsSync(cur)) cur = dirname(cur);
    const real = join(realpathSync(cur), abs.slice(cur.length));
    const opt = which === 'Local' ? '--keep-dir-local' : '--keep-dir-remote';
    if (isWithin(real, this.root) || real === this.root) {
      throw new SessionError(
        'ERR_KEEP_DIR',
        `${opt} ${keep} is inside the synced directory ${this.root}.`,
        'Give a keep directory outside the synced tree, on the same file system.',
      );
    }
    if (!this.virtual && statSync(cur).dev !== statSync(this.root).dev) {
      throw new SessionError(
        'ERR_KEEP_DIR',
        `${opt} ${keep} is on another file system than ${this.root}: deleted files could not be moved there, only copied.`,
        'Give a keep directory on the same file system as the synced directory.',
      );
    }
    return real;
  }

  async open(opts: { readonly reset: boolean }): Promise<void> {
    const spec = this.need();
    if (spec.dryRun) return this.openDry(opts);
    if (this.keepDir !== undefined) mkdirSync(this.keepDir, { recursive: true });
    mkdirSync(this.sessionDir, { recursive: true, mode: 0o700 });
    this.lock = SessionLock.acquire(
      join(this.sessionDir, 'lock'),
      `Session '${spec.identity.name}' (${this.dbPath})`,
    );
    try {
      if (opts.reset) {
        let bytes = 0;
        for (const suffix of ['', '-wal', '-shm']) {
          bytes += suffix === '-shm' ? 0 : (lstatOrNull(this.dbPath + suffix)?.size ?? 0);
          rmSync(this.dbPath + suffix, { force: true });
        }
        this.droppedEntries = Math.floor(bytes / RESET_BYTES_PER_ENTRY);
      }
      const existed = existsSync(this.dbPath);
      this.store = SnapshotStore.open(this.dbPath, { create: true });
      if (existed) this.checkIdentity(this.store, spec.identity);
      const now = new Date().toISOString();
      const meta: Record<string, string> = {
        role: spec.role,
        condition: 'running',
        last_start: now,
        pid: String(process.pid),
        checksum: 'xxh64',
      };
      if (!existed) {
        meta.created = now;
        for (const [k, col] of Object.entries(META_KEYS))
          meta[col] = spec.identity[k as keyof SessionIdentity];
      }
      this.store.setMeta(meta);
      this.hasher = await loadHasher();
      // Whatever a killed run left in the transfer cache is incomplete by definition.
      rmSync(this.cacheDir, { recursive: true, force: true });
      mkdirSync(this.cacheDir, { recursive: true, mode: 0o700 });
      // Partial big files are kept for resuming, except by a reset, which starts over.
      if (opts.reset) this.partials!.clear();
      this.partials!.open(Date.now());
      for (let i = 0; i < CACHE_SHARDS; i++)
        mkdirSync(join(this.cacheDir, String(i)), { mode: 0o700 });
    } catch (e) {
      this.store?.close();
      this.store = undefined;
      this.lock.release();
      this.lock = undefined;
      throw e;
    }
  }

  /**
   * --dry-run: nothing of this side may change, its database included. The run reads a
   * temporary copy of the snapshot (a fresh one when there is none, or with --reset), so
   * every read path stays the same and the real file is never opened for writing. A live
   * run holding the lock makes the dry run refuse, like any second run.
   */
  private async openDry(opts: { readonly reset: boolean }): Promise<void> {
    const spec = this.need();
    const lockPath = join(this.sessionDir, 'lock');
    if (existsSync(lockPath) && SessionLock.isHeld(lockPath)) {
      throw new SessionError(
        'ERR_SESSION_BUSY',
        `Session '${spec.identity.name}' (${this.dbPath}) is in use by another run (pid ${SessionLock.owner(lockPath) ?? '?'}).`,
        'Wait for it to finish, then run the dry run again.',
      );
    }
    this.dryDir = mkdtempSync(join(tmpdir(), 'async-dry-run-'));
    const copy = join(this.dryDir, 'snap.db');
    const existed = !opts.reset && existsSync(this.dbPath);
    if (existed) {
      copyFileSync(this.dbPath, copy);
      if (existsSync(`${this.dbPath}-wal`)) copyFileSync(`${this.dbPath}-wal`, `${copy}-wal`);
    }
    this.store = SnapshotStore.open(copy, { create: true });
    if (existed) this.checkIdentity(this.store, spec.identity);
    this.hasher = await loadHasher();
  }

  private checkIdentity(store: SnapshotStore, id: SessionIdentity): void {
    const stored = (k: keyof SessionIdentity): string => store.getMeta(META_KEYS[k]) ?? '';
    const reset =
      'Run with -x/--reset to rebuild both snapshots, or use a new database directory (-b/-B).';
    for (const k of ['localDir', 'remoteDir', 'remoteHost'] as const) {
      if (stored(k) !== id[k]) {
        const what = {
          localDir: 'local directory',
          remoteDir: 'remote directory',
          remoteHost: 'peer host',
        }[k];
        throw new SessionError(
          'ERR_DB_IDENTITY',
          `Session '${id.name}' in ${this.dbPath} belongs to ${what} '${stored(k)}', not '${id[k]}'.`,
          `Use another session name (-N) for this pair of directories. ${reset}`,
        );
      }
    }
    if (stored('direction') !== id.direction) {
      throw new SessionError(
        'ERR_DB_DIRECTION',
        `Session '${id.name}' was run with direction ${stored('direction')}; this run asks for ${id.direction} (${this.dbPath}).`,
        reset,
      );
    }
  }

  private threads(): ScanThreads {
    return this.opts.scanThreads ?? defaultScanThreads;
  }

  async finish(opts: FinishOptions): Promise<void> {
    if (this.dryDir !== undefined) {
      this.store?.close();
      this.store = undefined;
      rmSync(this.dryDir, { recursive: true, force: true });
      this.dryDir = undefined;
      return;
    }
    try {
      if (this.store) {
        // Perf: many records to read back from rows (a big run on a snapshot that was not
        // empty) are rebuilt in a thread, the other side's at the same time; close() would
        // rebuild them here, one side after the other. An empty snapshot's records were
        // built from the run's puts and are written here (SnapshotStore `built`).
        // A failure (a full disk) leaves them missing, as close() would: the meta flag says
        // so, and the next open for writing rebuilds them.
        await this.threads()
          .rebuildRecords(this.store)
          .catch(() => undefined);
        this.store.setMeta({
          condition: 'stopped',
          last_stop: new Date().toISOString(),
          last_status: opts.status,
        });
        this.store.checkpoint();
        this.store.close();
      }
      rmSync(this.cacheDir, { recursive: true, force: true });
      if (opts.status !== 'failed') this.partials?.pruneUntouched();
    } finally {
      this.store = undefined;
      this.lock?.release();
      this.lock = undefined;
    }
  }

  // --- scanning ---------------------------------------------------------------------------

  async scan(scope?: ScanScope): Promise<ScanReply> {
    const store = this.db();
    for (const d of scope?.dirs ?? []) if (d !== '') this.checkPath(d);
    const spec = this.need();
    // Full scans only: a scoped pass (continuous mode) must not walk the whole snapshot.
    if (spec.cleanExcluded && this.filter && !scope) {
      const drop: string[] = [];
      for (const r of store.iterate())
        if (this.excludedPath(r.path, r.entry?.kind === 'dir')) drop.push(r.path);
      store.write(() => drop.forEach((p) => store.remove(p)));
    }
    if (this.virtual) {
      const snapshotSize = store.size();
      return {
        changes: [],
        problems: [],
        warnings: [],
        stats: { files: 0, dirs: 0, symlinks: 0, bytes: 0 },
        snapshotSize,
      };
    }
    // The records of what the last run wrote are rebuilt before the scan reads them.
    await this.threads().rebuildRecords(store);
    const sel = this.xattrSel();
    const onProgress = scope ? undefined : this.opts.onScanProgress;
    // Whether a thread pays needs only a bounded count; the exact one (a full pass over
    // the table: ~0.3 s at 1M rows with a cold cache) is taken while the thread scans.
    const atLeast = Math.max(store.sizeUpTo(threadMinEntries()), this.droppedEntries);
    this.droppedEntries = 0;
    const scanning = this.threads()
      .scan(
        {
          root: this.root,
          dbPath: store.path,
          driver: store.driver,
          ...(scope ? { scope: scope.dirs } : {}),
          ...(spec.filters && spec.filters.length > 0 ? { filters: spec.filters } : {}),
          ...(spec.symlinks ? { symlinks: spec.symlinks } : {}),
          decorate: {
            ...(sel ? { xattrs: sel } : {}),
            atime: spec.placement.preserveAtime === true,
          },
        },
        // A scoped pass (continuous mode) lists a few directories: a thread would not pay.
        scope ? 0 : atLeast,
        store,
        onProgress,
      )
      .catch((e: unknown) => {
        // A scan thread opens the database by name: a vanished root or database is the
        // news then, not the failure to open it.
        this.checkRootPresent();
        if (!spec.dryRun) this.checkDbPresent();
        throw e;
      });
    let snapshotSize: number;
    try {
      snapshotSize = store.size();
    } catch (e) {
      await scanning.catch(() => undefined); // settled, so its failure is not left unhandled
      throw e;
    }
    const res = await scanning;
    // A vanished root takes its database with it: the safety halt is the message that helps.
    this.checkRootPresent();
    if (!spec.dryRun) this.checkDbPresent();
    // Re-hash only what changed (STYLE principle 5): a file whose size is unchanged but
    // whose mtime or inode moved may hold the same bytes; its digest tells.
    const rehash = res.changes.filter(
      (c) =>
        c.old?.kind === 'file' &&
        c.new?.kind === 'file' &&
        c.old.digest !== undefined &&
        c.old.size === c.new.size &&
        c.from === undefined,
    );
    if (rehash.length > 0) {
      const digests = await this.hash(rehash.map((c) => c.new!));
      const byPath = new Map(rehash.map((c, i) => [c.path, digests[i]!]));
      for (let i = 0; i < res.changes.length; i++) {
        const c = res.changes[i]!;
        const d = byPath.get(c.path);
        if (d?.ok && c.new) res.changes[i] = { ...c, new: withDigest(c.new, d.digest) };
      }
    }
    const resolutions = store.resolutions();
    return { ...res, snapshotSize, ...(resolutions.length > 0 ? { resolutions } : {}) };
  }

  async watch(onHints: (hints: readonly ChangeHint[]) => void): Promise<WatchHandle> {
    this.need();
    const tree = await watchTree(this.root, onHints);
    // The database lives outside the watched tree (.private-asp is ignored, -b may be
    // elsewhere): its deletion is watched on its own, so an idle session notices it.
    const db = await watchFileDeletion(this.dbPath, () =>
      onHints([{ kind: 'rescan', reason: 'the snapshot database was deleted' }]),
    );
    return {
      close: async () => {
        await Promise.all([tree.close(), db.close()]);
      },
    };
  }

  async list(path: string): Promise<Entry[]> {
    this.checkPath(path);
    const store = this.db();
    // Reuse the snapshot's digest where the file is as it was recorded.
    const spec = this.need();
    const decorate = this.decorator();
    const opts = {
      ...(this.filter ? { filter: this.filter } : {}),
      ...(spec.symlinks ? { symlinks: spec.symlinks } : {}),
    };
    return listTree(this.root, path, opts).map((e0) => {
      const e = decorate && e0.kind !== 'symlink' ? decorate(this.abs(e0.path), e0) : e0;
      const r = store.get(e.path);
      return r?.entry &&
        r.state === 'synced' &&
        sameLocalState(r.entry, e) &&
        r.entry.digest !== undefined
        ? withDigest(e, r.entry.digest)
        : e;
    });
  }

  async hash(entries: readonly Entry[]): Promise<HashReply[]> {
    const files = entries.map((e) => {
      this.checkPath(e.path);
      return {
        abs: this.readable(e.path),
        expect: { size: e.size, mtimeMs: e.mtimeMs, ino: e.ino },
      };
    });
    const out: HashReply[] = [];
    // Batches of 64 files keep both workers busy without one huge task.
    const tasks: Promise<void>[] = [];
    for (let i = 0; i < files.length; i += 64) {
      const at = i;
      tasks.push(
        this.pool.hash(files.slice(i, i + 64)).then((res) => {
          res.forEach(
            (r, j) =>
              (out[at + j] = r.ok
                ? { ok: true, digest: r.digest }
                : { ok: false, message: r.message }),
          );
        }),
      );
    }
    await Promise.all(tasks);
    return out;
  }

  // --- sending ----------------------------------------------------------------------------

  async read(segments: readonly Segment[]): Promise<DataBatch> {
    const files = segments.filter((s) => s.entry.kind === 'file');
    for (const s of segments) this.checkPath(s.entry.path);
    const reply =
      files.length > 0
        ? await this.pool.read(
            files.map((s) => ({
              abs: this.readable(s.entry.path),
              offset: s.offset,
              length: s.length,
              // The entry is what the file must still be (size, mtimeMs, ino): no copy.
              expect: s.entry,
            })),
          )
        : { data: new Uint8Array(0), outcomes: [] };
    let k = 0;
    const out: SegmentData[] = segments.map((s) => {
      const { entry, offset, length, index, count } = s;
      if (entry.kind !== 'file')
        return { entry, offset, length, index, count, start: 0, pieces: [] };
      const o = reply.outcomes[k++]!;
      return o.ok
        ? { entry, offset, length, index, count, start: o.start, pieces: o.pieces }
        : {
            entry,
            offset,
            length,
            index,
            count,
            start: 0,
            pieces: [],
            error: o.message,
            vanished: o.vanished,
          };
    });
    return { data: reply.data, segments: out };
  }

  // --- receiving --------------------------------------------------------------------------

  async write(batch: DataBatch, pace?: Pacer): Promise<PlaceResult[]> {
    // In process there is no wire: the batch is charged whole, before it is written.
    if (pace) await pace(batch.data.byteLength);
    const shard = this.batchSeq++ % CACHE_SHARDS;
    const items: WriteItem[] = [];
    const itemSegs: SegmentData[] = [];
    // Each segment's inbound state, by index (Perf: one lookup of the path per segment).
    const inbs: (Inbound | undefined)[] = new Array(batch.segments.length);
    const itemInbs: Inbound[] = [];
    const results: PlaceResult[] = [];
    for (let k = 0; k < batch.segments.length; k++) {
      const s = batch.segments[k]!;
      const path = s.entry.path;
      const bad = unsafeRelPathReason(path);
      if (bad !== undefined || path === '') {
        results.push({ path, ok: false, message: `refused path: ${bad ?? 'empty'}`, retry: false });
        continue;
      }
      // A file in one piece is created, given its metadata and often placed by the worker
      // that writes it (see wholeFile()); every other file is created here.
      const whole: Pick<WriteItem, 'create' | 'placeAt'> =
        s.entry.kind === 'file' && s.count === 1 && s.error === undefined ? this.wholeFile(s) : {};
      let inb = this.inbound.get(path);
      if (!inb) {
        inb = isChunked(s.entry)
          ? this.inboundPartial(s)
          : {
              // Perf: not path.join (cacheDir is already normalized), once per file.
              cache: `${this.cacheDir}/${shard}/${++this.cacheSeq}.part`,
              pieces: new Array(s.count),
              got: 0,
              failed: undefined,
              vanished: false,
              partial: false,
              resumed: false,
            };
        this.inbound.set(path, inb);
        // Created here, before any worker writes a piece: pieces of one file may be written
        // by several workers at once, at their own offsets.
        if (s.entry.kind === 'file' && !inb.partial && whole.create === undefined)
          writeFileSync(inb.cache, '', { mode: 0o600, flag: 'wx' });
      }
      inbs[k] = inb;
      if (s.error !== undefined) {
        inb.failed ??= s.error;
        inb.vanished ||= s.vanished === true;
        inb.got++;
        continue;
      }
      if (s.entry.kind !== 'file') continue;
      items.push({
        abs: inb.cache,
        offset: s.offset,
        start: s.start,
        length: s.length,
        pieces: s.pieces,
        // Perf: fields, not a spread (an object of its own shape per file).
        create: whole.create,
        placeAt: whole.placeAt,
      });
      itemSegs.push(s);
      itemInbs.push(inb);
    }
    const outcomes = items.length > 0 ? await this.pool.write(batch.data, items) : [];
    const marks = new Map<string, { index: number; digest: string }[]>();
    outcomes.forEach((o, i) => {
      const s = itemSegs[i]!;
      const inb = itemInbs[i]!;
      inb.got++;
      if (o.ok) {
        inb.pieces[s.index] = s.pieces;
        if (inb.partial) {
          const list = marks.get(s.entry.path) ?? [];
          s.pieces.forEach((digest, k) => list.push({ index: s.offset / CHUNK_SIZE + k, digest }));
          marks.set(s.entry.path, list);
        }
        if (o.staged) inb.staged = o.staged;
        if (o.placed) inb.placed = true;
        if (o.digest !== undefined) inb.digest = o.digest;
      } else inb.failed ??= o.message;
    });
    // The workers verified and wrote these pieces: only now are they marked held (partial-store.ts).
    for (const [path, list] of marks) {
      const inb = this.inbound.get(path);
      if (inb?.failed !== undefined) continue;
      try {
        this.partials!.mark(path, list);
      } catch (e) {
        if (inb) inb.failed ??= `cannot record the received pieces: ${describeIoError(e)}`;
      }
    }
    const done: [SegmentData, Inbound][] = [];
    for (let k = 0; k < batch.segments.length; k++) {
      const s = batch.segments[k]!;
      const path = s.entry.path;
      const inb = inbs[k];
      if (!inb) continue;
      if (s.entry.kind !== 'file') inb.got = s.count;
      // delete() is false when an earlier segment of the file in this batch finished it.
      if (inb.got < s.count || !this.inbound.delete(path)) continue;
      done.push([s, inb]);
    }
    // Perf: a promise only for a resumed file (not one per small file of a push).
    const resumed = done.filter(([, inb]) => inb.resumed && inb.failed === undefined);
    if (resumed.length > 0)
      await Promise.all(resumed.map(([s, inb]) => this.verifyResumed(s, inb)));
    this.db().write(() => {
      for (const [s, inb] of done) results.push(this.finishInbound(s, inb));
    });
    // What this side confirms is in its snapshot for good (see SnapshotStore.committed).
    await this.db().committed();
    return results;
  }

  /**
   * The inbound state of a big file's first segment to arrive in this run (see
   * PartialStore.begin): resumed from the pieces the sender skipped, or a fresh partial.
   */
  private inboundPartial(s: SegmentData): Inbound {
    const skip = Array.isArray(s.skip) ? s.skip : [];
    const b = this.partials!.begin(s.entry, s.count, skip);
    const pieces = new Array<string[]>(s.count);
    for (const [i, d] of b.held) pieces[i] = [d];
    return {
      cache: b.cache,
      pieces,
      got: b.held.size + (b.failed !== undefined ? skip.length : 0),
      failed: b.failed,
      vanished: false,
      partial: true,
      resumed: b.held.size > 0,
    };
  }

  /** A resumed file is hashed whole before it is placed (PartialStore.checkWhole). */
  private async verifyResumed(s: SegmentData, inb: Inbound): Promise<void> {
    if (!inb.resumed || inb.failed !== undefined) return;
    const digest = combineDigests(
      this.hasher!,
      inb.pieces.flat().map((h) => BigInt(`0x${h}`)),
    );
    inb.failed = await this.partials!.checkWhole(inb.cache, s.entry.size, digest);
  }

  async resumable(files: readonly Entry[]): Promise<ResumeOffer[]> {
    for (const e of files) this.checkPath(e.path);
    // A dry run neither reads nor discards partials: it sends nothing.
    if (this.need().dryRun) return files.map((e) => ({ path: e.path, pieces: [] }));
    return Promise.all(files.map((e) => this.partials!.offer(e)));
  }

  async pieceDigests(requests: readonly PieceRequest[]): Promise<PieceDigests[]> {
    return Promise.all(
      requests.map(async (q): Promise<PieceDigests> => {
        this.checkPath(q.entry.path);
        const e = q.entry;
        const [r] = await this.pool.pieces([
          {
            abs: this.readable(e.path),
            indices: q.indices,
            expect: { size: e.size, mtimeMs: e.mtimeMs, ino: e.ino },
          },
        ]);
        return r?.ok ? { ok: true, digests: r.digests } : { ok: false, message: r!.message };
      }),
    );
  }

  /** Drops what a finished-but-failed file left in the cache or the partial store. */
  private dropStaged(path: string, inb: Inbound): void {
    if (inb.partial) this.partials!.discard(path);
    else rmSync(inb.cache, { force: true });
  }

  private finishInbound(s: SegmentData, inb: Inbound): PlaceResult {
    const path = s.entry.path;
    if (inb.failed !== undefined) {
      this.dropStaged(path, inb);
      return { path, ok: false, message: inb.failed, retry: true, vanished: inb.vanished };
    }
    try {
      if (s.entry.kind === 'symlink') {
        symlinkSync(s.entry.target ?? '', inb.cache);
      }
      const digest =
        s.entry.kind !== 'file'
          ? undefined
          : (inb.digest ??
            combineDigests(
              this.hasher!,
              inb.pieces.flat().map((h) => BigInt(`0x${h}`)),
            ));
      if (inb.placed && inb.staged && !inb.partial) {
        // Perf: the worker placed it; one object for the snapshot, no spreads (a small-file
        // push comes here once per file).
        this.touch(parentOf(path));
        const st = inb.staged;
        this.db().put({
          path,
          kind: 'file',
          size: st.size,
          mtimeMs: st.mtimeMs,
          mode: st.mode,
          ino: st.ino,
          uid: st.uid,
          gid: st.gid,
          digest,
        });
        return { path, ok: true, digest };
      }
      const placed = this.place(path, inb.cache, s.entry, s.expect, s.force ?? false, inb.staged);
      if (typeof placed === 'string') {
        this.dropStaged(path, inb);
        return { path, ok: false, message: placed, retry: false };
      }
      if (inb.partial) this.partials!.placed(path);
      this.db().put(digest !== undefined ? withDigest(placed.entry, digest) : placed.entry);
      return placed.warning !== undefined
        ? { path, ok: true, digest, warning: placed.warning }
        : { path, ok: true, digest };
    } catch (e) {
      this.dropStaged(path, inb);
      return { path, ok: false, message: `cannot place: ${describeIoError(e)}`, retry: true };
    }
  }

  /**
   * Sets metadata on the staged object, re-checks the target and renames into place.
   * Returns the placed entry, or a message when the target changed during the run.
   */
  private place(
    path: string,
    staged: string,
    entry: Entry,
    expect: Entry | null | undefined,
    force: boolean,
    done?: StagedStat,
  ): { entry: Entry; warning?: string } | string {
    const abs = this.abs(path);
    const policy = this.need().placement;
    const isLink = entry.kind === 'symlink';
    let warning: string | undefined;
    if (done === undefined) {
      // The owner first: a chown clears set-user/group-ID bits the mode may ask for.
      this.setOwner(staged, entry, isLink);
      if (!isLink) {
        // --ignore-mode: a replaced file keeps its mode, a new one gets the umask's.
        const mode = policy.ignoreMode
          ? (lstatOrNull(abs)?.mode ?? 0o666 & ~process.umask()) & 0o7777
          : entry.mode;
        chmodSync(staged, mode);
      }
      const sel = this.xattrSel();
      warning = sel && !isLink ? writeXattrs(staged, entry.xattrs, sel) : undefined;
      const atime = policy.preserveAtime && entry.atimeMs !== undefined;
      if (policy.preserveMtime || atime) {
        const now = Date.now();
        setTimes(
          staged,
          atime ? entry.atimeMs! : now,
          policy.preserveMtime ? entry.mtimeMs : now,
          isLink,
        );
      }
    } else if (policy.ignoreMode) {
      // The worker gave the file a new file's mode (createMeta()); a replaced one keeps its own.
      const cur = lstatOrNull(abs);
      if (cur && (cur.mode & 0o7777) !== done.mode) {
        chmodSync(staged, cur.mode & 0o7777);
        done = { ...done, mode: cur.mode & 0o7777 };
      }
    }
    const current = lstatOrNull(abs);
    if (!force) {
      const problem = this.recheck(path, current, expect);
      if (problem) return problem;
    }
    if (current?.isDirectory()) {
      try {
        rmdirSync(abs);
      } catch (e) {
        return `a directory is in the way and could not be removed: ${describeIoError(e)}`;
      }
    }
    this.ensureParent(path);
    try {
      renameSync(staged, abs);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' || this.knownDirs.size === 0) throw e;
      // A parent this run knew of went away meanwhile: look again, once.
      this.knownDirs.clear();
      this.ensureParent(path);
      renameSync(staged, abs);
    }
    this.touch(parentOf(path));
    if (done !== undefined) {
      // rename keeps the inode and every attribute the worker set and read back.
      return { entry: { path, kind: 'file', ...done } };
    }
    const st = lstatSync(abs);
    const placed = this.entryAt(path, st, entry.target)!;
    return warning !== undefined ? { entry: placed, warning } : { entry: placed };
  }

  /**
   * What a worker is asked to do with a file that comes in one piece: create it with its
   * metadata, and rename it into place too when the receiver expects nothing at the
   * target (an added file; the common case of a big initial push) or replaces whatever is
   * there (a restore: a tree the receiver lost). The worker places it only where nothing
   * is (placeFile() in hash/worker.ts); everything else is placed by place() on this
   * thread, which re-checks what the plan expected.
   */
  private wholeFile(s: SegmentData): Pick<WriteItem, 'create' | 'placeAt'> {
    // Extended attributes and ACLs are set by path on this thread (endpoint/xattrs.ts):
    // such a session places every file here, as before.
    if (this.xattrSel() !== undefined) return {};
    const create = this.createMeta(s.entry);
    if (s.force !== true) {
      const expected =
        s.expect !== undefined ? s.expect : (this.db().get(s.entry.path)?.entry ?? null);
      if (expected !== null) return { create };
    }
    try {
      this.ensureParent(s.entry.path);
    } catch {
      return { create }; // place() reports it
    }
    return { create, placeAt: this.abs(s.entry.path) };
  }

  /** The metadata a worker sets on a file it creates whole (see place()). */
  private createMeta(entry: Entry): CreateMeta {
    const p = this.need().placement;
    const atime = p.preserveAtime === true && entry.atimeMs !== undefined;
    // Perf: one object of one shape per file (no spreads); undefined times are not set.
    return {
      // --ignore-mode: a new file gets the umask's mode; place() keeps a replaced file's.
      mode: p.ignoreMode ? 0o666 & ~process.umask() & 0o7777 : entry.mode,
      mtimeMs: p.preserveMtime ? entry.mtimeMs : undefined,
      atimeMs: atime ? entry.atimeMs : undefined,
      uid: p.preserveUid ? entry.uid : -1,
      gid: p.preserveGid ? entry.gid : -1,
    };
  }

  /** Undefined when the target still is what the plan expected, else why not. */
  private recheck(
    path: string,
    current: Stats | null,
    expect: Entry | null | undefined,
  ): string | undefined {
    let expected: Entry | null;
    if (expect !== undefined) expected = expect;
    else {
      const r = this.db().get(path);
      expected = r?.entry ?? null;
    }
    if (expected === null) {
      return current === null
        ? undefined
        : 'something appeared at the target during the sync; it was left as it is';
    }
    if (current === null) return undefined; // deleted meanwhile: nothing is lost by placing
    const now = this.entryAt(path, current, current.isSymbolicLink() ? expected.target : undefined);
    if (!now) return 'the target is now a special file; it was left as it is';
    if (now.kind === 'dir' && expected.kind === 'dir') return undefined;
    if (sameLocalState(now, expected)) return undefined;
    return 'the target changed at the receiver during the sync; it was left as it is';
  }

  private setOwner(abs: string, entry: Entry, isLink: boolean): void {
    const p = this.need().placement;
    if (!p.preserveUid && !p.preserveGid) return;
    const uid = p.preserveUid ? entry.uid : -1;
    const gid = p.preserveGid ? entry.gid : -1;
    try {
      (isLink ? lchownSync : chownSync)(abs, uid, gid);
    } catch (e) {
      // Without the privilege a file still syncs; its owner is the receiving user's.
      if (errnoCode(e) !== 'EPERM') throw e;
    }
  }

  private ensureParent(path: string): void {
    const parent = parentOf(path);
    if (parent === '' || this.knownDirs.has(parent)) return;
    const abs = this.abs(parent);
    const st = lstatOrNull(abs);
    if (st?.isDirectory()) {
      this.knownDirs.add(parent);
      return;
    }
    if (st) throw Object.assign(new Error(`${parent} is not a directory`), { code: 'ENOTDIR' });
    mkdirSync(abs, { recursive: true });
    this.touch(parentOf(parent));
    this.touch(parent);
    this.knownDirs.add(parent);
  }

  async apply(ops: readonly Op[]): Promise<ApplyResult[]> {
    const store = this.db();
    // Renames, deletes and moves aside may take directories away; mkdir and attrs never do
    // (Perf: the files placed while a run's directories are made keep what is known).
    if (ops.some((op) => op.op !== 'mkdir' && op.op !== 'attrs')) this.knownDirs.clear();
    const results = store.write(() => ops.map((op) => this.applyOne(op)));
    await store.committed();
    return results;
  }

  private applyOne(op: Op): ApplyResult {
    const bad = unsafeRelPathReason(op.path);
    if (bad !== undefined || op.path === '')
      return { ok: false, message: `refused path: ${bad ?? 'empty'}` };
    try {
      switch (op.op) {
        case 'rename':
          return this.applyRename(op.from, op.path);
        case 'delete':
          return this.applyDelete(op.path, op.expect);
        case 'mkdir':
          return this.applyMkdir(op.entry, op.expect);
        case 'attrs':
          return this.applyAttrs(op.entry, op.expect);
        case 'aside':
          return this.applyAside(op.path, op.to, op.expect);
        case 'send':
        case 'restore':
          return { ok: false, message: `${op.op} is not applied by apply()` };
      }
    } catch (e) {
      return { ok: false, message: describeIoError(e) };
    }
  }

  private applyRename(from: string, to: string): ApplyResult {
    const bad = unsafeRelPathReason(from);
    if (bad !== undefined || from === '')
      return { ok: false, message: `refused path: ${bad ?? 'empty'}` };
    const store = this.db();
    const rec = store.get(from);
    const src = lstatOrNull(this.abs(from));
    if (!rec?.entry || !src) return { ok: false, message: 'the source is gone at the receiver' };
    const now = this.entryAt(from, src, src.isSymbolicLink() ? rec.entry.target : undefined);
    if (
      !now ||
      now.kind !== rec.entry.kind ||
      (now.kind !== 'dir' && !sameLocalState(now, rec.entry))
    ) {
      return { ok: false, message: 'the source changed at the receiver' };
    }
    if (lstatOrNull(this.abs(to)) !== null)
      return { ok: false, message: 'the target exists at the receiver' };
    this.ensureParent(to);
    renameSync(this.abs(from), this.abs(to));
    this.touch(parentOf(from));
    this.touch(parentOf(to));
    store.move(from, to);
    const st = lstatSync(this.abs(to));
    store.put({
      ...this.entryAt(to, st, rec.entry.target)!,
      ...(rec.entry.digest ? { digest: rec.entry.digest } : {}),
    });
    return { ok: true };
  }

  /**
   * Bidi keep-both: moves this side's own copy at `path` to `to`, untracked, if it still is
   * what the plan saw; never replaces anything at `to`.
   */
  private applyAside(path: string, to: string, expect: Entry): ApplyResult {
    const bad = unsafeRelPathReason(to);
    if (bad !== undefined || to === '')
      return { ok: false, message: `refused path: ${bad ?? 'empty'}` };
    const cur = lstatOrNull(this.abs(path));
    if (!cur) return { ok: false, message: 'the copy is gone at this side' };
    const now = entryFromStats(path, cur, cur.isSymbolicLink() ? expect.target : undefined);
    if (!now || !sameLocalState(now, expect))
      return { ok: false, message: 'the copy changed during the sync; it was left as it is' };
    if (lstatOrNull(this.abs(to)) !== null) return { ok: false, message: `${to} already exists` };
    this.ensureParent(to);
    renameSync(this.abs(path), this.abs(to));
    this.touch(parentOf(to));
    return { ok: true };
  }

  /**
   * Deletes what the snapshot tracks at `path`, if the disk still holds what was recorded.
   * For a directory, every tracked path below it first, deepest first; a file changed at
   * the receiver, or one the snapshot never knew, is kept (and so is its directory).
   */
  private applyDelete(path: string, expect: Entry | null | undefined): ApplyResult {
    const store = this.db();
    const rec = store.get(path);
    const cur = lstatOrNull(this.abs(path));
    if (!cur) {
      store.remove(path);
      return { ok: true };
    }
    const recorded = expect ?? rec?.entry ?? null;
    const now = this.entryAt(path, cur, cur.isSymbolicLink() ? recorded?.target : undefined);
    if (
      !recorded ||
      !now ||
      now.kind !== recorded.kind ||
      (now.kind !== 'dir' && !sameLocalState(now, recorded))
    ) {
      store.remove(path);
      return { ok: true, note: 'kept: it changed at the receiver since the last sync' };
    }
    let kept = 0;
    if (now.kind === 'dir') {
      const below = store
        .below(path)
        .sort((a, b) => depthOf(b.path) - depthOf(a.path) || comparePaths(a.path, b.path));
      for (const r of below) if (!this.deleteTracked(r)) kept++;
    }
    store.remove(path);
    this.touch(parentOf(path));
    if (now.kind === 'dir') {
      try {
        rmdirSync(this.abs(path));
      } catch (e) {
        if (errnoCode(e) === 'ENOTEMPTY' || errnoCode(e) === 'EEXIST') {
          return {
            ok: true,
            note: `kept: the directory holds ${kept > 0 ? 'files changed at the receiver' : 'files the sync never tracked'}`,
          };
        }
        throw e;
      }
      return { ok: true };
    }
    this.unlinkOrKeep(path);
    return { ok: true };
  }

  /** Removes a file or link, or with --keep-dir-* moves it to the keep directory. */
  private unlinkOrKeep(path: string): void {
    if (this.keepDir !== undefined) this.moveToKeep(path);
    else unlinkSync(this.abs(path));
  }

  private deleteTracked(r: SnapshotRecord): boolean {
    const abs = this.abs(r.path);
    const cur = lstatOrNull(abs);
    if (!cur) return true;
    if (!r.entry) return false;
    // A path in Conflict (or Error) holds a version nobody has decided on: a delete of its
    // parent directory must not take it silently (bidi: the other copy was deleted, so
    // this one wins and travels back).
    if (r.state !== 'synced' && r.entry.kind !== 'dir') return false;
    // Excluded by this run's rules: protected, like everything excluded (core/filter.ts).
    if (this.excludedPath(r.path, r.entry.kind === 'dir')) return false;
    const now = this.entryAt(r.path, cur, cur.isSymbolicLink() ? r.entry.target : undefined);
    if (!now || now.kind !== r.entry.kind) return false;
    if (now.kind === 'dir') {
      try {
        rmdirSync(abs);
        return true;
      } catch {
        return false;
      }
    }
    if (!sameLocalState(now, r.entry)) return false;
    this.unlinkOrKeep(r.path);
    return true;
  }

  private applyMkdir(entry: Entry, expect: Entry | null | undefined): ApplyResult {
    const abs = this.abs(entry.path);
    const cur = lstatOrNull(abs);
    if (cur && !cur.isDirectory()) {
      return {
        ok: false,
        message: 'something that is not a directory is in the way at the receiver',
      };
    }
    void expect;
    if (!cur) {
      this.ensureParent(entry.path);
      // Final bits now where they leave the owner able to write; settle() sets the rest.
      // With --ignore-mode a new directory gets the receiver's default mode instead.
      const ignoreMode = this.need().placement.ignoreMode === true;
      mkdirSync(abs, { mode: ignoreMode ? 0o777 : entry.mode | 0o700 });
      this.touch(parentOf(entry.path));
      this.knownDirs.add(entry.path);
    }
    return this.applyAttrs(entry, undefined);
  }

  private applyAttrs(entry: Entry, expect: Entry | null | undefined): ApplyResult {
    // Perf: a reset adopts every file here. When the file as this side scanned it already
    // has all the entry asks for, that state is recorded without touching the disk again:
    // had the file changed since, the next scan finds it changed against this record.
    // The digest kept is the sender's or the one this side's scan found for what it has
    // now (a snapshot record's could describe content replaced since).
    if (entry.kind === 'file' && expect?.kind === 'file' && this.nothingToSet(entry, expect)) {
      const digest = entry.digest ?? expect.digest;
      // Perf: the scanned entry itself where nothing differs (a reset: a million of them).
      const scanned = expect.path === entry.path ? expect : { ...expect, path: entry.path };
      this.db().put(
        digest !== undefined && digest !== scanned.digest ? withDigest(scanned, digest) : scanned,
      );
      return { ok: true };
    }
    const abs = this.abs(entry.path);
    const cur = lstatOrNull(abs);
    if (!cur) return { ok: false, message: 'the path is gone at the receiver' };
    const now = this.entryAt(entry.path, cur, cur.isSymbolicLink() ? entry.target : undefined);
    if (!now || now.kind !== entry.kind)
      return { ok: false, message: 'the path changed kind at the receiver' };
    if (now.kind !== 'dir') {
      const problem = this.recheck(entry.path, cur, expect);
      if (problem) return { ok: false, message: problem };
    }
    const isLink = entry.kind === 'symlink';
    const policy = this.need().placement;
    this.setOwner(abs, entry, isLink);
    const sel = this.xattrSel();
    const warning =
      sel && !isLink && now.xattrs !== entry.xattrs
        ? writeXattrs(abs, entry.xattrs, sel)
        : undefined;
    const warned = warning !== undefined ? { warning } : {};
    if (entry.kind === 'dir') {
      // A directory's mode and times are set in settle(), once nothing more is placed
      // inside: a read-only directory must stay writable until its contents are in.
      this.touch(entry.path);
      return { ok: true, ...warned };
    }
    // Perf: a reset of identical trees adopts every file here; when nothing needs setting,
    // the lstat above already is the placed state (no second lstat).
    let touched = policy.preserveUid || policy.preserveGid || warning !== undefined;
    if (sel && !isLink && now.xattrs !== entry.xattrs) touched = true;
    // The owner was set above: a chown clears set-user/group-ID bits, so they are set again.
    const owned = policy.preserveUid || policy.preserveGid;
    if (
      !isLink &&
      !policy.ignoreMode &&
      ((cur.mode & 0o7777) !== entry.mode || (owned && (entry.mode & 0o6000) !== 0))
    ) {
      chmodSync(abs, entry.mode);
      touched = true;
    }
    const atime = policy.preserveAtime && entry.atimeMs !== undefined;
    if ((policy.preserveMtime && cur.mtimeMs !== entry.mtimeMs) || atime) {
      setTimes(
        abs,
        atime ? entry.atimeMs! : cur.atimeMs,
        policy.preserveMtime ? entry.mtimeMs : cur.mtimeMs,
        isLink,
      );
      touched = true;
    }
    const placed = touched ? this.entryAt(entry.path, lstatSync(abs), entry.target)! : now;
    const digest = entry.digest ?? this.db().get(entry.path)?.entry?.digest;
    this.db().put(digest !== undefined ? withDigest(placed, digest) : placed);
    return { ok: true, ...warned };
  }

  /** True when a file in state `now` needs no metadata set to become `entry` (applyAttrs). */
  private nothingToSet(entry: Entry, now: Entry): boolean {
    const policy = this.need().placement;
    return (
      this.xattrSel() === undefined &&
      (!policy.preserveUid || now.uid === entry.uid) &&
      (!policy.preserveGid || now.gid === entry.gid) &&
      (policy.ignoreMode || now.mode === entry.mode) &&
      (!policy.preserveMtime || now.mtimeMs === entry.mtimeMs) &&
      !(policy.preserveAtime && entry.atimeMs !== undefined)
    );
  }

  async settle(dirs: readonly Entry[]): Promise<void> {
    const store = this.db();
    const wanted = new Map(dirs.map((d) => [d.path, d]));
    for (const d of wanted.keys()) this.touchedDirs.add(d);
    const order = [...this.touchedDirs]
      .filter((d) => d !== '')
      .sort((a, b) => depthOf(b) - depthOf(a));
    store.write(() => {
      for (const path of order) {
        const abs = this.abs(path);
        const cur = lstatOrNull(abs);
        if (!cur?.isDirectory()) continue;
        const want = wanted.get(path);
        // Only directories the snapshot tracks, or that this run created from the sender.
        if (!want) {
          const rec = store.get(path);
          if (!rec || rec.state !== 'synced') continue;
        }
        let changed = false;
        const keepMode = this.need().placement.ignoreMode === true;
        if (want && !keepMode && (cur.mode & 0o7777) !== want.mode) {
          chmodSync(abs, want.mode);
          changed = true;
        }
        if (want && this.need().placement.preserveMtime && cur.mtimeMs !== want.mtimeMs) {
          setTimes(abs, cur.atimeMs, want.mtimeMs, false);
          changed = true;
        }
        // Perf: the lstat above is the settled state unless something was set (a reset
        // settles every directory of the tree).
        store.put(this.entryAt(path, changed ? lstatSync(abs) : cur)!);
      }
    });
    this.touchedDirs.clear();
    await store.committed();
  }

  // --- snapshot ---------------------------------------------------------------------------

  async record(updates: readonly RecordUpdate[]): Promise<void> {
    const store = this.db();
    // Resolves once the updates of every earlier call are committed; this call's may still
    // be with the store's writer thread (Perf: the engine's next chunk goes on meanwhile).
    const earlier = store.committed();
    earlier.catch(() => undefined);
    store.write(() => {
      for (const u of updates) {
        switch (u.kind) {
          case 'put':
            if (u.replaceBelow) store.remove(u.entry.path);
            store.put(u.entry);
            break;
          case 'remove':
            store.remove(u.path);
            break;
          case 'move':
            store.move(u.from, u.to);
            break;
          case 'mark':
            store.mark(u.path, u.state as PathState, u.message);
            break;
          case 'resolved':
            store.clearResolution(u.path);
            break;
        }
      }
    });
    await earlier;
  }

  async recordProblems(problems: readonly Problem[]): Promise<void> {
    await this.record(
      problems.map((p) => ({ kind: 'mark', path: p.path, state: 'error', message: p.message })),
    );
  }

  // --- helpers ----------------------------------------------------------------------------

  private xattrSel(): XattrSelection | undefined {
    const p = this.need().placement;
    return p.preserveXattrs || p.preserveAcls
      ? { xattrs: p.preserveXattrs === true, acls: p.preserveAcls === true }
      : undefined;
  }

  /** Adds the xattrs and access time this session carries; undefined when it carries none. */
  private decorator(): ((abs: string, e: Entry, st?: Stats) => Entry) | undefined {
    const sel = this.xattrSel();
    return decorator({
      ...(sel ? { xattrs: sel } : {}),
      atime: this.need().placement.preserveAtime === true,
    });
  }

  /** The entry of what is at `path` now, as a scan of this session would describe it. */
  private entryAt(path: string, st: Stats, target?: string): Entry | undefined {
    const e = entryFromStats(path, st, target);
    if (e === undefined || e.kind === 'symlink') return e;
    const x = this.xattrSel();
    return x ? { ...e, ...xattrsOf(readXattrs(this.abs(path), x)) } : e;
  }

  /** True when the rules exclude `path` or any directory above it. */
  private excludedPath(path: string, isDir = false): boolean {
    const f = this.filter;
    if (!f) return false;
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++)
      if (f.excluded(parts.slice(0, i).join('/'), true)) return true;
    return f.excluded(path, isDir);
  }

  /** --keep-dir-*: moves what would be deleted into the keep directory, keeping its path. */
  private moveToKeep(path: string): void {
    let dest = join(this.keepDir!, path);
    mkdirSync(dirname(dest), { recursive: true });
    for (let n = 1; lstatOrNull(dest) !== null; n++) dest = `${join(this.keepDir!, path)}~${n}`;
    renameSync(this.abs(path), dest);
  }

  private need(): SessionSpec {
    if (!this.spec) throw new Error('endpoint used before prepare()');
    return this.spec;
  }

  private db(): SnapshotStore {
    if (!this.store) throw new Error('endpoint used before open()');
    return this.store;
  }

  /** Stops the run cleanly when the database was deleted under it (Aspera: undefined). */
  private checkDbPresent(): void {
    if (!existsSync(this.dbPath)) {
      throw new SessionError(
        'ERR_DB_VANISHED',
        `Snapshot database ${this.dbPath} was deleted while the session was running.`,
        'Run again with -x/--reset to rebuild both snapshots.',
      );
    }
  }

  /**
   * A sync directory that vanished after prepare() (deleted, or its file system unmounted
   * while a continuous session runs) is a safety halt, never a tree of deletes.
   */
  private checkRootPresent(): void {
    if (!existsSync(this.root)) {
      throw new SessionError(
        'ERR_SAFETY',
        `Safety halt: the ${this.label} directory ${this.root} is gone. Nothing was deleted.`,
        'If a mount is missing, mount it and run again; if it was removed on purpose, create it and run with -x/--reset.',
      );
    }
  }

  private checkPath(path: string): void {
    const bad = unsafeRelPathReason(path);
    if (bad !== undefined) throw new SessionError('ERR_IO', `Refused path '${path}': ${bad}.`);
  }

  /**
   * Where to read a file's bytes. The workers refuse to open a link (O_NOFOLLOW), so that
   * a file replaced by a link mid-run is never read through it; with -n follow the link
   * was meant, and its resolved path is read instead.
   */
  private readable(path: string): string {
    const abs = this.abs(path);
    if (this.need().symlinks !== 'follow') return abs;
    try {
      return realpathSync(abs);
    } catch {
      return abs;
    }
  }

  private abs(path: string): string {
    // Perf: a concatenation, not path.join (which normalizes on every call, twice per file
    // sent): the root is a real path and every path here a checked relative one.
    if (path === '') return this.root;
    return this.root.endsWith('/') ? this.root + path : `${this.root}/${path}`;
  }

  private touch(dir: string): void {
    this.touchedDirs.add(dir);
  }
}

function xattrsOf(x: string | undefined): { xattrs?: string } {
  return x !== undefined ? { xattrs: x } : {};
}

function lstatOrNull(abs: string): Stats | null {
  try {
    // Perf: no exception object (with its stack) for the common "not there yet".
    return lstatSync(abs, { throwIfNoEntry: false }) ?? null;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return null;
    throw e;
  }
}
