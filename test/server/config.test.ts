/**
 * Starting the daemon with bad input: a configuration with a typo, bad values, a port in
 * use. Each stops with a message naming what is wrong, and the documented exit code.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli, tmp } from '../helpers.js';
import { SERVER_BIN, startDaemon } from './daemon.js';

function withConfig(text: string): { code: number; stdout: string; stderr: string } {
  const dir = tmp();
  const file = join(dir, 'server.toml');
  writeFileSync(file, text.replaceAll('@DIR@', dir));
  return runCli(SERVER_BIN, ['--config', file, '--check']);
}

describe('async-server configuration', () => {
  const table: [string, string, RegExp][] = [
    [
      'a typo in a user key',
      '[users.alice]\ndocrot = "@DIR@"\n',
      /users\.alice\.docrot: unknown key; did you mean docroot\?/,
    ],
    [
      'a typo in a server key',
      '[server]\nprot = 1\n[users.a]\ndocroot = "@DIR@"\n',
      /server\.prot: unknown key; did you mean port\?/,
    ],
    ['a missing docroot', '[users.alice]\nsync = true\n', /users\.alice\.docroot: is required/],
    [
      'a docroot that does not exist',
      '[users.alice]\ndocroot = "@DIR@/nope"\n',
      /users\.alice\.docroot: .*nope cannot be used: no such file/,
    ],
    [
      'a clear-text password',
      '[users.alice]\ndocroot = "@DIR@"\npassword = "hunter2"\n',
      /users\.alice\.password: must be a hash made by `async-server hash-password`/,
    ],
    [
      'a bad mode',
      '[users.alice]\ndocroot = "@DIR@"\nfile_create_mode = "rw-r--r--"\n',
      /file_create_mode: 'rw-r--r--' is not an octal mode/,
    ],
    [
      'a bad port',
      '[server]\nport = 70000\n[users.a]\ndocroot = "@DIR@"\n',
      /server\.port: must be a whole number from 0 to 65535/,
    ],
    [
      'plaintext on a public address',
      '[server]\nlisten = "0.0.0.0"\nplaintext = true\n[users.a]\ndocroot = "@DIR@"\n',
      /server\.plaintext: plaintext \(h2c\) is allowed on loopback addresses only/,
    ],
    [
      'a malformed token hash',
      '[users.a]\ndocroot = "@DIR@"\ntokens = [{ sha256 = "abc" }]\n',
      /users\.a\.tokens\[0\]\.sha256: must be 64 lowercase hex digits/,
    ],
    [
      'a filter rule without its sign',
      '[users.a]\ndocroot = "@DIR@"\nfilters = ["- *.tmp", "*.log"]\n',
      /users\.a\.filters\[1\]: '\*\.log' is not a rule: write "- PATTERN" to exclude/,
    ],
    [
      'a malformed filter pattern',
      '[users.a]\ndocroot = "@DIR@"\nfilters = ["- [abc"]\n',
      /users\.a\.filters\[0\]: '- \[abc': an unclosed '\['/,
    ],
    [
      'filters that are not a list',
      '[users.a]\ndocroot = "@DIR@"\nfilters = "- *.tmp"\n',
      /users\.a\.filters: must be an array of rules/,
    ],
    ['not TOML at all', '[users.a\ndocroot = 1', /not valid TOML \(line 1/],
    ['no user', '[server]\nport = 1234\n', /users: no user is configured/],
  ];
  for (const [what, text, msg] of table) {
    test(`${what} is refused with exit 2, naming the key`, () => {
      const r = withConfig(text);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('a valid configuration passes --check', () => {
    const r = withConfig('[users.alice]\ndocroot = "@DIR@"\nfile_create_mode = "0640"\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok \(1 users\)/);
  });

  test('a port in use stops the daemon with exit 3 and says so', async () => {
    const d = await startDaemon();
    try {
      const base = tmp();
      const file = join(base, 'server.toml');
      writeFileSync(file, `[server]\nport = ${d.port}\n[users.a]\ndocroot = "${base}"\n`);
      const r = runCli(SERVER_BIN, ['--config', file]);
      assert.equal(r.code, 3);
      assert.match(
        r.stderr,
        new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${d.port}: the address is already in use`),
      );
    } finally {
      await d.stop();
    }
  });

  test('a missing --config is a usage error', () => {
    const r = runCli(SERVER_BIN, []);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Missing the configuration file/);
  });
});
