/**
 * Logging in to a real async-server through the real CLI: every method, good and bad; a
 * failure says nothing about which part was wrong; host certificates are pinned.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { asyncCli, describeTree, tmp, writeTree } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { SERVER_BIN, asyncTo, passwordHash, startDaemon, waitFor } from './daemon.js';

function sshKey(dir: string, type: 'ed25519' | 'rsa', name: string): string {
  const f = join(dir, name);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    type,
    ...(type === 'rsa' ? ['-b', '2048'] : []),
    '-N',
    '',
    '-f',
    f,
  ]);
  return f;
}

const haveSshKeygen = spawnSync('ssh-keygen', ['-?']).error === undefined;

describe('authentication', () => {
  let d: Daemon;
  let keys: string;
  let token: string;
  let data: string;
  before(async () => {
    keys = tmp();
    const base = tmp('async-daemon-');
    const tok = execFileSync(process.execPath, [SERVER_BIN, 'new-token'], { encoding: 'utf8' });
    token = /token: (\S+)/.exec(tok)![1]!;
    const sha = /sha256 = "([0-9a-f]+)"/.exec(tok)![1]!;
    const old = /sha256 = "([0-9a-f]+)"/.exec(
      execFileSync(process.execPath, [SERVER_BIN, 'new-token'], { encoding: 'utf8' }),
    )![1]!;
    writeFileSync(join(keys, 'expired-token'), '');
    let authorized = '';
    if (haveSshKeygen) {
      sshKey(keys, 'ed25519', 'ed');
      sshKey(keys, 'rsa', 'rsa');
      sshKey(keys, 'ed25519', 'stranger');
      authorized = `${readFileSync(join(keys, 'ed.pub'), 'utf8')}${readFileSync(join(keys, 'rsa.pub'), 'utf8')}`;
    }
    writeFileSync(join(keys, 'authorized_keys'), authorized);
    const oldTok = /token: (\S+)/.exec(
      execFileSync(process.execPath, [SERVER_BIN, 'new-token'], { encoding: 'utf8' }),
    );
    void oldTok;
    const expiredTok = execFileSync(process.execPath, [SERVER_BIN, 'new-token'], {
      encoding: 'utf8',
    });
    writeFileSync(join(keys, 'expired-token'), /token: (\S+)/.exec(expiredTok)![1]!);
    const expiredSha = /sha256 = "([0-9a-f]+)"/.exec(expiredTok)![1]!;
    d = await startDaemon({
      base,
      users: [
        '[users.alice]',
        `docroot = "${join(base, 'alice')}"`,
        `password = "${passwordHash()}"`,
        `tokens = [{ sha256 = "${sha}" }, { sha256 = "${old}", expires = 2099-01-01T00:00:00Z }, { sha256 = "${expiredSha}", expires = 2001-01-01T00:00:00Z }]`,
        `authorized_keys = "${join(keys, 'authorized_keys')}"`,
        '[users.bob]',
        `docroot = "${join(base, 'alice')}"`,
        `password = "${passwordHash()}"`,
        'sync = false',
      ].join('\n'),
    });
    data = tmp();
    writeTree(data, { 'a.txt': 'hello', 'sub/b.txt': 'world' });
  });
  after(() => d.stop());

  const run = (name: string, remote: string, extra: string[], env: NodeJS.ProcessEnv) =>
    asyncTo(d, remote, ['-N', name, '-d', data, '--create-dir', ...extra], env);

  test('password from ASPERA_SCP_PASS syncs; a wrong one fails with a message that names no part', () => {
    const ok = run('pw', 'alice@127.0.0.1:/pw', [], { ASPERA_SCP_PASS: 'secret' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(describeTree(join(d.root, 'alice', 'pw')), describeTree(data));
    const bad = run('pw', 'alice@127.0.0.1:/pw', [], { ASPERA_SCP_PASS: 'wrong' });
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /Authentication failed at peer alice@127\.0\.0\.1/);
    const unknown = run('pw', 'mallory@127.0.0.1:/pw', [], { ASPERA_SCP_PASS: 'secret' });
    assert.equal(unknown.code, 3);
    // The same words whether the user or the password was wrong.
    assert.equal(bad.stderr.replace('alice', 'X'), unknown.stderr.replace('mallory', 'X'));
  });

  test('token from -W and ASPERA_SCP_TOKEN names its own user; wrong and expired tokens fail', () => {
    const a = run('tok', '127.0.0.1:/tok', ['-W', token], {});
    assert.equal(a.code, 0, a.stderr);
    const b = run('tok', '127.0.0.1:/tok', [], { ASPERA_SCP_TOKEN: token });
    assert.equal(b.code, 0, b.stderr);
    const bad = run('tok', '127.0.0.1:/tok', ['-W', `${token}x`], {});
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /Authentication failed/);
    const expired = readFileSync(join(keys, 'expired-token'), 'utf8');
    const ex = run('tok', '127.0.0.1:/tok', ['-W', expired], {});
    assert.equal(ex.code, 3);
    assert.match(ex.stderr, /Authentication failed/);
    const basic = `Basic ${Buffer.from('alice:secret').toString('base64')}`;
    const c = run('tok', '127.0.0.1:/tok', ['-W', basic], {});
    assert.equal(c.code, 0, c.stderr);
    const badBasic = run(
      'tok',
      '127.0.0.1:/tok',
      ['-W', `Basic ${Buffer.from('alice:nope').toString('base64')}`],
      {},
    );
    assert.equal(badBasic.code, 3);
    const garbage = run('tok', '127.0.0.1:/tok', ['-W', 'Basic %%% not a token'], {});
    assert.equal(garbage.code, 3);
  });

  test(
    'SSH keys: ed25519 and RSA in authorized_keys log in; an unknown key does not',
    { skip: !haveSshKeygen },
    () => {
      const ed = run('key', 'alice@127.0.0.1:/key', ['-i', join(keys, 'ed')], {});
      assert.equal(ed.code, 0, ed.stderr);
      const rsa = run('key', 'alice@127.0.0.1:/key', ['-i', join(keys, 'rsa')], {});
      assert.equal(rsa.code, 0, rsa.stderr);
      // Repeated -i: the first key is unknown, the second is accepted.
      const both = run(
        'key',
        'alice@127.0.0.1:/key',
        ['-i', join(keys, 'stranger'), '-i', join(keys, 'ed')],
        {},
      );
      assert.equal(both.code, 0, both.stderr);
      const stranger = run('key', 'alice@127.0.0.1:/key', ['-i', join(keys, 'stranger')], {});
      assert.equal(stranger.code, 3);
      assert.match(stranger.stderr, /Authentication failed/);
      const pub = run('key', 'alice@127.0.0.1:/key', ['-i', join(keys, 'ed.pub')], {});
      assert.equal(pub.code, 3);
      assert.match(pub.stderr, /not a private key/);
    },
  );

  test('a user without sync enabled is told so after logging in', () => {
    const r = run('off', 'bob@127.0.0.1:/off', [], { ASPERA_SCP_PASS: 'secret' });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Sync is not enabled for user 'bob'/);
  });

  test('no credentials at all is a clear error', () => {
    const r = asyncCli(['-N', 'x', '-d', data, '-r', '127.0.0.1:/x', '-P', String(d.port)], {
      env: { ASPERA_SCP_PASS: '', ASPERA_SCP_TOKEN: '' },
    });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /No credentials/);
  });

  test('first contact needs --accept-new-host-key in batch mode; a changed certificate is refused loudly', () => {
    const kh = join(tmp(), 'known_hosts');
    const base = [
      '-N',
      'kh',
      '-d',
      data,
      '--create-dir',
      '-r',
      'alice@127.0.0.1:/kh',
      '-P',
      String(d.port),
      '--known-hosts',
      kh,
    ];
    const first = asyncCli(base, { env: { ASPERA_SCP_PASS: 'secret' } });
    assert.equal(first.code, 3);
    assert.match(first.stderr, /is not in .*known_hosts; its certificate fingerprint is SHA256:/);
    assert.match(first.stderr, /--accept-new-host-key/);
    const ok = asyncCli([...base, '--accept-new-host-key'], { env: { ASPERA_SCP_PASS: 'secret' } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(readFileSync(kh, 'utf8'), `127.0.0.1:${d.port} ${d.fingerprint}\n`);
    writeFileSync(kh, `127.0.0.1:${d.port} SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n`);
    const changed = asyncCli([...base, '--accept-new-host-key'], {
      env: { ASPERA_SCP_PASS: 'secret' },
    });
    assert.equal(changed.code, 3);
    assert.match(changed.stderr, /WARNING: THE PEER DAEMON CERTIFICATE HAS CHANGED/);
    assert.match(changed.stderr, /no password, token or key signature left this machine/);
  });

  test('failed logins from one source are slowed down; the daemon logs them', async () => {
    const t0 = performance.now();
    for (let i = 0; i < 4; i++)
      run('slow', 'alice@127.0.0.1:/slow', [], { ASPERA_SCP_PASS: 'nope' });
    const slow = performance.now() - t0;
    // With auth_backoff_ms = 20 the 4th failure waits 160 ms before and after: measurable, small.
    assert.ok(slow > 20 + 40 + 80 + 160, `failures took ${slow} ms`);
    await waitFor(() => /login failed for 'alice'/.test(d.log()));
    const ok = run('slow', 'alice@127.0.0.1:/slow', [], { ASPERA_SCP_PASS: 'secret' });
    assert.equal(ok.code, 0, ok.stderr);
  });
});
