/**
 * A session from the command line's point of view: builds the two endpoints and the shared
 * worker pool and rate limiter, runs it, and tears everything down. This is the one place
 * that knows whether the peer is local (a plain -r path) or remote.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isWithin } from '../core/paths.js';
import { SessionError } from '../errors.js';
import { LocalEndpoint } from '../endpoint/local.js';
import type { LocalEndpointOptions } from '../endpoint/local.js';
import { ScanThreads } from '../scan/scan-thread.js';
import type { ScanProgress } from '../scan/scanner.js';
import type { Credentials, RemoteTarget } from '../endpoint/remote.js';
import { RemoteEndpoint } from '../endpoint/remote.js';
import { WorkPool } from '../hash/pool.js';
import { TokenBucket, unlimited } from '../transfer/rate-limiter.js';
import type { Direction, PlacementPolicy } from '../endpoint/endpoint.js';
import type { Overwrite } from '../core/reconcile.js';
import type { ConflictPolicy } from '../core/reconcile-bidi.js';
import type { ContinuousOptions, ContinuousSummary } from './continuous.js';
import { runContinuous } from './continuous.js';
import type { RunEvents, RunOptions, RunSummary } from './run.js';
import { runOnce } from './run.js';

export interface SessionConfig {
  readonly name: string;
  readonly localDir: string;
  readonly remoteDir: string;
  readonly direction: Direction;
  readonly reset: boolean;
  readonly createDir: boolean;
  readonly overwrite: Overwrite;
  /** Bidi: how conflicts are settled (default: left as conflicts). */
  readonly conflictPolicy?: ConflictPolicy;
  readonly preserveMtime: boolean;
  readonly preserveUid: boolean;
  readonly preserveGid: boolean;
  readonly targetRate?: number;
  readonly transferThreads: number;
  /** --scan-threads: scans at once in worker threads (default 2); 0 on the main thread. */
  readonly scanThreads?: number;
  /** Hears the progress of each local side's full scan (the display on huge trees). */
  readonly onScanProgress?: (side: 'local' | 'peer', p: ScanProgress) => void;
  /** --local-checksum-threads: size of this host's worker pool (default: one per core). */
  readonly checksumThreads?: number;
  readonly localDbDir?: string;
  readonly remoteDbDir?: string;
  readonly signal?: AbortSignal;
  readonly events?: RunEvents;
  /** A worker pool to reuse (many runs in one process, e.g. tests); closed by its owner. */
  readonly pool?: WorkPool;
  /** Extra placement policy (--preserve-access-time, xattrs, ACLs, --ignore-mode). */
  readonly placement?: Partial<PlacementPolicy>;
  /** One-time run options passed through as they are (filters, deletes, dry run...). */
  readonly run?: Partial<
    Pick<
      RunOptions,
      | 'filters'
      | 'cleanExcluded'
      | 'symlinks'
      | 'keepDirLocal'
      | 'keepDirRemote'
      | 'mountSignatureLocal'
      | 'mountSignatureRemote'
      | 'dryRun'
      | 'ignoreDelete'
      | 'deleteDelay'
      | 'mirror'
      | 'removeAfterTransfer'
      | 'compareContent'
    >
  >;
  /** Set when the peer is a daemon on another host (-r user@host:path). */
  readonly remote?: { readonly target: RemoteTarget; readonly credentials: Credentials };
}

/** Resolves a path through its longest existing prefix, so a dir to be created compares too. */
function realish(p: string): string {
  let cur = resolve(p);
  const tail: string[] = [];
  while (!existsSync(cur)) {
    const up = dirname(cur);
    if (up === cur) break;
    tail.unshift(cur.slice(up.length + (up.endsWith('/') ? 0 : 1)));
    cur = up;
  }
  return [realpathSync(cur), ...tail].join('/').replace(/\/+/g, '/');
}

export function checkLocalPeerDirs(localDir: string, remoteDir: string): void {
  const a = realish(localDir);
  const b = realish(remoteDir);
  const abs = (p: string) => p.replace(/^\//, '');
  if (a === b) {
    throw new SessionError(
      'ERR_DIRS_OVERLAP',
      `The local directory and the peer directory are the same (${a}).`,
      'Give -d and -r two different directories.',
    );
  }
  if (isWithin(abs(b), abs(a)) || isWithin(abs(a), abs(b))) {
    throw new SessionError(
      'ERR_DIRS_OVERLAP',
      `The ${isWithin(abs(b), abs(a)) ? 'peer directory is inside the local' : 'local directory is inside the peer'} directory (${a} and ${b}).`,
      'Syncing a tree into itself would copy it forever: give -d and -r directories that do not contain each other.',
    );
  }
}

/** Runs a session with whichever peer the configuration names: a directory or a daemon. */
export function runSession(cfg: SessionConfig): Promise<RunSummary> {
  return cfg.remote ? runRemotePeerSession(cfg, cfg.remote) : runLocalPeerSession(cfg);
}

export async function runLocalPeerSession(cfg: SessionConfig): Promise<RunSummary> {
  checkLocalPeerDirs(cfg.localDir, cfg.remoteDir);
  const pool = cfg.pool ?? new WorkPool(cfg.checksumThreads);
  try {
    const scans = scanSetup(cfg);
    const local = new LocalEndpoint(pool, 'local', scans('local'));
    const peer = new LocalEndpoint(pool, 'peer', scans('peer'));
    return await runOnce(runOptionsFor(cfg, resolve(cfg.remoteDir), ''), local, peer);
  } finally {
    if (cfg.pool === undefined) await pool.close();
  }
}

async function runRemotePeerSession(
  cfg: SessionConfig,
  remote: NonNullable<SessionConfig['remote']>,
): Promise<RunSummary> {
  const pool = new WorkPool(cfg.checksumThreads);
  let peer: RemoteEndpoint | undefined;
  try {
    peer = await RemoteEndpoint.connect(
      cfg.targetRate !== undefined
        ? { ...remote.target, targetRate: cfg.targetRate }
        : remote.target,
      remote.credentials,
    );
    const local = new LocalEndpoint(pool, 'local', scanSetup(cfg)('local'));
    const t = remote.target;
    // The host alone: a daemon moved to another port still serves the same session.
    return await runOnce(runOptionsFor(cfg, cfg.remoteDir, t.host), local, peer);
  } finally {
    peer?.close();
    await pool.close();
  }
}

/** Continuous mode (-C) with a local peer: runs until cfg.signal aborts or an error stops it. */
export async function runLocalPeerContinuous(
  cfg: SessionConfig,
  copts: ContinuousOptions,
): Promise<ContinuousSummary> {
  checkLocalPeerDirs(cfg.localDir, cfg.remoteDir);
  const pool = cfg.pool ?? new WorkPool(cfg.checksumThreads);
  try {
    const scans = scanSetup(cfg);
    const local = new LocalEndpoint(pool, 'local', scans('local'));
    const peer = new LocalEndpoint(pool, 'peer', scans('peer'));
    return await runContinuous(runOptionsFor(cfg, resolve(cfg.remoteDir), ''), local, peer, copts);
  } finally {
    if (cfg.pool === undefined) await pool.close();
  }
}

/** Continuous mode (-C) with whichever peer the configuration names. */
export function runContinuousSession(
  cfg: SessionConfig,
  copts: ContinuousOptions,
): Promise<ContinuousSummary> {
  return cfg.remote
    ? runRemotePeerContinuous(cfg, cfg.remote, copts)
    : runLocalPeerContinuous(cfg, copts);
}

/**
 * Continuous mode with a peer daemon. The first connection must work (a wrong host or
 * password is a mistake to report at once); a connection lost later is the engine's to
 * retry (engine/continuous.ts): the endpoint reconnects when the session is reopened.
 */
async function runRemotePeerContinuous(
  cfg: SessionConfig,
  remote: NonNullable<SessionConfig['remote']>,
  copts: ContinuousOptions,
): Promise<ContinuousSummary> {
  const pool = cfg.pool ?? new WorkPool();
  let peer: RemoteEndpoint | undefined;
  try {
    peer = await RemoteEndpoint.connect(remote.target, remote.credentials);
    const local = new LocalEndpoint(pool, 'local', scanSetup(cfg)('local'));
    return await runContinuous(
      runOptionsFor(cfg, cfg.remoteDir, remote.target.host),
      local,
      peer,
      copts,
    );
  } finally {
    peer?.close();
    if (cfg.pool === undefined) await pool.close();
  }
}

/** The scan settings of each local endpoint: one set of scan threads for the session. */
function scanSetup(cfg: SessionConfig): (side: 'local' | 'peer') => LocalEndpointOptions {
  const threads = new ScanThreads(cfg.scanThreads);
  const progress = cfg.onScanProgress;
  return (side) => ({
    scanThreads: threads,
    ...(progress ? { onScanProgress: (p: ScanProgress) => progress(side, p) } : {}),
  });
}

/** The engine's options for a session; the peer's directory and host as the identity records them. */
function runOptionsFor(cfg: SessionConfig, remoteDir: string, remoteHost: string): RunOptions {
  return {
    identity: {
      name: cfg.name,
      localDir: resolve(cfg.localDir),
      remoteDir,
      remoteHost,
      direction: cfg.direction,
    },
    localDir: cfg.localDir,
    remoteDir: cfg.remoteDir,
    ...(cfg.localDbDir !== undefined ? { localDbDir: cfg.localDbDir } : {}),
    ...(cfg.remoteDbDir !== undefined ? { remoteDbDir: cfg.remoteDbDir } : {}),
    reset: cfg.reset,
    createDir: cfg.createDir,
    overwrite: cfg.overwrite,
    ...(cfg.conflictPolicy !== undefined ? { conflictPolicy: cfg.conflictPolicy } : {}),
    placement: {
      preserveMtime: cfg.preserveMtime,
      preserveUid: cfg.preserveUid,
      preserveGid: cfg.preserveGid,
      ...cfg.placement,
    },
    limiter: cfg.targetRate !== undefined ? new TokenBucket(cfg.targetRate) : unlimited,
    lanes: cfg.transferThreads,
    ...(cfg.signal ? { signal: cfg.signal } : {}),
    ...(cfg.events ? { events: cfg.events } : {}),
    ...cfg.run,
  };
}
