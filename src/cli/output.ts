/** What `async` prints: one summary line per run, then the paths that need attention. */
import { formatBytes, formatDuration, formatRate } from '../core/units.js';
import type { PlannedChange, RunSummary } from '../engine/run.js';

const MAX_LISTED = 50;

export function summaryLine(name: string, s: RunSummary): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? (s.bytesSent * 8) / secs : 0;
  const parts = [
    `${s.filesSent} files (${formatBytes(s.bytesSent)}) sent`,
    ...(s.bytesResumed ? [`${formatBytes(s.bytesResumed)} resumed`] : []),
    ...(s.linksSent > 0 ? [`${s.linksSent} links`] : []),
    `${s.dirsCreated} dirs created`,
    `${s.renamed} renamed`,
    `${s.deleted} deleted`,
    ...(s.metadataOnly > 0 ? [`${s.metadataOnly} metadata only`] : []),
    ...(s.removedAtSender !== undefined ? [`${s.removedAtSender} removed at the sender`] : []),
    `${s.problems.length} errors`,
    ...(s.conflicts.length > 0 ? [`${s.conflicts.length} conflicts`] : []),
  ];
  return `async: ${name} ${s.direction}: ${parts.join(', ')} in ${formatDuration(s.elapsedMs)} (${formatRate(rate)})`;
}

export function detailLines(s: RunSummary): string[] {
  const out: string[] = [];
  const list = (label: string, items: { path: string; message: string }[]): void => {
    for (const it of items.slice(0, MAX_LISTED))
      out.push(`${label}: ${it.path === '' ? '.' : it.path}: ${it.message}`);
    if (items.length > MAX_LISTED) out.push(`${label}: ... and ${items.length - MAX_LISTED} more`);
  };
  list('error', s.problems);
  list('warning', s.warnings);
  list('note', s.notes);
  return out;
}

/** Bidi: one `/path   CONFLICT` line per path left in conflict (Aspera's format). */
export function conflictLines(s: RunSummary): string[] {
  return s.conflicts.map((c) => `/${c.path}   CONFLICT`);
}

/**
 * -v: one line per change, in the spirit of rsync's --itemize-changes: a code, then the
 * path. `>f` data sent, `cd` directory created, `.m` metadata only, `*deleting`,
 * `>R` renamed (with its old path), `-f` removed at the sender.
 */
export function itemize(
  kind: 'send' | 'mkdir' | 'delete' | 'rename' | 'attrs' | 'remove-source' | 'aside',
  path: string,
  detail?: string,
): string {
  switch (kind) {
    case 'send':
      return `>f ${path}`;
    case 'mkdir':
      return `cd ${path}/`;
    case 'attrs':
      return `.m ${path}`;
    case 'delete':
      return `*deleting ${path}`;
    case 'rename':
      return `>R ${detail ?? '?'} -> ${path}`;
    case 'remove-source':
      return `-f ${path}`;
    case 'aside':
      // keep-both: the losing copy moved aside under a conflict name.
      return `>A ${path} -> ${detail ?? '?'}`;
  }
}

/** --dry-run: the plan, one itemized line per change, with the bytes a send would carry. */
export function planLines(plan: readonly PlannedChange[]): string[] {
  return plan.map((c) => {
    if (c.op === 'restore') return `>f ${c.path}`;
    const line = itemize(c.op, c.path, c.from);
    if (c.op === 'send' && c.kind === 'symlink') return `>L ${c.path}`;
    return c.op === 'send' ? `${line} (${formatBytes(c.size ?? 0)})` : line;
  });
}

export function dryRunLine(name: string, s: RunSummary): string {
  const parts = [
    `${s.filesSent} files (${formatBytes(s.bytesSent)}) to send`,
    ...(s.linksSent > 0 ? [`${s.linksSent} links`] : []),
    `${s.dirsCreated} dirs to create`,
    `${s.renamed} to rename`,
    `${s.deleted} to delete`,
    ...(s.metadataOnly > 0 ? [`${s.metadataOnly} metadata only`] : []),
  ];
  return `async: ${name} ${s.direction} (dry run, nothing changed): ${parts.join(', ')}`;
}

/** --json: one object on stdout, for cron pipelines. Stable keys; sizes in bytes. */
export function jsonSummary(name: string, s: RunSummary, exitCode: number): string {
  return JSON.stringify({
    session: name,
    direction: s.direction,
    dryRun: s.plan !== undefined,
    exitCode,
    ok: exitCode === 0,
    filesSent: s.filesSent,
    bytesSent: s.bytesSent,
    bytesResumed: s.bytesResumed ?? 0,
    linksSent: s.linksSent,
    dirsCreated: s.dirsCreated,
    renamed: s.renamed,
    deleted: s.deleted,
    metadataOnly: s.metadataOnly,
    removedAtSender: s.removedAtSender ?? 0,
    elapsedMs: Math.round(s.elapsedMs),
    errors: s.problems,
    warnings: s.warnings,
    notes: s.notes,
    conflicts: s.conflicts.map((c) => c.path),
    ...(s.plan !== undefined ? { plan: s.plan } : {}),
  });
}

export function jsonError(
  code: string,
  message: string,
  hint: string | undefined,
  exitCode: number,
): string {
  return JSON.stringify({
    ok: false,
    exitCode,
    error: { code, message, ...(hint ? { hint } : {}) },
  });
}
