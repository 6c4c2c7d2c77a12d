/**
 * The numbered schema files (schema/NNN-*.sql). They are applied in order; PRAGMA
 * user_version records how many have been applied. Where their text comes from (the disk,
 * or embedded in the native-free bundle) is schema-files.ts's business.
 */
import { readSchemaFiles } from './schema-files.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

let cached: Migration[] | undefined;

export function migrations(): Migration[] {
  if (cached) return cached;
  cached = readSchemaFiles()
    .filter((f) => /^\d{3}-.*\.sql$/.test(f.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => ({ version: Number(f.name.slice(0, 3)), name: f.name, sql: f.sql }));
  cached.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`schema file ${m.name} is out of sequence`);
  });
  return cached;
}

export function latestSchemaVersion(): number {
  return migrations().length;
}
