/**
 * Locates and reads the numbered schema files (schema/NNN-*.sql). They are applied in
 * order; PRAGMA user_version records how many have been applied.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Migration {
  readonly version: number;
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

let cached: Migration[] | undefined;

export function migrations(): Migration[] {
  if (cached) return cached;
  const dir = schemaDir();
  cached = readdirSync(dir)
    .filter((f) => /^\d{3}-.*\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 3)),
      name: f,
      sql: readFileSync(join(dir, f), 'utf8'),
    }));
  cached.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`schema file ${m.name} is out of sequence`);
  });
  return cached;
}

export function latestSchemaVersion(): number {
  return migrations().length;
}
