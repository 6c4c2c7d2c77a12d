/**
 * One run of a session at a time per database: a lock file holding the owner's pid, created
 * with O_EXCL. A lock left by a process that no longer exists (killed with SIGKILL) is
 * taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { SessionError } from '../errors.js';
import { errnoCode } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

export class SessionLock {
  private constructor(private readonly path: string) {}

  static acquire(path: string, what: string): SessionLock {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new SessionLock(path);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const owner = SessionLock.owner(path);
      if (owner !== undefined && owner !== process.pid && alive(owner)) {
        throw new SessionError(
          'ERR_SESSION_BUSY',
          `${what} is in use by another run (pid ${owner}).`,
          'Wait for it to finish; only one run of a session may use a database at a time.',
        );
      }
      if (owner === process.pid) {
        throw new SessionError(
          'ERR_SESSION_BUSY',
          `${what} is used by both ends of this session.`,
          'Give the two sides different database directories (-b / -B).',
        );
      }
      // Stale: its owner is gone.
      try {
        unlinkSync(path);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
    }
    throw new SessionError('ERR_SESSION_BUSY', `${what}: could not take the session lock ${path}.`);
  }

  /** The pid holding the lock at `path`, if any. */
  static owner(path: string): number | undefined {
    try {
      const pid = Number(readFileSync(path, 'utf8').trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  static isHeld(path: string): boolean {
    const pid = SessionLock.owner(path);
    return pid !== undefined && alive(pid);
  }

  release(): void {
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}
