/**
 * The only orchestrator: one one-time run of a session between two endpoints.
 *
 *   prepare both -> handshake (did each have a DB?) -> open both -> [pass: scan both
 *   -> safety checks -> reconcile -> apply the plan at the receiver (renames, deletes,
 *   directories and metadata, file data, restores) -> record at the sender -> settle]
 *   -> finish both
 *
 * A one-time run is one pass; continuous mode (engine/continuous.ts) opens the session once
 * and runs a pass per burst of changes, scoped to the directories that changed.
 *
 * The engine never asks whether an endpoint is local or remote. A path's trouble is a
 * Problem in the summary; only what stops the whole session throws.
 */
import type { Change } from '../core/change.js';
import { mergeByPath } from '../core/change.js';
import type { Entry } from '../core/entry.js';
import { sameContent, withDigest } from '../core/entry.js';
import type { BidiPlan, Op, Plan } from '../core/plan.js';
import type { Problem } from '../core/problem.js';
import type { Overwrite } from '../core/reconcile.js';
import { parentOf } from '../core/paths.js';
import { reconcileOneWay } from '../core/reconcile.js';
import type { ConflictPolicy, Keep } from '../core/reconcile-bidi.js';
import { asideNameAt, reconcileBidi } from '../core/reconcile-bidi.js';
import { ancestorsOf } from '../core/path-index.js';
import { SessionError } from '../errors.js';
import type { FilterRule } from '../core/filter.js';
import type { SymlinkMode } from '../scan/scanner.js';
import type {
  ApplyResult,
  Direction,
  Endpoint,
  PlacementPolicy,
  RecordUpdate,
  ScanReply,
  ScanScope,
  SessionIdentity,
  SessionSpec,
} from '../endpoint/endpoint.js';
import type { RateLimiter } from '../transfer/rate-limiter.js';
import type { SendItem } from '../transfer/pump.js';
import { pump } from '../transfer/pump.js';
import type { Segment } from '../transfer/batches.js';
import { isChunked } from '../transfer/batches.js';
import { DirGate } from '../transfer/dir-gate.js';
import { planResume } from '../transfer/resume.js';

export interface RunOptions {
  readonly identity: SessionIdentity;
  readonly localDir: string;
  readonly remoteDir: string;
  readonly localDbDir?: string;
  readonly remoteDbDir?: string;
  readonly reset: boolean;
  readonly createDir: boolean;
  readonly overwrite: Overwrite;
  /** Bidi: what happens to a path changed differently on both sides (default: conflict). */
  readonly conflictPolicy?: ConflictPolicy;
  readonly placement: PlacementPolicy;
  readonly limiter: RateLimiter;
  /** Parallel data lanes (--transfer-threads). */
  readonly lanes: number;
  readonly signal?: AbortSignal;
  readonly events?: RunEvents;
  /** Include/exclude rules, applied at both ends (core/filter.ts). */
  readonly filters?: readonly FilterRule[];
  readonly cleanExcluded?: boolean;
  readonly symlinks?: SymlinkMode;
  readonly keepDirLocal?: string;
  readonly keepDirRemote?: string;
  readonly mountSignatureLocal?: string;
  readonly mountSignatureRemote?: string;
  /** Print the plan, change nothing (databases included). */
  readonly dryRun?: boolean;
  /** Deletes at the sender are not propagated (its records of them are dropped). */
  readonly ignoreDelete?: boolean;
  /** Deletes run after all transfers instead of before them (the default, --delete-before). */
  readonly deleteDelay?: boolean;
  readonly mirror?: boolean;
  /** Sent files are removed at the sender once placed (and forgotten there). */
  readonly removeAfterTransfer?: boolean;
  /**
   * -k sha1|md5|...: files both sides added with equal size and mtime are compared by
   * content before they are adopted (default: trusted, rsync's quick check).
   */
  readonly compareContent?: boolean;
}

/** One line of a dry run's plan. */
export interface PlannedChange {
  readonly op: Op['op'] | 'remove-source';
  readonly path: string;
  readonly from?: string;
  /** Bytes a send would carry. */
  readonly size?: number;
  readonly kind?: Entry['kind'];
}

export interface RunEvents {
  /** One line per change applied, for -v and logs. */
  change?(
    kind: 'send' | 'mkdir' | 'delete' | 'rename' | 'attrs',
    path: string,
    detail?: string,
  ): void;
  bytes?(n: number): void;
  planned?(files: number, bytes: number): void;
  /** A path that failed, or a warning, as soon as it is known (for logs). */
  problem?(path: string, message: string, level: 'error' | 'warning'): void;
}

export interface RunSummary {
  direction: Direction;
  filesSent: number;
  /** Bytes of file data that travelled (a resumed file counts only the pieces sent). */
  bytesSent: number;
  /** Bytes of resumed big files not sent again: the receiver held them from a killed run. */
  bytesResumed?: number;
  linksSent: number;
  dirsCreated: number;
  deleted: number;
  renamed: number;
  metadataOnly: number;
  unchanged: boolean;
  problems: Problem[];
  /** Bidi: paths left in state Conflict on both sides. */
  conflicts: { path: string; message: string }[];
  notes: { path: string; message: string }[];
  warnings: { path: string; message: string }[];
  elapsedMs: number;
  /** Files removed at the sender after transfer (--remove-after-transfer). */
  removedAtSender?: number;
  /** Set by --dry-run: what the run would do; nothing was changed. */
  plan?: PlannedChange[];
}

export async function runOnce(
  opts: RunOptions,
  local: Endpoint,
  peer: Endpoint,
): Promise<RunSummary> {
  const started = performance.now();
  await openSession(opts, local, peer);
  let status: 'ok' | 'partial' | 'failed' = 'failed';
  try {
    const summary = await syncPass(opts, local, peer);
    status = summary.problems.length > 0 && !opts.dryRun ? 'partial' : 'ok';
    summary.elapsedMs = performance.now() - started;
    return summary;
  } finally {
    await closeSession(local, peer, status);
  }
}

/** Prepares both endpoints, checks the databases against each other and opens both. */
export async function openSession(
  opts: RunOptions,
  local: Endpoint,
  peer: Endpoint,
): Promise<void> {
  const id = opts.identity;
  const placement = opts.placement;
  const common = {
    ...(opts.filters && opts.filters.length > 0 ? { filters: opts.filters } : {}),
    ...(opts.cleanExcluded ? { cleanExcluded: true } : {}),
    ...(opts.symlinks ? { symlinks: opts.symlinks } : {}),
    ...(opts.dryRun ? { dryRun: true } : {}),
  };
  const spec = (
    role: 'local' | 'remote',
    dir: string,
    dbDir: string | undefined,
    keepDir: string | undefined,
    mountSignature: string | undefined,
  ): SessionSpec => ({
    identity: id,
    role,
    dir,
    ...(dbDir !== undefined ? { dbDir } : {}),
    createDir: opts.createDir,
    placement,
    ...common,
    ...(keepDir !== undefined ? { keepDir } : {}),
    ...(mountSignature !== undefined ? { mountSignature } : {}),
  });
  // The peer first: a daemon may return rules of its own (Prepared.filters), which go before
  // the client's at both ends, so the local side is prepared with the merged list.
  const pp = await peer.prepare(
    spec('remote', opts.remoteDir, opts.remoteDbDir, opts.keepDirRemote, opts.mountSignatureRemote),
  );
  const peerRules = pp.filters ?? [];
  const localSpec = spec(
    'local',
    opts.localDir,
    opts.localDbDir,
    opts.keepDirLocal,
    opts.mountSignatureLocal,
  );
  const lp = await local.prepare(
    peerRules.length > 0
      ? { ...localSpec, filters: [...peerRules, ...(localSpec.filters ?? [])] }
      : localSpec,
  );
  if (lp.dbPath === pp.dbPath) {
    throw new SessionError(
      'ERR_DB_LOCATION',
      `Both ends of session '${id.name}' would use the same database ${lp.dbPath}.`,
      'Give the two sides different database directories (-b / -B).',
    );
  }
  if (!opts.reset && lp.dbExisted !== pp.dbExisted) {
    const hint = `Run with -x/--reset to rebuild both snapshots from a scan (files already identical are not sent again), or remove ${lp.dbExisted ? lp.dbPath : pp.dbPath}.`;
    throw new SessionError(
      'ERR_DB_ONE_SIDE',
      lp.dbExisted
        ? `Failed. Peer error: Local snapshot DB exists but remote snapshot DB ${pp.dbPath} does not exist`
        : `Failed. Peer error: Remote snapshot DB exists but local snapshot DB ${lp.dbPath} does not exist`,
      hint,
    );
  }
  await local.open({ reset: opts.reset });
  try {
    await peer.open({ reset: opts.reset });
  } catch (e) {
    await local.finish({ status: 'failed' });
    throw e;
  }
}

/** Writes both sides' end state and closes them; never throws. */
export async function closeSession(
  local: Endpoint,
  peer: Endpoint,
  status: 'ok' | 'partial' | 'failed',
): Promise<void> {
  await Promise.allSettled([local.finish({ status }), peer.finish({ status })]);
}

/** What one pass of a continuous session narrows (a one-time run leaves both out). */
export interface PassOptions {
  /** Scan only these directories of each side (after change notifications). */
  readonly scope?: { readonly local?: ScanScope; readonly remote?: ScanScope };
  /**
   * Holds back a change found by the scan (a file still being written: --cooloff). Its
   * snapshot record stays as it was, so a later pass finds it again.
   */
  readonly defer?: (side: 'local' | 'remote', change: Change) => boolean;
  /** Told, per side, which changes the pass goes on with and which it held back. */
  readonly observe?: (
    side: 'local' | 'remote',
    kept: readonly Change[],
    held: readonly Change[],
  ) => void;
}

/**
 * One pass over open endpoints: scan both sides, check safety, reconcile, apply. A one-time
 * run is one pass; a continuous session runs many on the same open session.
 */
export async function syncPass(
  opts: RunOptions,
  local: Endpoint,
  peer: Endpoint,
  pass: PassOptions = {},
): Promise<RunSummary> {
  const started = performance.now();
  const id = opts.identity;
  const summary: RunSummary = {
    direction: id.direction,
    filesSent: 0,
    bytesSent: 0,
    linksSent: 0,
    dirsCreated: 0,
    deleted: 0,
    renamed: 0,
    metadataOnly: 0,
    unchanged: true,
    problems: [],
    conflicts: [],
    notes: [],
    warnings: [],
    elapsedMs: 0,
  };
  const trustBefore = quickCheckBefore(opts);
  try {
    const [ls, ps] = deferChanges(
      await Promise.all([local.scan(pass.scope?.local), peer.scan(pass.scope?.remote)]),
      pass,
    );
    const tag = (side: 'local' | 'remote') => (p: Problem) => ({ ...p, side });
    summary.problems.push(...ls.problems.map(tag('local')), ...ps.problems.map(tag('remote')));
    summary.warnings.push(...ls.warnings, ...ps.warnings);
    await local.recordProblems(ls.problems);
    await peer.recordProblems(ps.problems);
    if (id.direction === 'bidi') {
      await runBidi(ls, ps, local, peer, opts, summary, trustBefore);
      return summary;
    }

    const pull = id.direction === 'pull';
    const sender = pull ? peer : local;
    const receiver = pull ? local : peer;
    const sScan = pull ? ps : ls;
    const rScan = pull ? ls : ps;
    checkSafety(sScan, sender.label);
    await fillDigests(sScan.changes, rScan.changes, sender, receiver, trustBefore);
    let plan = reconcileOneWay({
      sender: sScan.changes,
      receiver: rScan.changes,
      overwrite: opts.overwrite,
      ...(opts.mirror ? { mirror: true } : {}),
    });
    let senderForget: string[] = [];
    if (opts.ignoreDelete) ({ plan, dropped: senderForget } = withoutDeletes(plan));
    summary.notes.push(...plan.notes);
    if (opts.dryRun) {
      summary.plan = await describePlan(plan, sender, opts, summary);
    } else {
      await execute(plan, sScan.changes, sender, receiver, opts, summary, { senderForget });
    }
  } finally {
    summary.elapsedMs = performance.now() - started;
  }
  return summary;
}

/**
 * Drops the changes a pass holds back (see PassOptions.defer), and with them every change
 * at or below a held-back path (or its rename source): a file moved into a directory whose
 * own rename waits must wait too, or the receiver would create the directory first and
 * the rename could no longer be applied.
 */
function deferChanges(
  [ls, ps]: [ScanReply, ScanReply],
  { defer, observe }: PassOptions,
): [ScanReply, ScanReply] {
  if (!defer) return [ls, ps];
  const hold = (side: 'local' | 'remote', changes: Change[]): Change[] => {
    const held = new Set<string>();
    for (const c of changes) {
      if (!defer(side, c)) continue;
      held.add(c.path);
      if (c.from !== undefined) held.add(c.from);
    }
    if (held.size === 0) {
      observe?.(side, changes, []);
      return changes;
    }
    // Perf: walks up each path (a few steps) instead of comparing with every held path.
    const under = (p: string | undefined): boolean => {
      for (let q = p; q !== undefined && q !== ''; q = q.includes('/') ? parentOf(q) : undefined)
        if (held.has(q)) return true;
      return false;
    };
    const kept: Change[] = [];
    const back: Change[] = [];
    for (const c of changes) (under(c.path) || under(c.from) ? back : kept).push(c);
    observe?.(side, kept, back);
    return kept;
  };
  return [
    { ...ls, changes: hold('local', ls.changes) },
    { ...ps, changes: hold('remote', ps.changes) },
  ];
}

/**
 * A bidirectional run: the three-way reconcile gives one plan per receiving side, and the
 * same execute machinery runs once per direction (local -> remote, then remote -> local).
 * Copies a keep-both decision moves aside are listed after the move and sent to the other
 * side in the same run. Conflicts are marked in both databases; stored resolutions that
 * the plan applied (or that no longer matter) are cleared on both sides.
 */
async function runBidi(
  ls: ScanReply,
  ps: ScanReply,
  local: Endpoint,
  peer: Endpoint,
  opts: RunOptions,
  summary: RunSummary,
  trustBefore: number,
): Promise<void> {
  // Both sides send, so both sides get the empty-root safety check.
  checkSafety(ls, local.label);
  checkSafety(ps, peer.label);
  await fillDigests(ls.changes, ps.changes, local, peer, trustBefore);
  const resolutions = new Map<string, Keep>();
  for (const r of [...(ps.resolutions ?? []), ...(ls.resolutions ?? [])])
    resolutions.set(r.path, r.keep);
  // Kept copies are named with the run's start in UTC: 20261121T142000Z.
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const plan: BidiPlan = reconcileBidi({
    local: ls.changes,
    remote: ps.changes,
    policy: opts.conflictPolicy ?? 'conflict',
    resolutions,
    stamp,
  });
  const conflictPaths = new Set(plan.conflicts.map((c) => c.path));
  const conflictAt = (p: string): boolean =>
    conflictPaths.has(p) || ancestorsOf(p).some((a) => conflictPaths.has(a));
  // A restore (a whole subtree from the sender) never overwrites what the receiver itself
  // changed, nor anything in conflict: those paths have their own decisions.
  const keepAt = (receiverChanges: readonly Change[]) => {
    // Perf: built on the first restore only (a reset's million changes need none).
    let changed: Map<string, Change> | undefined;
    return (e: Entry): boolean => {
      if (conflictAt(e.path)) return true;
      changed ??= new Map(receiverChanges.map((c) => [c.path, c]));
      const c = changed.get(e.path);
      if (c === undefined || c.new === null) return false;
      return !(e.kind === 'dir' && c.new.kind === 'dir');
    };
  };
  // The plan names kept copies from the paths it knows; a copy kept by an earlier run in
  // the same second may already hold that name on disk, so look, and count up if so.
  const chosen = new Set<string>();
  const freeAsides = async (p: Plan, loser: 'local' | 'remote'): Promise<Plan> => {
    const ops: Op[] = [];
    const notes = [...p.notes];
    for (const o of p.ops) {
      if (o.op !== 'aside') {
        ops.push(o);
        continue;
      }
      let to = o.to;
      for (let n = 1; ; n++) {
        const busy =
          chosen.has(to) || (await local.list(to)).length > 0 || (await peer.list(to)).length > 0;
        if (!busy) break;
        to = asideNameAt(o.path, loser, stamp, n);
      }
      chosen.add(to);
      if (to !== o.to)
        for (let i = 0; i < notes.length; i++)
          if (notes[i]!.path === o.path)
            notes[i] = { ...notes[i]!, message: notes[i]!.message.replace(o.to, to) };
      ops.push({ ...o, to });
    }
    return { ...p, ops, notes };
  };
  let toRemote = await freeAsides(plan.toRemote, 'remote');
  let toLocal = await freeAsides(plan.toLocal, 'local');
  if (opts.dryRun) {
    // Nothing is moved aside, placed or recorded: the plans of both directions are described.
    const describe = (p: Plan): Plan => (opts.ignoreDelete ? withoutDeletes(p).plan : p);
    summary.plan = [
      ...(await describePlan(describe(toRemote), local, opts, summary)),
      ...(await describePlan(describe(toLocal), peer, opts, summary)),
    ];
    summary.notes.push(...toRemote.notes, ...toLocal.notes);
    summary.conflicts.push(...plan.conflicts.map((c) => ({ path: c.path, message: c.message })));
    return;
  }
  // Keep-both: move the losing copies aside first, then send them to the other side.
  const asideSends = async (p: Plan, receiver: Endpoint): Promise<Op[]> => {
    const asides = p.ops.filter((o) => o.op === 'aside') as Extract<Op, { op: 'aside' }>[];
    if (asides.length === 0) return [];
    const res = await receiver.apply(asides);
    const extra: Op[] = [];
    for (let i = 0; i < asides.length; i++) {
      const a = asides[i]!;
      const r = res[i]!;
      if (!r.ok) {
        summary.problems.push({
          path: a.path,
          message: `the losing copy was not moved aside: ${r.message}`,
        });
        continue;
      }
      for (const e of await receiver.list(a.to))
        extra.push(
          e.kind === 'dir'
            ? { op: 'mkdir', path: e.path, entry: e, expect: null }
            : { op: 'send', path: e.path, entry: e, expect: null },
        );
    }
    return extra;
  };
  const fromLocalAsides = await asideSends(toLocal, local);
  const fromRemoteAsides = await asideSends(toRemote, peer);
  const failedAside = new Set(summary.problems.map((p) => p.path));
  const strip = (p: Plan, extra: Op[]): Plan => ({
    ...p,
    ops: [
      ...p.ops.filter(
        (o) =>
          o.op !== 'aside' && !(failedAside.has(o.path) && o.op === 'send' && o.expect === null),
      ),
      ...extra,
    ],
  });
  toRemote = strip(toRemote, fromLocalAsides);
  toLocal = strip(toLocal, fromRemoteAsides);
  summary.notes.push(...toRemote.notes, ...toLocal.notes);
  // Renames and deletes of both directions first, then the rest of local -> remote, then
  // the rest of remote -> local.
  let localPre!: () => void;
  const localPreDone = new Promise<void>((r) => (localPre = r));
  let toRemoteForget: string[] = [];
  let toLocalForget: string[] = [];
  if (opts.ignoreDelete) {
    ({ plan: toRemote, dropped: toRemoteForget } = withoutDeletes(toRemote));
    ({ plan: toLocal, dropped: toLocalForget } = withoutDeletes(toLocal));
  }
  const first = execute(toRemote, ls.changes, local, peer, opts, summary, {
    keep: keepAt(ps.changes),
    between: () => localPreDone,
    senderForget: toRemoteForget,
  });
  const second = execute(toLocal, ps.changes, peer, local, opts, summary, {
    keep: keepAt(ls.changes),
    between: () => {
      localPre();
      return first.then(
        () => undefined,
        () => undefined,
      );
    },
    senderForget: toLocalForget,
  });
  second.catch(() => localPre());
  await Promise.all([first, second]);
  if (plan.conflicts.length > 0) {
    const marks = plan.conflicts.map((c): RecordUpdate => ({
      kind: 'mark',
      path: c.path,
      state: 'conflict',
      message: c.message,
    }));
    await Promise.all([local.record(marks), peer.record(marks)]);
    summary.conflicts.push(...plan.conflicts.map((c) => ({ path: c.path, message: c.message })));
    summary.unchanged = false;
  }
  if (plan.resolved.length > 0) {
    const done = plan.resolved.map((path): RecordUpdate => ({ kind: 'resolved', path }));
    await Promise.all([local.record(done), peer.record(done)]);
  }
}

/**
 * Refuses to go on when the sending root is empty while its snapshot lists files: a lost
 * mount or a wiped directory must not turn into a mass delete at the receiver.
 */
/**
 * --ignore-delete: the sender's deletes stay at the receiver. A delete that makes room for
 * a new object at the same path (a file that became a directory) is kept; the sender's
 * record of a dropped delete is forgotten, so the next run does not propose it again.
 */
function withoutDeletes(plan: Plan): { plan: Plan; dropped: string[] } {
  const created = new Set(
    plan.ops.filter((o) => o.op !== 'delete' && o.op !== 'rename').map((o) => o.path),
  );
  const dropped: string[] = [];
  const ops = plan.ops.filter((o) => {
    if (o.op !== 'delete' || created.has(o.path)) return true;
    dropped.push(o.path);
    return false;
  });
  return { plan: { ops, forget: plan.forget, notes: plan.notes }, dropped };
}

/** --dry-run: the plan as lines, with the sizes sends would carry. Reads only. */
async function describePlan(
  plan: Plan,
  sender: Endpoint,
  opts: RunOptions,
  summary: RunSummary,
): Promise<PlannedChange[]> {
  const out: PlannedChange[] = [];
  const planned = new Set(plan.ops.filter((o) => o.op === 'send').map((o) => o.path));
  const send = (e: Entry): void => {
    out.push({ op: 'send', path: e.path, kind: e.kind, size: e.size });
    if (e.kind === 'file') {
      summary.filesSent++;
      summary.bytesSent += e.size;
      if (opts.removeAfterTransfer) out.push({ op: 'remove-source', path: e.path });
    } else summary.linksSent++;
  };
  for (const o of plan.ops) {
    switch (o.op) {
      case 'rename':
        out.push({ op: 'rename', path: o.path, from: o.from, kind: o.entry.kind });
        summary.renamed++;
        break;
      case 'delete':
        out.push({ op: 'delete', path: o.path });
        summary.deleted++;
        break;
      case 'mkdir':
        out.push({ op: 'mkdir', path: o.path, kind: 'dir' });
        summary.dirsCreated++;
        break;
      case 'attrs':
        out.push({ op: 'attrs', path: o.path, kind: o.entry.kind });
        summary.metadataOnly++;
        break;
      case 'send':
        send(o.entry);
        break;
      case 'aside':
        // keep-both: the receiver's losing copy is moved aside (then sent the other way).
        out.push({ op: 'aside', path: o.path, from: o.to });
        break;
      case 'restore':
        for (const e of await sender.list(o.path)) {
          if (planned.has(e.path)) continue;
          planned.add(e.path);
          if (e.kind === 'dir') {
            out.push({ op: 'mkdir', path: e.path, kind: 'dir' });
            summary.dirsCreated++;
          } else send(e);
        }
        break;
    }
  }
  summary.unchanged = out.length === 0;
  return out;
}

function checkSafety(scan: ScanReply, label: string): void {
  // A scoped scan (continuous mode) may not list the root: it says whether it holds anything.
  const present =
    scan.stats.files + scan.stats.dirs + scan.stats.symlinks + (scan.stats.rootHasEntries ? 1 : 0);
  const deletes = scan.changes.filter((c) => c.new === null && c.old !== null).length;
  if (present === 0 && scan.snapshotSize > 0 && deletes > 0) {
    throw new SessionError(
      'ERR_SAFETY',
      `Safety halt: the ${label} directory is empty, but its snapshot lists ${scan.snapshotSize} paths. Nothing was deleted.`,
      'If the directory was emptied on purpose, run with -x/--reset; if a mount is missing, mount it and run again.',
    );
  }
}

/** Metadata ops (mkdir, attrs) per apply() call, files per hash() call. */
const META_CHUNK = 8192;
/**
 * With file data moving meanwhile: the first chunk of metadata operations, and the most
 * one may grow to by doubling (Perf: a local receiver makes a chunk's directories on the
 * main thread, ~30 ms per 1,024, while the pump's lanes wait for a turn of it).
 */
const META_FIRST_CHUNK = 256;
const META_CHUNK_WHILE_SENDING = 2048;

/**
 * The quick check's racy window (as git's racily-clean index entries): file times have a
 * coarse granularity (a kernel tick), so two different files written in the same few
 * milliseconds, one on each side, can show equal size and mtime. A file modified less than
 * this long before the run started is compared by content instead.
 */
const RACY_MS = 2000;

/** Mtimes below this are trusted by the quick check; -k sha1|md5|... trusts none. */
function quickCheckBefore(opts: RunOptions): number {
  return opts.compareContent === true ? -Infinity : Date.now() - RACY_MS;
}

/**
 * Where both sides added or changed a file to the same size, the plan needs to know whether
 * the contents are equal (a reset of identical trees, a rerun after a killed run): digests
 * on both sides, computed in each side's worker pool, tell without moving data.
 *
 * A file that both sides only added (neither snapshot knows the path: a reset, a first run
 * over a tree copied beforehand, a rerun after a killed run) with equal size and mtime is
 * taken as identical without reading it, rsync's quick check: a reset of terabytes would
 * otherwise read them twice. Its records then carry no digest. Only mtimes older than
 * `trustBefore` count (see quickCheckBefore); anything a snapshot knew, or a rename, is
 * still compared by content.
 */
async function fillDigests(
  sender: Change[],
  receiver: Change[],
  s: Endpoint,
  r: Endpoint,
  trustBefore: number,
): Promise<void> {
  const pairs: [number, number][] = [];
  mergeByPath(sender, receiver, (i, j) => {
    // Renamed objects too: two different files moved onto one name in the same clock tick
    // have equal size and mtime, and only their digests tell them apart.
    if (i < 0 || j < 0) return;
    const c = sender[i]!;
    const a = c.new;
    const b = receiver[j]!.new;
    if (a?.kind !== 'file' || b?.kind !== 'file' || a.size !== b.size) return;
    if (a.digest !== undefined && b.digest !== undefined) return;
    const bothAdded =
      c.old === null &&
      c.from === undefined &&
      receiver[j]!.old === null &&
      receiver[j]!.from === undefined;
    if (bothAdded && a.mtimeMs < trustBefore && sameContent(a, b)) return;
    pairs.push([i, j]);
  });
  // In chunks: a reset with -k compares every file, and one call per chunk keeps each
  // request to the daemon and each reply bounded.
  for (let at = 0; at < pairs.length; at += META_CHUNK) {
    const chunk = pairs.slice(at, at + META_CHUNK);
    const [sd, rd] = await Promise.all([
      s.hash(chunk.map(([i]) => sender[i]!.new!)),
      r.hash(chunk.map(([, j]) => receiver[j]!.new!)),
    ]);
    chunk.forEach(([i, j], k) => {
      const a = sd[k]!;
      const b = rd[k]!;
      if (a.ok) sender[i] = { ...sender[i]!, new: { ...sender[i]!.new!, digest: a.digest } };
      if (b.ok) receiver[j] = { ...receiver[j]!, new: { ...receiver[j]!.new!, digest: b.digest } };
    });
  }
}

/**
 * Sender-side snapshot updates, written in order and in batches as the receiver confirms,
 * so a run killed half-way keeps what it finished and the rerun does not resend it.
 * Failures are marked on both sides, so asyncadmin shows them wherever it is run.
 */
class Recorder {
  private pending: RecordUpdate[] = [];
  private failures: RecordUpdate[] = [];

  constructor(
    private readonly sender: Endpoint,
    private readonly receiver: Endpoint,
  ) {}

  push(...u: RecordUpdate[]): void {
    this.pending.push(...u);
  }

  fail(path: string, message: string): void {
    this.failures.push({ kind: 'mark', path, state: 'error', message });
  }

  async flush(force = false): Promise<void> {
    if (!force && this.pending.length < 4096) return;
    const batch = this.pending.splice(0);
    if (batch.length > 0) await this.sender.record(batch);
  }

  async close(): Promise<void> {
    await this.flush(true);
    const f = this.failures.splice(0);
    if (f.length > 0) await Promise.all([this.sender.record(f), this.receiver.record(f)]);
    // record() resolves once every earlier call is committed: an empty one waits for all,
    // so a run never ends well while the sender's snapshot could still lose its records.
    await this.sender.record([]);
  }
}

interface ExecuteExtras {
  /** Bidi: entries of a restored subtree that the other direction owns (not sent back). */
  readonly keep?: (e: Entry) => boolean;
  /** Bidi: awaited between deletes and placement, so both directions delete first. */
  readonly between?: () => Promise<void>;
  /** --ignore-delete: sender records dropped for deletes that were not propagated. */
  readonly senderForget?: readonly string[];
}

async function execute(
  plan: Plan,
  senderChanges: readonly Change[],
  sender: Endpoint,
  receiver: Endpoint,
  opts: RunOptions,
  summary: RunSummary,
  extra: ExecuteExtras = {},
): Promise<void> {
  const { keep, between, senderForget = [] } = extra;
  const ev = opts.events;
  // Perf: only the paths that were directories are kept (not every change's old entry):
  // memory follows the number of directories, not of files.
  const senderDirs = new Set<string>();
  for (const c of senderChanges) if (c.old?.kind === 'dir') senderDirs.add(c.path);
  const wasDir = (path: string): boolean => senderDirs.has(path);
  const problem = (path: string, message: string): void => {
    summary.problems.push({ path, message });
    ev?.problem?.(path, message, 'error');
  };
  const warn = (path: string, r: ApplyResult): void => {
    if (!r.ok || r.warning === undefined) return;
    summary.warnings.push({ path, message: r.warning });
    ev?.problem?.(path, r.warning, 'warning');
  };
  const records = new Recorder(sender, receiver);
  if (opts.removeAfterTransfer) sentFiles.set(records, []);
  const settleDirs: Entry[] = [];
  // Directories are recorded at the sender only once the receiver has settled them (mode
  // and times set after their contents): a run killed before that leaves them unrecorded,
  // so the rerun settles them again.
  const dirRecords: RecordUpdate[] = [];
  const restores: { path: string; expect?: Entry | null }[] = [];

  const byKind = (k: Op['op']) => plan.ops.filter((o) => o.op === k);

  // 1. Renames, in order (each may build on an earlier one). A rename the receiver cannot
  //    do falls back to sending the object again and deleting its old place.
  const renames = byKind('rename') as Extract<Op, { op: 'rename' }>[];
  const fallbackDeletes: Op[] = [];
  if (renames.length > 0) {
    const res = await receiver.apply(renames);
    renames.forEach((op, i) => {
      const r = res[i]!;
      if (r.ok) {
        summary.renamed++;
        ev?.change?.('rename', op.path, op.from);
        records.push(
          { kind: 'move', from: op.from, to: op.path },
          { kind: 'put', entry: op.entry, replaceBelow: false },
        );
        if (op.entry.kind === 'dir') settleDirs.push(op.entry);
      } else {
        restores.push({ path: op.path });
        fallbackDeletes.push({ op: 'delete', path: op.from });
        records.push({ kind: 'remove', path: op.from });
      }
    });
  }

  // 2. Deletes, deepest first; with --delete-delay only those that make room for a new
  //    object at or below their path, the others after every transfer (step 6).
  let delayed: Op[] = [];
  let deletes = [...fallbackDeletes, ...byKind('delete')];
  // Perf: both sets below hold delete paths only, found by walking up from each create
  // (a few steps per op), so a plan of 1M sends and no deletes builds nothing.
  const deletePaths = new Set(deletes.map((d) => d.path));
  if (opts.deleteDelay && deletes.length > 0) {
    const roomFor = new Set<string>();
    for (const o of plan.ops) {
      if (o.op === 'delete' || o.op === 'rename') continue;
      for (let p = o.path; p !== ''; p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '')
        if (deletePaths.has(p)) roomFor.add(p);
    }
    delayed = deletes.filter((d) => !roomFor.has(d.path));
    deletes = deletes.filter((d) => roomFor.has(d.path));
  }
  // Paths a create follows a delete at (a kind change): their sender record stays.
  const recreated = new Set<string>();
  if (deletePaths.size > 0)
    for (const o of plan.ops)
      if ((o.op === 'send' || o.op === 'mkdir') && deletePaths.has(o.path)) recreated.add(o.path);
  const runDeletes = async (deletes: Op[]): Promise<void> => {
    if (deletes.length === 0) return;
    const res = await receiver.apply(deletes);
    deletes.forEach((op, i) => {
      const r = res[i]!;
      if (r.ok) {
        if (r.note) summary.notes.push({ path: op.path, message: r.note });
        else {
          summary.deleted++;
          ev?.change?.('delete', op.path);
        }
        // The sender's record goes unless a create at the same path follows.
        if (!recreated.has(op.path)) records.push({ kind: 'remove', path: op.path });
      } else {
        problem(op.path, `not deleted at the receiver: ${r.message}`);
      }
    });
  };
  await runDeletes(deletes);

  // Bidi: the other direction's renames and deletes happen before anything is placed, so
  // a directory deleted on one side never takes with it a path just synced from the other.
  if (between) {
    await records.flush(true);
    await between();
  }

  // 3. Directories and metadata-only changes, parents first, in chunks: a reset adopts
  // every file here, and one call per chunk keeps each request (over the daemon), each
  // transaction and the sender's records in flight bounded. The file data of step 4 moves
  // meanwhile: a batch goes to the receiver once the directories it lands in are made
  // (Perf: a 1M-file push made its 20,000 directories in ~0.7 s before its first file).
  const meta = plan.ops.filter((o) => o.op === 'mkdir' || o.op === 'attrs') as Extract<
    Op,
    { op: 'mkdir' | 'attrs' }
  >[];
  const gate = new DirGate(meta.filter((o) => o.op === 'mkdir').map((o) => o.path));
  // Perf: a chunk is sent while the one before is still being confirmed (the receiver's
  // snapshot committing it, the request crossing the wire), unless it creates directories,
  // which may be the parents of the chunk before's. Results are handled in order.
  let inFlight: { chunk: typeof meta; res: Promise<ApplyResult[]> } | undefined;
  const confirmed = async (chunk: typeof meta, res: ApplyResult[]): Promise<void> => {
    chunk.forEach((op, i) => {
      const r = res[i]!;
      if (!r.ok) {
        problem(op.path, r.message);
        records.fail(op.path, r.message);
        return;
      }
      warn(op.path, r);
      if (op.op === 'mkdir') {
        summary.dirsCreated++;
        ev?.change?.('mkdir', op.path);
      } else {
        summary.metadataOnly++;
        ev?.change?.('attrs', op.path);
      }
      if (op.entry.kind === 'dir') {
        settleDirs.push(op.entry);
        dirRecords.push({ kind: 'put', entry: op.entry, replaceBelow: false });
      } else {
        records.push({ kind: 'put', entry: op.entry, replaceBelow: wasDir(op.path) });
      }
    });
    // Made (or failed, which the files sent into it then say): their files may go now.
    gate.made(chunk);
    await records.flush();
  };
  let halted = false;
  const metadata = async (): Promise<void> => {
    // Perf: while files may wait for directories, the chunks start small (the first files
    // go after a few hundred mkdirs) and stay short; once every directory is made (or none
    // is new, as in a reset) they are full size.
    const sending = plan.ops.some((o) => o.op === 'send');
    let grown = META_FIRST_CHUNK;
    for (let at = 0; at < meta.length && !halted;) {
      const size = sending && gate.making ? grown : META_CHUNK;
      grown = Math.min(2 * grown, META_CHUNK_WHILE_SENDING);
      const chunk = meta.slice(at, at + size);
      at += size;
      if (inFlight && chunk.some((op) => op.op === 'mkdir')) {
        await confirmed(inFlight.chunk, await inFlight.res);
        inFlight = undefined;
      }
      const next = { chunk, res: receiver.apply(chunk) };
      // Handled below, in order; a rejection is not left unheard meanwhile.
      next.res.catch(() => undefined);
      if (inFlight) await confirmed(inFlight.chunk, await inFlight.res);
      inFlight = next;
      // A local receiver's chunk resolves without a turn of the event loop: the pump's
      // lanes (their reads and writes answer as messages from the pool) get one here.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (inFlight) await confirmed(inFlight.chunk, await inFlight.res);
  };

  // 4. File data and links, read from the plan as the pump cuts batches (no copy of it),
  //    while step 3 runs; whichever fails first stops the other.
  for (const o of plan.ops)
    if (o.op === 'restore')
      restores.push(o.expect !== undefined ? { path: o.path, expect: o.expect } : { path: o.path });
  const both = await Promise.allSettled([
    metadata().catch((e: unknown) => {
      gate.fail(e);
      throw e;
    }),
    transfer(sendsOf(plan), sender, receiver, opts, summary, records, wasDir, gate).catch(
      (e: unknown) => {
        halted = true;
        // The pump's other lanes may wait for directories that will now never be made:
        // released (rejected), they let go of their batches' buffers (a continuous
        // session goes on after a failed pass).
        gate.fail(e);
        throw e;
      },
    ),
  ]);
  for (const r of both) if (r.status === 'rejected') throw r.reason;
  await records.flush(true);

  // 5. Restores: what the receiver lost, from the sender's current state.
  if (restores.length > 0) {
    const planned = new Set<string>();
    for (const s of sendsOf(plan)) planned.add(s.entry.path);
    const dirs: Op[] = [];
    const files: SendItem[] = [];
    for (const r of restores) {
      for (const e of await sender.list(r.path)) {
        if (planned.has(e.path) || keep?.(e)) continue;
        planned.add(e.path);
        if (e.kind === 'dir') dirs.push({ op: 'mkdir', path: e.path, entry: e });
        else files.push({ entry: e, force: true });
      }
    }
    if (dirs.length > 0) {
      const res = await receiver.apply(dirs);
      dirs.forEach((op, i) => {
        const r = res[i]!;
        const entry = (op as Extract<Op, { op: 'mkdir' }>).entry;
        if (!r.ok) {
          problem(op.path, r.message);
          return;
        }
        summary.dirsCreated++;
        ev?.change?.('mkdir', op.path);
        settleDirs.push(entry);
        dirRecords.push({ kind: 'put', entry, replaceBelow: false });
      });
    }
    await records.flush(true);
    await transfer(files, sender, receiver, opts, summary, records, wasDir);
  }

  // 6. Delayed deletes (--delete-delay), then sources removed (--remove-after-transfer).
  await records.flush(true);
  await runDeletes(delayed);
  if (opts.removeAfterTransfer) await removeSources(sender, records, summary);

  for (const p of senderForget) records.push({ kind: 'remove', path: p });
  for (const p of plan.forget) records.push({ kind: 'remove', path: p });
  if (plan.forget.length > 0)
    await receiver.record(plan.forget.map((p) => ({ kind: 'remove', path: p })));
  await receiver.settle(settleDirs);
  records.push(...dirRecords);
  await records.close();
  summary.unchanged &&= plan.ops.length === 0 && restores.length === 0;
}

/** The plan's sends, one at a time (the pump reads them as it cuts batches). */
function sendsOf(plan: Plan): Iterable<SendItem> {
  return {
    *[Symbol.iterator]() {
      // A send op is a SendItem as it is (entry, expect). Perf: no object per file sent.
      for (const o of plan.ops) if (o.op === 'send') yield o;
    },
  };
}

/** Files placed in this run, per run (its Recorder), for --remove-after-transfer. */
const sentFiles = new WeakMap<Recorder, Entry[]>();

/**
 * --remove-after-transfer: each file placed at the receiver in this run is removed at the
 * sender if it is still what was sent (a file changed meanwhile stays), and the sender
 * forgets it, so the removal never propagates as a delete. The receiver keeps its copy
 * and its record.
 */
async function removeSources(
  sender: Endpoint,
  records: Recorder,
  summary: RunSummary,
): Promise<void> {
  const files = sentFiles.get(records) ?? [];
  summary.removedAtSender = 0;
  for (let i = 0; i < files.length; i += 1024) {
    const batch = files.slice(i, i + 1024);
    const res = await sender.apply(
      batch.map((e) => ({ op: 'delete', path: e.path, expect: e }) as Op),
    );
    res.forEach((r, k) => {
      const path = batch[k]!.path;
      if (r.ok && r.note === undefined) {
        summary.removedAtSender!++;
        records.push({ kind: 'remove', path });
      } else if (r.ok) {
        summary.notes.push({ path, message: `not removed at the sender: ${r.note}` });
      } else {
        summary.problems.push({ path, message: `not removed at the sender: ${r.message}` });
      }
    });
  }
}

async function transfer(
  items: Iterable<SendItem>,
  sender: Endpoint,
  receiver: Endpoint,
  opts: RunOptions,
  summary: RunSummary,
  records: Recorder,
  wasDir: (path: string) => boolean,
  gate?: DirGate,
): Promise<void> {
  let files = 0;
  let size = 0;
  // Only big files can resume: the list for planResume holds those, not every send.
  const big: Entry[] = [];
  for (const i of items) {
    files++;
    size += i.entry.size;
    if (isChunked(i.entry)) big.push(i.entry);
  }
  if (files === 0) return;
  // Big files interrupted by an earlier run: only the pieces the receiver lacks are sent.
  const resume = await planResume(sender, receiver, big);
  const saved = (path: string): number => resume.savedBytes.get(path) ?? 0;
  let savedTotal = 0;
  for (const n of resume.savedBytes.values()) savedTotal += n;
  opts.events?.planned?.(files, size - savedTotal);
  await pump(sender, receiver, items, {
    skip: resume.skip,
    limiter: opts.limiter,
    lanes: opts.lanes,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.events?.bytes ? { onBytes: opts.events.bytes } : {}),
    ...(gate ? { placeable: (segments: readonly Segment[]) => gate.ready(segments) } : {}),
    onResults: async (results, entryOf) => {
      for (const r of results) {
        const entry = entryOf(r.path)!;
        if (r.ok) {
          if (entry.kind === 'file') {
            summary.filesSent++;
            summary.bytesSent += entry.size - saved(r.path);
            if (saved(r.path) > 0)
              summary.bytesResumed = (summary.bytesResumed ?? 0) + saved(r.path);
          } else summary.linksSent++;
          opts.events?.change?.('send', r.path);
          if (r.warning !== undefined) {
            summary.warnings.push({ path: r.path, message: r.warning });
            opts.events?.problem?.(r.path, r.warning, 'warning');
          }
          if (entry.kind === 'file') sentFiles.get(records)?.push(entry);
          const e = r.digest !== undefined ? withDigest(entry, r.digest) : entry;
          records.push({ kind: 'put', entry: e, replaceBelow: wasDir(r.path) });
        } else if (r.vanished) {
          summary.notes.push({ path: r.path, message: 'vanished at the sender during the sync' });
        } else {
          summary.problems.push({ path: r.path, message: r.message });
          opts.events?.problem?.(r.path, r.message, 'error');
          records.fail(r.path, r.message);
        }
      }
      await records.flush();
    },
  });
}
