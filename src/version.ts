import { createRequire } from 'node:module';

/** sluice's own version, from package.json (one level up from both src/ and dist/). */
export const sluiceVersion: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
