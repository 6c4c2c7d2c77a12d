// pino-roll ships no type declarations; this is the part of its API that cli/log.ts uses.
declare module 'pino-roll' {
  import type { SonicBoom } from 'sonic-boom';
  interface PinoRollOptions {
    file: string;
    size?: string | number;
    frequency?: string | number;
    extension?: string;
    mkdir?: boolean;
    symlink?: boolean;
    limit?: { count?: number; removeOtherLogFiles?: boolean };
    /** Passed on to SonicBoom. */
    sync?: boolean;
    minLength?: number;
  }
  export default function roll(options: PinoRollOptions): Promise<SonicBoom>;
}
