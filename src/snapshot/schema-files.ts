/**
 * Reads the numbered schema files (schema/NNN-*.sql) from disk. The native-free bundle
 * replaces this module with one that carries the files' text (scripts/build-native-free.mjs),
 * so the bundle needs no schema directory beside it; schema.ts is the same in both.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SchemaFile {
  readonly name: string;
  readonly sql: string;
}

function schemaDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled code lives in dist/src/snapshot; the SQL files stay in src/snapshot/schema.
  const candidates = [
    join(here, 'schema'),
    join(here, '..', '..', '..', 'src', 'snapshot', 'schema'),
  ];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`snapshot schema files not found (looked in ${candidates.join(', ')})`);
}

/** Every schema/*.sql file, unsorted and unchecked (schema.ts does both). */
export function readSchemaFiles(): SchemaFile[] {
  const dir = schemaDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => ({ name: f, sql: readFileSync(join(dir, f), 'utf8') }));
}
