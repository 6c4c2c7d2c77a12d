/**
 * Per-path trouble is a value, not an exception: a file that vanished mid-scan, could not be
 * read, or could not be placed becomes a Problem, recorded in the snapshot as state Error,
 * counted in the summary, and turns the exit code non-zero. Other paths carry on.
 */
export interface Problem {
  readonly path: string;
  readonly message: string;
  /** Which endpoint saw it. */
  readonly side?: 'local' | 'remote';
}

export interface Warning {
  readonly path: string;
  readonly message: string;
}
