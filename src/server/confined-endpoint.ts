/**
 * The server's side of one session: a LocalEndpoint wrapped so that a remote client can do
 * nothing outside its user's docroot. Paths the client names are docroot-relative; the
 * user's async_db_dir and async_log_dir override -B and -R; every path of every call is
 * checked (docroot.ts) before the LocalEndpoint touches the disk; the user's created-file and
 * directory modes replace the sender's; paths in replies are shown as the client sees them.
 *
 * The user's `filters` go before the client's rules for the whole session, and are returned
 * with the prepare reply so the client applies the same list. They are also enforced here,
 * whatever the client asks: an excluded path is never placed, deleted, renamed, read,
 * hashed or listed (a hostile client could leave the server's rules out of its own).
 *
 * The local peer's hot path is untouched: only the daemon builds this wrapper.
 */
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Filter } from '../core/filter.js';
import { compileFilter, excludedOrBelow, ruleListProblem } from '../core/filter.js';
import type { Entry } from '../core/entry.js';
import type { Op } from '../core/plan.js';
import { PRIVATE_DIR, unsafeRelPathReason } from '../core/paths.js';
import { sessionNameProblem } from '../core/session-name.js';
import { CHUNK_SIZE } from '../hash/digest.js';
import { MAX_FRAME_DATA } from '../endpoint/wire.js';
import type { Problem } from '../core/problem.js';
import { SessionError } from '../errors.js';
import type {
  ApplyResult,
  ChangeHint,
  DataBatch,
  Endpoint,
  FinishOptions,
  HashReply,
  PieceDigests,
  PieceRequest,
  PlaceResult,
  Prepared,
  RecordUpdate,
  ResumeOffer,
  ScanReply,
  ScanScope,
  SessionSpec,
  WatchHandle,
} from '../endpoint/endpoint.js';
import type { LocalEndpoint } from '../endpoint/local.js';
import type { Segment } from '../transfer/batches.js';
import type { UserConfig } from './config.js';
import {
  ParentGuard,
  checkComponents,
  clientDirToRel,
  realDirPrefix,
  resolveDirInside,
} from './docroot.js';

export class ConfinedEndpoint implements Endpoint {
  readonly label = 'peer';
  private root = '';
  private spec: SessionSpec | undefined;
  /** The user's own rules (undefined when there are none). */
  private readonly serverFilter: Filter | undefined;
  private readonly watches = new Set<WatchHandle>();
  /** Where this session's log lines go, if anywhere (-R inside the docroot, or async_log_dir). */
  logDir: string | undefined;

  constructor(
    private readonly inner: LocalEndpoint,
    private readonly user: UserConfig,
  ) {
    this.serverFilter = compileFilter(user.filters);
  }

  get sessionName(): string | undefined {
    return this.spec?.identity.name;
  }

  /** Absolute server paths in messages are shown docroot-relative, as the client named them. */
  private shown(abs: string): string {
    const d = this.user.docroot;
    if (abs === d) return '/';
    return abs.startsWith(`${d}/`) ? abs.slice(d.length) : abs;
  }

  async prepare(spec: SessionSpec & { readonly logDir?: string }): Promise<Prepared> {
    if (!this.user.sync) {
      throw new SessionError(
        'ERR_AUTH',
        `Sync is not enabled for user '${this.user.name}' on this server.`,
        'Ask the server administrator to set sync = true for this user.',
      );
    }
    if (
      (spec.placement.preserveUid || spec.placement.preserveGid) &&
      !this.user.allowPreserveOwner
    ) {
      throw new SessionError(
        'ERR_AUTH',
        `This server does not let user '${this.user.name}' set file owners (-u/-j).`,
        'Leave out -u/-j, or ask the administrator to set allow_preserve_owner = true.',
      );
    }
    // The name becomes a directory on this server: checked here too, never trusted.
    const nameProblem = sessionNameProblem(String(spec.identity?.name));
    if (nameProblem)
      throw new SessionError('ERR_SESSION_NAME', `Invalid session name: ${nameProblem}.`);
    const docroot = this.user.docroot;
    const dir = resolveDirInside(docroot, clientDirToRel(spec.dir), `Peer directory ${spec.dir}`);
    let dbDir: string | undefined;
    if (this.user.asyncDbDir !== undefined) dbDir = this.user.asyncDbDir;
    else if (spec.dbDir !== undefined) {
      dbDir = resolveDirInside(docroot, clientDirToRel(spec.dbDir), `-B ${spec.dbDir}`);
    }
    if (this.user.asyncLogDir !== undefined) this.logDir = this.user.asyncLogDir;
    else if (spec.logDir !== undefined) {
      this.logDir = resolveDirInside(docroot, clientDirToRel(spec.logDir), `-R ${spec.logDir}`);
      if (!existsSync(this.logDir)) mkdirSync(this.logDir, { recursive: true, mode: 0o755 });
    }
    // Following links on the server could lead out of the docroot, reading or writing.
    if (spec.symlinks === 'follow') {
      throw new SessionError(
        'ERR_AUTH',
        'This server does not follow symbolic links (-n follow): a link could lead outside the docroot.',
        'Use -n copy (the default) or -n skip with a peer daemon.',
      );
    }
    const keepDir =
      spec.keepDir !== undefined
        ? resolveDirInside(
            docroot,
            clientDirToRel(spec.keepDir),
            `--keep-dir-remote ${spec.keepDir}`,
          )
        : undefined;
    let mountSignature: string | undefined;
    if (spec.mountSignature !== undefined) {
      // As the client names it: absolute means from the docroot, relative from the sync dir.
      const rel = clientDirToRel(
        spec.mountSignature.startsWith('/')
          ? spec.mountSignature
          : `${clientDirToRel(spec.dir)}/${spec.mountSignature}`,
      );
      const bad = rel === '' ? 'empty' : unsafeRelPathReason(rel);
      if (bad !== undefined) {
        throw new SessionError(
          'ERR_REMOTE_DIR',
          `--remote-mount-signature ${spec.mountSignature} is refused by the server: ${bad}.`,
        );
      }
      checkComponents(docroot, rel, false, `--remote-mount-signature ${spec.mountSignature}`);
      mountSignature = join(docroot, rel);
    }
    const clientRules = spec.filters ?? [];
    const badRules = ruleListProblem(clientRules);
    if (badRules !== undefined)
      throw new SessionError('ERR_PEER', `The client sent invalid filter rules: ${badRules}.`);
    // First match decides: the server's rules come first, so the client can narrow what
    // syncs but never bring back what the server excludes.
    const rules = [...this.user.filters, ...clientRules];
    this.spec = spec;
    let p: Prepared;
    try {
      // Only what the server has checked is passed on; everything else is rebuilt here.
      p = await this.inner.prepare({
        identity: spec.identity,
        role: 'remote',
        dir,
        ...(dbDir !== undefined ? { dbDir } : {}),
        createDir: spec.createDir,
        placement: spec.placement,
        ...(rules.length > 0 ? { filters: rules } : {}),
        ...(spec.cleanExcluded !== undefined ? { cleanExcluded: spec.cleanExcluded } : {}),
        ...(spec.symlinks !== undefined ? { symlinks: spec.symlinks } : {}),
        ...(spec.dryRun !== undefined ? { dryRun: spec.dryRun === true } : {}),
        ...(keepDir !== undefined ? { keepDir } : {}),
        ...(mountSignature !== undefined ? { mountSignature } : {}),
      });
    } catch (e) {
      throw this.rewrite(e);
    }
    this.root = p.dir;
    return {
      dir: this.shown(p.dir),
      dbPath: this.shown(p.dbPath),
      dbExisted: p.dbExisted,
      ...(this.user.filters.length > 0 ? { filters: this.user.filters } : {}),
    };
  }

  private rewrite(e: unknown): unknown {
    if (e instanceof SessionError) {
      const msg = this.hide(e.message);
      if (e.code === 'ERR_SESSION_BUSY') {
        return new SessionError(
          e.code,
          `Session '${this.spec?.identity.name}' is already running on the server for this directory.`,
          'Wait for the other run to finish; one run of a session may use a directory at a time.',
        );
      }
      return new SessionError(e.code, msg, e.hint);
    }
    return e;
  }

  async open(opts: { readonly reset: boolean }): Promise<void> {
    // The private directory and the session's own directory must be real directories: a
    // link planted there would send the database or the transfer cache elsewhere.
    const name = this.need().identity.name;
    for (const rel of [
      PRIVATE_DIR,
      `${PRIVATE_DIR}/${name}`,
      `${PRIVATE_DIR}/${name}/cache`,
      `${PRIVATE_DIR}/${name}/partial`,
    ]) {
      const abs = join(this.root, rel);
      let st;
      try {
        st = lstatSync(abs);
      } catch {
        continue;
      }
      if (st.isSymbolicLink() || !st.isDirectory())
        throw new SessionError(
          'ERR_REMOTE_DIR',
          `The server refuses this session: ${rel} is not a real directory.`,
        );
    }
    try {
      await this.inner.open(opts);
    } catch (e) {
      throw this.rewrite(e);
    }
  }

  /**
   * A scoped scan lists the directories the client names: each must be a relative path
   * inside the sync directory, and is listed only through real directories. A directory
   * that is (or sits below) a symbolic link now is replaced by the parent of the link,
   * whose listing shows the link as what it is: never a listing through it.
   */
  scan(scope?: ScanScope): Promise<ScanReply> {
    if (!scope) return this.inner.scan();
    if (!Array.isArray(scope.dirs))
      throw new SessionError('ERR_PEER', 'The client sent a malformed scan scope.');
    const dirs = new Set<string>();
    for (const d of scope.dirs) {
      const bad = typeof d !== 'string' ? 'not a string' : unsafeRelPathReason(d);
      if (bad !== undefined)
        throw new SessionError('ERR_PEER', `The client named a refused directory '${d}': ${bad}.`);
      dirs.add(realDirPrefix(this.root, d));
    }
    return this.inner.scan({ dirs: [...dirs] });
  }

  /**
   * The daemon's side of RemoteEndpoint.watch: LocalEndpoint.watch on the sync directory.
   * Its paths are already relative to it; any that is not a plain relative path inside it
   * is dropped, and a message naming a server path shows it docroot-relative.
   */
  async watch(onHints: (hints: readonly ChangeHint[]) => void): Promise<WatchHandle> {
    this.need();
    const handle = await this.inner.watch((hints) => {
      const out: ChangeHint[] = [];
      for (const h of hints) {
        if (h.kind === 'paths') {
          const paths = h.paths.filter((p) => unsafeRelPathReason(p) === undefined);
          if (paths.length > 0) out.push({ kind: 'paths', paths });
        } else if (h.kind === 'rescan') out.push({ kind: 'rescan', reason: this.hide(h.reason) });
        else out.push({ kind: 'degraded', message: this.hide(h.message), hint: h.hint });
      }
      if (out.length > 0) onHints(out);
    });
    this.watches.add(handle);
    return {
      close: async () => {
        this.watches.delete(handle);
        await handle.close();
      },
    };
  }

  /** Server paths in a free-text message, shown docroot-relative. */
  private hide(msg: string): string {
    const d = this.user.docroot;
    return msg.split(`${d}/`).join('/').split(d).join('/');
  }

  /**
   * True when the server's own rules exclude `path`. `isDir` undefined: the kind of what is
   * on disk there, and when nothing is, excluded as either kind (a refusal costs nothing).
   * Call after the ParentGuard check, so the lstat follows no link.
   */
  private excluded(path: string, isDir?: boolean): boolean {
    const f = this.serverFilter;
    if (f === undefined || path === '') return false;
    const kind = isDir ?? this.dirOnDisk(path);
    if (kind !== undefined) return excludedOrBelow(f, path, kind);
    return excludedOrBelow(f, path, false) || excludedOrBelow(f, path, true);
  }

  /** Whether `path` is a directory on disk; undefined when nothing is there. */
  private dirOnDisk(path: string): boolean | undefined {
    try {
      return lstatSync(join(this.root, path)).isDirectory();
    } catch {
      return undefined;
    }
  }

  private refuseExcluded(path: string, what: string): never {
    throw new SessionError(
      'ERR_PEER',
      `The server refuses to ${what} ${path}: its rules for user '${this.user.name}' exclude it.`,
    );
  }

  async list(path: string): Promise<Entry[]> {
    if (path !== '') new ParentGuard(this.root).check(path);
    // As the scan does: an excluded path does not exist as far as the session is concerned.
    if (this.excluded(path)) return [];
    return this.inner.list(path);
  }

  async hash(entries: readonly Entry[]): Promise<HashReply[]> {
    const g = new ParentGuard(this.root);
    for (const e of entries) {
      g.check(e.path);
      if (this.excluded(e.path)) this.refuseExcluded(e.path, 'hash');
    }
    return this.inner.hash(entries);
  }

  async read(segments: readonly Segment[]): Promise<DataBatch> {
    const g = new ParentGuard(this.root);
    let total = 0;
    for (const s of segments) {
      g.check(s.entry.path);
      if (this.excluded(s.entry.path)) this.refuseExcluded(s.entry.path, 'send');
      // The pump asks for at most one batch (8 MiB plus a piece); a client asking for more
      // is refused rather than allowed to make the server allocate at will.
      total += s.length;
      if (!(s.length >= 0 && s.length <= CHUNK_SIZE && total <= MAX_FRAME_DATA))
        throw new SessionError('ERR_PEER', 'The client asked for more data than one batch holds.');
    }
    return this.inner.read(segments);
  }

  async write(batch: DataBatch): Promise<PlaceResult[]> {
    const g = new ParentGuard(this.root);
    for (const s of batch.segments) {
      g.check(s.entry.path);
      if (this.excluded(s.entry.path, s.entry.kind === 'dir'))
        this.refuseExcluded(s.entry.path, 'place');
    }
    const fm = this.user.fileCreateMode;
    if (fm === undefined) return this.inner.write(batch);
    return this.inner.write({
      data: batch.data,
      segments: batch.segments.map((s) =>
        s.entry.kind === 'file' ? { ...s, entry: { ...s.entry, mode: fm } } : s,
      ),
    });
  }

  async resumable(files: readonly Entry[]): Promise<ResumeOffer[]> {
    const g = new ParentGuard(this.root);
    for (const e of files) {
      g.check(e.path);
      if (this.excluded(e.path)) this.refuseExcluded(e.path, 'resume');
    }
    return this.inner.resumable(files);
  }

  async pieceDigests(requests: readonly PieceRequest[]): Promise<PieceDigests[]> {
    const g = new ParentGuard(this.root);
    for (const q of requests) {
      g.check(q.entry.path);
      if (this.excluded(q.entry.path)) this.refuseExcluded(q.entry.path, 'hash');
      // A request is bounded by the file's own pieces; anything else is a confused client.
      const count = Math.ceil(q.entry.size / CHUNK_SIZE);
      if (
        !Array.isArray(q.indices) ||
        q.indices.some((i) => !(Number.isSafeInteger(i) && i >= 0 && i < count))
      )
        throw new SessionError('ERR_PEER', 'The client asked for pieces outside the file.');
    }
    return this.inner.pieceDigests(requests);
  }

  async apply(ops: readonly Op[]): Promise<ApplyResult[]> {
    const g = new ParentGuard(this.root);
    for (const op of ops) {
      g.check(op.path);
      if (op.op === 'rename') g.check(op.from);
      if (op.op === 'aside') g.check(op.to);
    }
    // An op on an excluded path is a per-path failure (a value): a client that applies the
    // same rules never asks for one, so only a hostile or broken client sees it.
    const refused = ops.map((op) => this.excludedOp(op));
    if (!refused.some((r) => r !== undefined))
      return this.inner.apply(ops.map((op) => this.withModes(op)));
    const allowed = ops.filter((_, i) => refused[i] === undefined);
    const done =
      allowed.length > 0 ? await this.inner.apply(allowed.map((op) => this.withModes(op))) : [];
    let k = 0;
    return refused.map((r) =>
      r !== undefined
        ? {
            ok: false as const,
            message: `refused by the server: its rules for user '${this.user.name}' exclude ${r}`,
          }
        : done[k++]!,
    );
  }

  /**
   * The excluded path an op would touch, if any. Kinds come from the disk, never from the
   * client's word: a hostile client could call a directory a file to slip past a rule
   * that matches directories only. A move's destination gets the kind of what is moved.
   */
  private excludedOp(op: Op): string | undefined {
    if (this.serverFilter === undefined) return undefined;
    const moved = (from: string) => this.dirOnDisk(from);
    const touches: [string, boolean | undefined][] =
      op.op === 'rename'
        ? [
            [op.from, undefined],
            [op.path, moved(op.from)],
          ]
        : op.op === 'aside'
          ? [
              [op.path, undefined],
              [op.to, moved(op.path)],
            ]
          : op.op === 'mkdir'
            ? [[op.path, true]]
            : [[op.path, undefined]];
    for (const [p, isDir] of touches) if (this.excluded(p, isDir)) return p;
    return undefined;
  }

  private withModes(op: Op): Op {
    if (op.op !== 'mkdir' && op.op !== 'attrs') return op;
    const m =
      op.entry.kind === 'dir'
        ? this.user.dirCreateMode
        : op.entry.kind === 'file'
          ? this.user.fileCreateMode
          : undefined;
    return m === undefined ? op : { ...op, entry: { ...op.entry, mode: m } };
  }

  async settle(dirs: readonly Entry[]): Promise<void> {
    const g = new ParentGuard(this.root);
    for (const d of dirs) if (d.path !== '') g.check(d.path, true);
    // Settling sets metadata: never on an excluded directory.
    const kept = this.serverFilter ? dirs.filter((d) => !this.excluded(d.path, true)) : dirs;
    const dm = this.user.dirCreateMode;
    return this.inner.settle(dm === undefined ? kept : kept.map((d) => ({ ...d, mode: dm })));
  }

  record(updates: readonly RecordUpdate[]): Promise<void> {
    return this.inner.record(updates);
  }

  recordProblems(problems: readonly Problem[]): Promise<void> {
    return this.inner.recordProblems(problems);
  }

  async finish(opts: FinishOptions): Promise<void> {
    // A watch left open (a client gone mid-session) ends with its session.
    await Promise.allSettled([...this.watches].map((w) => w.close()));
    this.watches.clear();
    return this.inner.finish(opts);
  }

  private need(): SessionSpec {
    if (!this.spec) throw new SessionError('ERR_PEER', 'The client called the peer out of order.');
    return this.spec;
  }
}
