/**
 * The live progress display of `async`: files and bytes done of the planned total, the
 * current rate and an ETA, redrawn in place. Only on a terminal (stderr is a TTY) and never
 * with -q or --json: a pipe, a log file or a cron mail gets the summary line only.
 *
 * cli-progress draws the bar; the totals grow as the engine plans each batch of transfers
 * (the main pass, then restores), so the bar's total is updated rather than fixed up front.
 *
 * Before that, while the trees are scanned (seconds to minutes for a million files), a
 * second line counts the files and directories scanned so far on both sides and the rate,
 * so a user knows it is working; it goes away when the transfer bar starts.
 */
import cliProgress from 'cli-progress';
import { formatBytes, formatRate } from '../core/units.js';
import type { RunEvents } from '../engine/run.js';
import type { ScanProgress } from '../scan/scanner.js';

export interface ProgressStream extends NodeJS.WritableStream {
  readonly isTTY?: boolean;
}

export class Progress {
  private readonly bar: cliProgress.SingleBar;
  private started = false;
  private files = 0;
  private filesTotal = 0;
  private bytes = 0;
  private bytesTotal = 0;
  private readonly t0 = performance.now();
  private readonly stream: ProgressStream;
  private scanBar: cliProgress.SingleBar | undefined;
  private scanDone = false;
  /** The latest totals of each side's scan. */
  private readonly scanned = new Map<string, ScanProgress>();

  constructor(stream: ProgressStream) {
    this.stream = stream;
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          '{bar} {percentage}% | {files}/{filesTotal} files | {bytesDone} of {bytesAll} | {rate} | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        fps: 5,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /**
   * True when a display belongs on this stream: a terminal, and not -q, --json or -v (the
   * per-path lines of -v would be torn by the redrawn bar on the same terminal).
   */
  static wanted(
    stream: ProgressStream,
    o: { readonly quiet: boolean; readonly json: boolean; readonly verbose: boolean },
  ): boolean {
    return (
      stream.isTTY === true && !o.quiet && !o.json && !o.verbose && process.env.TERM !== 'dumb'
    );
  }

  events(): Required<Pick<RunEvents, 'planned' | 'bytes'>> & Pick<RunEvents, 'change'> {
    return {
      planned: (files, bytes) => {
        this.endScan();
        this.filesTotal += files;
        this.bytesTotal += bytes;
        if (!this.started) {
          this.started = true;
          this.bar.start(Math.max(1, this.bytesTotal), 0, this.payload());
        } else this.bar.setTotal(Math.max(1, this.bytesTotal));
      },
      bytes: (n) => {
        this.bytes += n;
        if (this.started) this.bar.update(Math.min(this.bytes, this.bytesTotal), this.payload());
      },
      change: (kind) => {
        if (kind !== 'send') return;
        this.files++;
        if (this.started) this.bar.update(Math.min(this.bytes, this.bytesTotal), this.payload());
      },
    };
  }

  private payload(): Record<string, string | number> {
    const secs = (performance.now() - this.t0) / 1000;
    return {
      files: this.files,
      filesTotal: this.filesTotal,
      bytesDone: formatBytes(this.bytes),
      bytesAll: formatBytes(this.bytesTotal),
      rate: formatRate(secs > 0 ? (this.bytes * 8) / secs : 0),
    };
  }

  /** Hears a side's scan progress (SessionConfig.onScanProgress). */
  scanning(side: string, p: ScanProgress): void {
    if (this.scanDone) return;
    this.scanned.set(side, p);
    let files = 0;
    let dirs = 0;
    for (const s of this.scanned.values()) {
      files += s.files;
      dirs += s.dirs;
    }
    const secs = (performance.now() - this.t0) / 1000;
    const payload = {
      files: files.toLocaleString('en-US'),
      dirs: dirs.toLocaleString('en-US'),
      rate: Math.round(secs > 0 ? files / secs : 0).toLocaleString('en-US'),
    };
    if (this.scanBar === undefined) {
      this.scanBar = new cliProgress.SingleBar({
        stream: this.stream,
        format: 'scanning: {files} files in {dirs} directories | {rate} files/s',
        hideCursor: true,
        clearOnComplete: true,
        fps: 5,
      });
      this.scanBar.start(1, 0, payload);
    } else this.scanBar.update(0, payload);
  }

  private endScan(): void {
    if (this.scanDone) return;
    this.scanDone = true;
    this.scanBar?.stop();
  }

  stop(): void {
    this.endScan();
    if (this.started) this.bar.stop();
    this.started = false;
  }
}
