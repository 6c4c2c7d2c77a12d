/**
 * Extended attributes and POSIX ACLs of one path (--preserve-xattrs, --preserve-acls).
 *
 * Node has no xattr API. @napi-rs/xattr is a maintained N-API binding with prebuilt
 * binaries for Linux and macOS in the npm registry (no compiler at install time), and it
 * works on the calls' own errno codes, so a file system that refuses attributes gives a
 * clear per-name warning. It is loaded only when one of the options is on.
 *
 * On Linux a POSIX ACL is the xattr system.posix_acl_access (and, for a directory, its
 * default ACL in system.posix_acl_default): --preserve-acls carries exactly those names,
 * --preserve-xattrs every other name. Values travel as base64 in canonical JSON (names
 * sorted), which is also what the snapshot stores, so an attribute-only change is found
 * by comparing two strings and sent without the file's data.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { AsyncError, errnoCode } from '../errors.js';

interface XattrBinding {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Buffer): void;
  removeAttributeSync(path: string, name: string): void;
}

let binding: XattrBinding | undefined;
function xattr(): XattrBinding {
  binding ??= createRequire(import.meta.url)('@napi-rs/xattr') as XattrBinding;
  return binding;
}

/**
 * Loads the binding now, so that a build without it (the native-free bundle, or a host
 * where the prebuilt binary does not load) refuses --preserve-xattrs / --preserve-acls
 * before the run starts, with a message, instead of failing mid-run.
 */
export function assertXattrSupport(option: string): void {
  try {
    xattr();
  } catch (e) {
    throw new AsyncError(
      'ERR_UNSUPPORTED_OPTION',
      `${option} needs the @napi-rs/xattr native module, which this build of async cannot load (${
        e instanceof Error ? e.message.split('\n')[0] : String(e)
      }).`,
      'Use the npm package (npm install) on this host for extended attributes and ACLs, or leave the option out; the native-free bundle has no native modules.',
    );
  }
}

export interface XattrSelection {
  readonly xattrs: boolean;
  readonly acls: boolean;
}

const ACL_NAMES = new Set(['system.posix_acl_access', 'system.posix_acl_default']);

function selected(name: string, sel: XattrSelection): boolean {
  return ACL_NAMES.has(name) ? sel.acls : sel.xattrs;
}

const ERRNO_NAME = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** The binding reports "Operation not supported (os error 95)": the errno name of that. */
function code(e: unknown): string {
  const m = /\(os error (\d+)\)/.exec(e instanceof Error ? e.message : String(e));
  return (m ? ERRNO_NAME.get(Number(m[1])) : errnoCode(e)) ?? 'EIO';
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/ \(os error \d+\)$/, '');
}

/** Errors that mean "this file system does not do that": a warning, never a failure. */
const REFUSED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EACCES', 'ENOSPC', 'E2BIG', 'ERANGE']);

/**
 * The selected attributes of `abs` as canonical JSON, or undefined when it has none or
 * the file system keeps none.
 */
export function readXattrs(abs: string, sel: XattrSelection): string | undefined {
  let names: string[];
  try {
    names = xattr().listAttributesSync(abs);
  } catch (e) {
    if (REFUSED.has(code(e)) || code(e) === 'ENOENT') return undefined;
    throw e;
  }
  const out: Record<string, string> = {};
  for (const name of names.filter((n) => selected(n, sel)).sort()) {
    try {
      const v = xattr().getAttributeSync(abs, name);
      if (v !== null) out[name] = Buffer.from(v).toString('base64');
    } catch (e) {
      if (code(e) === 'ENODATA' || REFUSED.has(code(e))) continue;
      throw e;
    }
  }
  return Object.keys(out).length > 0 ? JSON.stringify(out) : undefined;
}

/**
 * Makes the selected attributes of `abs` equal to `wanted`: sets what differs, removes
 * selected names that are not wanted. Returns a warning naming what could not be set (the
 * file itself is still placed), or undefined.
 */
export function writeXattrs(
  abs: string,
  wanted: string | undefined,
  sel: XattrSelection,
): string | undefined {
  const want = wanted !== undefined ? (JSON.parse(wanted) as Record<string, string>) : {};
  const failed: string[] = [];
  let have: Record<string, string> = {};
  try {
    const cur = readXattrs(abs, sel);
    if (cur !== undefined) have = JSON.parse(cur) as Record<string, string>;
  } catch {
    // Unreadable attributes: set what is wanted and let each call report.
  }
  for (const [name, value] of Object.entries(want)) {
    if (have[name] === value) continue;
    try {
      xattr().setAttributeSync(abs, name, Buffer.from(value, 'base64'));
    } catch (e) {
      if (!REFUSED.has(code(e))) throw e;
      failed.push(`${name} (${message(e).toLowerCase()}, ${code(e)})`);
    }
  }
  for (const name of Object.keys(have)) {
    if (name in want) continue;
    try {
      xattr().removeAttributeSync(abs, name);
    } catch (e) {
      if (code(e) !== 'ENODATA' && !REFUSED.has(code(e))) throw e;
    }
  }
  return failed.length > 0
    ? `extended attributes not preserved: ${failed.join(', ')}; the file itself was synced`
    : undefined;
}
