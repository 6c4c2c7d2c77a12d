/**
 * The Endpoint contract: everything the engine asks of one side of a session. The engine
 * never asks whether a side is in this process (LocalEndpoint) or behind the network
 * (RemoteEndpoint): both implement this, and every message is plain data (JSON-safe except
 * for the byte buffers of DataBatch), so each call maps onto one request or stream.
 */
import type { Change } from '../core/change.js';
import type { Entry } from '../core/entry.js';
import type { Op } from '../core/plan.js';
import type { PathState } from '../core/change.js';
import type { Problem, Warning } from '../core/problem.js';
import type { Keep } from '../core/reconcile-bidi.js';
import type { FilterRule } from '../core/filter.js';
import type { ScanStats, SymlinkMode } from '../scan/scanner.js';
import type { Segment } from '../transfer/batches.js';

export type Direction = 'push' | 'pull' | 'bidi';

/** What identifies a session; recorded in both databases and checked on every run. */
export interface SessionIdentity {
  readonly name: string;
  readonly localDir: string;
  readonly remoteDir: string;
  /** '' for the local peer. */
  readonly remoteHost: string;
  readonly direction: Direction;
}

export interface PlacementPolicy {
  readonly preserveMtime: boolean;
  readonly preserveUid: boolean;
  readonly preserveGid: boolean;
  /** --preserve-access-time: set the sender's access time on placed files. */
  readonly preserveAtime?: boolean;
  /** --preserve-xattrs: extended attributes other than POSIX ACLs travel with the entry. */
  readonly preserveXattrs?: boolean;
  /** --preserve-acls: POSIX ACLs (system.posix_acl_access / _default xattrs on Linux). */
  readonly preserveAcls?: boolean;
  /** --ignore-mode: permission bits are neither compared nor set (new files get the umask). */
  readonly ignoreMode?: boolean;
}

export interface SessionSpec {
  readonly identity: SessionIdentity;
  /** Which end of the session this endpoint is. */
  readonly role: 'local' | 'remote';
  /** The sync directory on this endpoint's host, as the user gave it. */
  readonly dir: string;
  /** -b / -B: the database directory; the sync directory when undefined. */
  readonly dbDir?: string;
  /** --create-dir: create the sync directory when it does not exist. */
  readonly createDir: boolean;
  readonly placement: PlacementPolicy;
  /**
   * Include/exclude rules, the same at both ends (see core/filter.ts). The engine sends the
   * peer the client's own rules; a peer with rules of its own puts them first and returns
   * them in Prepared.filters, and the engine prepares the local side with the merged list.
   */
  readonly filters?: readonly FilterRule[];
  /** --clean-excluded: drop the snapshot records of paths the rules exclude. */
  readonly cleanExcluded?: boolean;
  /** -n/--symbolic-links (default copy). */
  readonly symlinks?: SymlinkMode;
  /** --keep-dir-local / --keep-dir-remote: deleted objects move here, keeping their paths. */
  readonly keepDir?: string;
  /** --local/--remote-mount-signature: a file (relative to dir, or absolute) that must exist. */
  readonly mountSignature?: string;
  /** --dry-run: nothing on disk or in the snapshot database changes. */
  readonly dryRun?: boolean;
}

export interface Prepared {
  /** Absolute, resolved sync directory. */
  readonly dir: string;
  readonly dbPath: string;
  readonly dbExisted: boolean;
  /**
   * Rules this side applies before the ones in the spec (a daemon's per-user `filters`).
   * The other side must apply the same merged list, or it would send what this side refuses
   * and record it as synced.
   */
  readonly filters?: readonly FilterRule[];
}

export interface ScanReply {
  readonly changes: Change[];
  readonly problems: Problem[];
  readonly warnings: Warning[];
  readonly stats: ScanStats;
  /** How many records the snapshot held before this scan. */
  readonly snapshotSize: number;
  /** Bidi: decisions stored with `asyncadmin --resolve`, for the next run to apply. */
  readonly resolutions?: readonly { readonly path: string; readonly keep: Keep }[];
}

export type HashReply =
  { readonly ok: true; readonly digest: string } | { readonly ok: false; readonly message: string };

/** Waits until `bytes` more may go on the wire (see Endpoint.write). */
export type Pacer = (bytes: number) => Promise<void>;

/** One piece of one file, as it travels from sender to receiver. */
export interface SegmentData {
  readonly entry: Entry;
  readonly offset: number;
  readonly length: number;
  readonly index: number;
  readonly count: number;
  /** Where this segment's bytes start in the batch's data. */
  readonly start: number;
  /** Piece digests (see hash/digest.ts). */
  readonly pieces: readonly string[];
  /** Set when the sender could not read the file; the receiver drops what it has of it. */
  readonly error?: string;
  /** True when the file vanished at the sender (not an error: the next run deletes it). */
  readonly vanished?: boolean;
  /** The receiver's expected view of the target, from the plan (see core/plan.ts). */
  readonly expect?: Entry | null;
  /** Replace whatever is at the target (restores). */
  readonly force?: boolean;
  /**
   * Resume: piece indices of this file the sender does not send because the receiver holds
   * them for this very source version (its answer to resumable(), checked against the
   * sender's piece digests). Carried by every segment of the file, since any may come first.
   */
  readonly skip?: readonly number[];
}

/** A receiver's verified pieces of a big file, from an earlier run (see core/partial.ts). */
export interface ResumeOffer {
  readonly path: string;
  /** Pieces whose data is durable at the receiver and matched their digest on disk just now. */
  readonly pieces: readonly { readonly index: number; readonly digest: string }[];
}

/** Asks the sender for its digests of some pieces of a file (no data travels). */
export interface PieceRequest {
  readonly entry: Entry;
  readonly indices: readonly number[];
}

/** The sender's digests, in the order asked; not ok when the file changed or is gone. */
export type PieceDigests =
  | { readonly ok: true; readonly digests: readonly string[] }
  | { readonly ok: false; readonly message: string };

export interface DataBatch {
  readonly data: Uint8Array;
  readonly segments: readonly SegmentData[];
}

/** The receiver's word on a file once its last segment arrived (or it failed). */
export type PlaceResult =
  | {
      readonly path: string;
      readonly ok: true;
      readonly digest: string | undefined;
      /** Placed, but something could not be preserved (an xattr the file system refused). */
      readonly warning?: string;
    }
  | {
      readonly path: string;
      readonly ok: false;
      readonly message: string;
      /** Worth trying again next run (a read or write failure), or not (target changed). */
      readonly retry: boolean;
      /** The file vanished at the sender: not an error, the next run propagates the delete. */
      readonly vanished?: boolean;
    };

export type ApplyResult =
  | { readonly ok: true; readonly note?: string; readonly warning?: string }
  | { readonly ok: false; readonly message: string };

/** Snapshot updates the engine sends to the sending side once the receiver confirmed. */
export type RecordUpdate =
  | { readonly kind: 'put'; readonly entry: Entry; readonly replaceBelow: boolean }
  | { readonly kind: 'remove'; readonly path: string }
  | { readonly kind: 'move'; readonly from: string; readonly to: string }
  | {
      readonly kind: 'mark';
      readonly path: string;
      readonly state: PathState;
      readonly message: string;
    }
  /** Bidi: a stored resolution for `path` was applied (or no longer matters): drop it. */
  | { readonly kind: 'resolved'; readonly path: string };

/**
 * Limits a scan to some directories (continuous mode, after change notifications): each is
 * listed and diffed on its own, and a directory found there that the snapshot does not
 * know is crawled in full. The root is always listed too, so an emptied or vanished root
 * still trips the safety checks. Renames between the listed directories are detected as in
 * a full scan.
 */
export interface ScanScope {
  /** Relative directory paths ('' is the root). */
  readonly dirs: readonly string[];
}

/**
 * What a side's change notification reports. Hints, not changes: the engine turns them into
 * a scoped scan, which finds the actual changes against the snapshot.
 */
export type ChangeHint =
  /** These relative paths were created, changed, moved or deleted. */
  | { readonly kind: 'paths'; readonly paths: readonly string[] }
  /** Events may have been lost (queue overflow, a burst too big to track): scan in full. */
  | { readonly kind: 'rescan'; readonly reason: string }
  /**
   * Notification stopped working for this side (the kernel's watch limit, the stream to the
   * peer lost): the engine falls back to periodic full scans and says so.
   */
  | { readonly kind: 'degraded'; readonly message: string; readonly hint: string };

export interface WatchHandle {
  /** Stops notification; no hint is delivered after it resolves. */
  close(): Promise<void>;
}

export interface FinishOptions {
  readonly status: 'ok' | 'partial' | 'failed';
}

export interface Endpoint {
  /** 'local' or 'peer', for messages. */
  readonly label: string;

  /** Validates the directories and says whether this side's snapshot database exists. */
  prepare(spec: SessionSpec): Promise<Prepared>;
  /** Locks the session, opens (or, with reset, rebuilds) the database, checks its identity. */
  open(opts: { readonly reset: boolean }): Promise<void>;

  /** This side's changes since its snapshot: of the whole tree, or of `scope` only. */
  scan(scope?: ScanScope): Promise<ScanReply>;
  /**
   * Continuous mode: watches this side's tree (after prepare()) and calls `onHints` with
   * batches of hints. Resolves once the watch is in place, so a scan started afterwards
   * misses nothing. Optional: an endpoint without it is rescanned periodically instead. A
   * RemoteEndpoint implements it as a server-pushed stream of hint batches (the daemon runs
   * LocalEndpoint.watch on its side); a lost stream is a 'degraded' hint.
   */
  watch?(onHints: (hints: readonly ChangeHint[]) => void): Promise<WatchHandle>;
  /** The current state of a path and everything below it (for restores). */
  list(path: string): Promise<Entry[]>;
  /** Digests of files as they are now. */
  hash(entries: readonly Entry[]): Promise<HashReply[]>;

  /**
   * Sender: reads segments. `pace` (a target rate, -l), when given, is awaited as the bytes
   * cross a wire from this sender: RemoteEndpoint consumes the peer's reply slice by slice,
   * with receive windows sized from the rate so the peer cannot run ahead. A sender in this
   * process ignores it: its bytes move when they are written, and write() paces them.
   */
  read(segments: readonly Segment[], pace?: Pacer): Promise<DataBatch>;
  /**
   * Receiver: stages, verifies and places; answers for every file whose last segment came.
   * `pace`, when given (a target rate, -l), is awaited for each slice of `batch.data` just
   * before that slice leaves for the receiver, so the rate is kept where bytes move rather
   * than per batch (up to 8 MiB): RemoteEndpoint paces its request body in small slices;
   * an in-process receiver paces the whole batch before it writes. Slices add up to the
   * batch's bytes; the pump charges any bytes an implementation did not pace.
   * Resolves once what it placed is committed to this side's snapshot (so is apply(), and
   * settle()): the sender records a path only after that, so a kill -9 at any moment never
   * leaves the sender's snapshot ahead of the receiver's.
   */
  write(batch: DataBatch, pace?: Pacer): Promise<PlaceResult[]>;
  /**
   * Receiver, resume of big files: for each big file about to be sent, the pieces this side
   * kept from an interrupted run of the same source version (size, mtime, inode), each
   * re-verified against its digest on disk. A partial of another version is discarded. An
   * empty answer for a path means "send it all". Optional like watch(): without it (or
   * pieceDigests() at the sender) every file is sent in full. Never changes anything under
   * --dry-run.
   */
  resumable?(files: readonly Entry[]): Promise<ResumeOffer[]>;
  /** Sender, resume of big files: digests of the asked pieces of files as they are now. */
  pieceDigests?(requests: readonly PieceRequest[]): Promise<PieceDigests[]>;
  /**
   * Receiver: renames, deletes, mkdirs and metadata, in the order given. The engine may
   * call it again before an earlier call resolved, never with directories to create: calls
   * in flight at once touch distinct paths, and may take effect in either order.
   */
  apply(ops: readonly Op[]): Promise<ApplyResult[]>;
  /** Receiver: sets the given directories' metadata and records every directory touched. */
  settle(dirs: readonly Entry[]): Promise<void>;

  /**
   * Updates this side's snapshot (the sender's, after the receiver placed). Resolves once
   * the updates of every earlier call are committed; this call's may still be in flight,
   * so an empty call waits for all of them (the engine ends each direction with one).
   */
  record(updates: readonly RecordUpdate[]): Promise<void>;
  /** Records per-path problems this side found. */
  recordProblems(problems: readonly Problem[]): Promise<void>;

  /** Writes the session's end state, releases the lock, closes the database. */
  finish(opts: FinishOptions): Promise<void>;
}
