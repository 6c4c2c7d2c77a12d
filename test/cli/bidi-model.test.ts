/**
 * Model-based randomized test of bidirectional sync: two replicas, random operations
 * (create, modify, delete, rename, mkdir, rmdir, chmod, touch, symlink, and hand resolutions of
 * conflicts) on either side between runs, the engine run in process after each batch.
 *
 * After every run:
 *   1. every path is the same on both sides (kind, content, link target, mode), or it or a
 *      parent is in Conflict;
 *   2. no content the model says must exist is missing: every version a user wrote and
 *      did not overwrite or delete himself is still somewhere on one side;
 *   3. no run reports a problem.
 *
 * Seeded and reproducible: BIDI_MODEL_SEED=n picks the seed, BIDI_MODEL_STEPS=n the number
 * of operations (2,000 by default in npm test; run longer with e.g. 20000). A failure names
 * the seed and step.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ConflictPolicy } from '../../src/core/reconcile-bidi.js';
import { runLocalPeerSession } from '../../src/engine/session.js';
import { WorkPool } from '../../src/hash/pool.js';
import { describeTree, tmp } from '../helpers.js';

const SEED = Number(process.env.BIDI_MODEL_SEED ?? 20261121);
const STEPS = Number(process.env.BIDI_MODEL_STEPS ?? 2000);

/** mulberry32: small, fast, good enough to drive a test, and reproducible from a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['a', 'b', 'c.txt', 'd'];
const DIRS = ['x', 'y', 'z'];
const SENTINEL = 'keep.txt';

interface Node {
  path: string;
  kind: 'file' | 'dir' | 'symlink';
}

function listAll(root: string): Node[] {
  const out: Node[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel)).sort()) {
      if (name === '.private-asp') continue;
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, p));
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
      out.push({ path: p, kind });
      if (kind === 'dir') walk(p);
    }
  };
  walk('');
  return out;
}

function contentsBelow(root: string, path: string): string[] {
  const abs = join(root, path);
  const st = lstatSync(abs);
  if (st.isFile()) return [readFileSync(abs, 'utf8')];
  if (!st.isDirectory()) return [];
  return readdirSync(abs).flatMap((n) => contentsBelow(root, `${path}/${n}`));
}

/** Exists, without following a symbolic link (a dangling link is present too). */
function lexists(abs: string): boolean {
  try {
    lstatSync(abs);
    return true;
  } catch {
    return false;
  }
}

function contentsByPath(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const x of listAll(root))
    if (x.kind === 'file') out.set(x.path, readFileSync(join(root, x.path), 'utf8'));
  return out;
}

/**
 * Perf: hundreds of runs each checkpoint two SQLite databases (an fsync each); on tmpfs
 * that costs nothing, so the test measures the engine, not the disk. Falls back to the
 * usual temp directory where /dev/shm does not exist.
 */
function fastTmp(): string {
  if (!existsSync('/dev/shm')) return tmp('async-bidi-model-');
  const d = mkdtempSync('/dev/shm/async-bidi-model-');
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('bidi model-based randomized test', () => {
  const pool = new WorkPool(2);
  after(() => pool.close());

  test(`${STEPS} random operations on two replicas stay equal or in conflict (seed ${SEED})`, async () => {
    const rand = rng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const root = fastTmp();
    const sides = { local: join(root, 'l'), remote: join(root, 'r') };
    mkdirSync(sides.local);
    mkdirSync(sides.remote);
    writeFileSync(join(sides.local, SENTINEL), 'sentinel');
    /** Contents that must exist somewhere: written by a user, not overwritten or deleted. */
    const required = new Set<string>(['sentinel']);
    let seq = 0;
    let conflicts = new Set<string>();
    let runs = 0;
    let conflictRuns = 0;
    const fresh = (): string => `v${++seq}-${Math.floor(rand() * 1e6)}`;
    const dropBelow = (dir: string, path: string): void => {
      for (const c of contentsBelow(dir, path)) required.delete(c);
    };

    const step = (n: number): string => {
      const sideName = rand() < 0.5 ? 'local' : 'remote';
      const dir = sides[sideName];
      const nodes = listAll(dir).filter((x) => x.path !== SENTINEL);
      const dirs = ['', ...nodes.filter((x) => x.kind === 'dir').map((x) => x.path)];
      const files = nodes.filter((x) => x.kind === 'file');
      const newPath = (kind: 'file' | 'dir'): string | undefined => {
        const parent = pick(dirs);
        if (parent.split('/').length >= 3) return undefined;
        const name = kind === 'dir' ? pick(DIRS) : pick(NAMES);
        const p = parent === '' ? name : `${parent}/${name}`;
        return lexists(join(dir, p)) ? undefined : p;
      };
      const r = rand();
      // Resolve a conflict by hand now and then, as a user would.
      if (conflicts.size > 0 && r < 0.1) {
        const c = pick([...conflicts]);
        const mine = join(dir, c);
        const theirs = join(sides[sideName === 'local' ? 'remote' : 'local'], c);
        if (!lexists(mine) || !lexists(theirs)) return 'resolve: nothing';
        const how = rand();
        if (how < 0.4 && lstatSync(theirs).isFile() && lstatSync(mine).isFile()) {
          dropBelow(dir, c);
          const text = readFileSync(theirs, 'utf8');
          writeFileSync(mine, text);
          return `resolve ${c} at ${sideName}: made equal`;
        }
        if (how < 0.8) {
          dropBelow(dir, c);
          rmSync(mine, { recursive: true });
          return `resolve ${c} at ${sideName}: deleted`;
        }
        const to = `${c}.mine${n}`;
        renameSync(mine, join(dir, to));
        return `resolve ${c} at ${sideName}: renamed to ${to}`;
      }
      const op = pick([
        'create',
        'create',
        'modify',
        'modify',
        'delete',
        'rename',
        'mkdir',
        'rmdir',
        'chmod',
        'touch',
        'symlink',
      ]);
      switch (op) {
        case 'create': {
          const p = newPath('file');
          if (!p) return 'create: no room';
          const v = fresh();
          writeFileSync(join(dir, p), v);
          required.add(v);
          return `create ${sideName}:${p}`;
        }
        case 'modify': {
          if (files.length === 0) return 'modify: none';
          const f = pick(files);
          dropBelow(dir, f.path);
          const v = fresh();
          writeFileSync(join(dir, f.path), v);
          required.add(v);
          return `modify ${sideName}:${f.path}`;
        }
        case 'delete': {
          if (files.length === 0) return 'delete: none';
          const f = pick(files);
          dropBelow(dir, f.path);
          rmSync(join(dir, f.path));
          return `delete ${sideName}:${f.path}`;
        }
        case 'rename': {
          if (nodes.length === 0) return 'rename: none';
          const f = pick(nodes);
          const p = newPath(f.kind === 'dir' ? 'dir' : 'file');
          if (!p || p === f.path || p.startsWith(`${f.path}/`)) return 'rename: no target';
          renameSync(join(dir, f.path), join(dir, p));
          return `rename ${sideName}:${f.path} -> ${p}`;
        }
        case 'mkdir': {
          const p = newPath('dir');
          if (!p) return 'mkdir: no room';
          mkdirSync(join(dir, p));
          return `mkdir ${sideName}:${p}`;
        }
        case 'rmdir': {
          const ds = nodes.filter((x) => x.kind === 'dir');
          if (ds.length === 0) return 'rmdir: none';
          const d = pick(ds);
          dropBelow(dir, d.path);
          rmSync(join(dir, d.path), { recursive: true });
          return `rmdir ${sideName}:${d.path}`;
        }
        case 'chmod': {
          if (files.length === 0) return 'chmod: none';
          const f = pick(files);
          chmodSync(join(dir, f.path), rand() < 0.5 ? 0o600 : 0o644);
          return `chmod ${sideName}:${f.path}`;
        }
        case 'symlink': {
          const p = newPath('file');
          if (!p) return 'symlink: no room';
          const target = pick(['a', '../b', '/nowhere', `t${n}`]);
          symlinkSync(target, join(dir, p));
          return `symlink ${sideName}:${p} -> ${target}`;
        }
        default: {
          if (files.length === 0) return 'touch: none';
          const f = pick(files);
          const t = 1_700_000_000 + Math.floor(rand() * 1e6);
          utimesSync(join(dir, f.path), t, t);
          return `touch ${sideName}:${f.path}`;
        }
      }
    };

    const history: string[] = [];
    const where = (n: number): string =>
      `seed ${SEED}, step ${n}; last operations:\n  ${history.slice(-12).join('\n  ')}`;
    for (let n = 1; n <= STEPS;) {
      const batch = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < batch && n <= STEPS; k++, n++) history.push(`${n}: ${step(n)}`);
      const policy: ConflictPolicy =
        rand() < 0.8 ? 'conflict' : pick(['keep-both', 'newer', 'local']);
      history.push(`run (${policy})`);
      // A policy that picks a winner discards the loser by design: remember what each side
      // held, to release the loser's version from the model below.
      const before = { local: contentsByPath(sides.local), remote: contentsByPath(sides.remote) };
      const summary = await runLocalPeerSession({
        name: 'model',
        localDir: sides.local,
        remoteDir: sides.remote,
        direction: 'bidi',
        reset: false,
        createDir: false,
        overwrite: 'always',
        conflictPolicy: policy,
        preserveMtime: true,
        preserveUid: false,
        preserveGid: false,
        transferThreads: 2,
        pool,
      });
      runs++;
      for (const note of summary.notes) {
        if (!/^conflict resolved/.test(note.message)) continue;
        for (const side of [before.local, before.remote]) {
          const v = side.get(note.path);
          if (v !== undefined) required.delete(v);
        }
        for (const d of [sides.local, sides.remote]) {
          const abs = join(d, note.path);
          if (lexists(abs) && lstatSync(abs).isFile()) required.add(readFileSync(abs, 'utf8'));
        }
      }
      assert.deepEqual(summary.problems, [], `problems after ${where(n)}`);
      conflicts = new Set(summary.conflicts.map((c) => c.path));
      if (conflicts.size > 0) conflictRuns++;
      const inConflict = (p: string): boolean =>
        [...conflicts].some((c) => p === c || p.startsWith(`${c}/`));
      const l = describeTree(sides.local);
      const r = describeTree(sides.remote);
      for (const p of new Set([...Object.keys(l), ...Object.keys(r)])) {
        if (inConflict(p)) continue;
        assert.deepEqual(l[p], r[p], `${p} differs between the sides after ${where(n)}`);
      }
      const present = new Set<string>();
      for (const d of [sides.local, sides.remote])
        for (const x of listAll(d))
          if (x.kind === 'file') present.add(readFileSync(join(d, x.path), 'utf8'));
      for (const v of required)
        assert.ok(present.has(v), `content ${v} was lost after ${where(n)}`);
    }
    // The test must have exercised conflicts, not only quiet propagation.
    assert.ok(runs > STEPS / 5, `only ${runs} runs`);
    assert.ok(conflictRuns > 0, 'no run ever had a conflict: the generator is too tame');
  });
});
