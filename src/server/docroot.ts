/**
 * Confinement to a docroot: every path a client names is resolved inside it without
 * following a symbolic link in any component. Checked with lstat, one component at a time
 * (Node has no openat): a parent that is a symbolic link, or not a directory, is refused.
 *
 * What this does not close: a local user of the server who swaps a checked directory for a
 * symbolic link between the check and the use (a race of microseconds). Each operation is
 * checked right before it runs, so a link planted earlier is always refused.
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { unsafeRelPathReason } from '../core/paths.js';
import { SessionError, errnoCode } from '../errors.js';

/** A client's directory (-r path, -B, -R): '/' or '' is the docroot itself. */
export function clientDirToRel(text: string): string {
  const parts = text.split('/').filter((s) => s !== '' && s !== '.');
  return parts.join('/');
}

/**
 * Resolves a docroot-relative path to an absolute one, refusing '..', the private directory
 * and any existing component that is a symbolic link or not a directory. Components that do
 * not exist yet are allowed (--create-dir creates them as real directories).
 */
export function resolveDirInside(docroot: string, rel: string, what: string): string {
  if (rel === '') return docroot;
  const bad = unsafeRelPathReason(rel);
  if (bad !== undefined)
    throw new SessionError('ERR_REMOTE_DIR', `${what} is refused by the server: ${bad}.`);
  checkComponents(docroot, rel, true, what);
  return join(docroot, rel);
}

/** Throws unless every existing component of `rel` (the last too when `self`) is a real directory. */
export function checkComponents(root: string, rel: string, self: boolean, what: string): void {
  const segs = rel.split('/');
  const n = self ? segs.length : segs.length - 1;
  let cur = root;
  for (let i = 0; i < n; i++) {
    cur = join(cur, segs[i]!);
    let st;
    try {
      st = lstatSync(cur);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new SessionError(
        'ERR_REMOTE_DIR',
        `${what} is refused by the server: '${segs.slice(0, i + 1).join('/')}' is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; the server never follows links in a path.`,
      );
    }
  }
}

/**
 * Per-call checker of paths inside the sync root. Directories found real are remembered for
 * the rest of one Endpoint call only (a batch of 256 files in one directory costs one lstat
 * per ancestor, not 256), so a link planted between calls is still caught.
 */
export class ParentGuard {
  private readonly ok = new Set<string>();

  constructor(private readonly root: string) {}

  check(path: string, includeSelf = false): void {
    const bad = unsafeRelPathReason(path);
    if (bad !== undefined || path === '') {
      throw new SessionError(
        'ERR_PEER',
        `The client named a refused path '${path}': ${bad ?? 'empty'}.`,
      );
    }
    const segs = path.split('/');
    const n = includeSelf ? segs.length : segs.length - 1;
    let rel = '';
    for (let i = 0; i < n; i++) {
      rel = rel === '' ? segs[i]! : `${rel}/${segs[i]}`;
      if (this.ok.has(rel)) continue;
      let st;
      try {
        st = lstatSync(join(this.root, rel));
      } catch (e) {
        if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
        throw e;
      }
      // A parent that is a plain file makes the operation fail on its own (ENOTDIR, a
      // per-path error); only a link could lead outside the docroot.
      if (!st.isSymbolicLink() && !st.isDirectory()) return;
      if (st.isSymbolicLink()) {
        throw new SessionError(
          'ERR_PEER',
          `Refused '${path}' on the server: '${rel}' is a symbolic link, and the server never reads or writes through one.`,
          'Replace the link with a real directory on the server, or leave that path out.',
        );
      }
      this.ok.add(rel);
    }
  }
}

/**
 * The longest prefix of the relative directory `rel` whose every component is a real
 * directory under `root` (lstat, links not followed): `rel` itself when it is one, else the
 * parent of the first component that is a link or not a directory. A component that does not
 * exist ends the walk there too (its parent's listing shows it gone).
 */
export function realDirPrefix(root: string, rel: string): string {
  if (rel === '') return '';
  const segs = rel.split('/');
  let cur = '';
  for (const seg of segs) {
    const next = cur === '' ? seg : `${cur}/${seg}`;
    let st;
    try {
      st = lstatSync(join(root, next));
    } catch {
      return cur;
    }
    if (st.isSymbolicLink() || !st.isDirectory()) return cur;
    cur = next;
  }
  return cur;
}
