import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * A library user's project: sluice's published declarations installed as a package, next to sluice's runtime
 * dependencies and @types/node, but none of sluice's development types (@types/pg among them).
 */
function consumerProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-types-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const modules = join(dir, 'node_modules');
  const sluice = join(modules, 'sluice');
  execFileSync(process.execPath, [tsc, '-p', root, '--declaration', '--emitDeclarationOnly', '--outDir', join(sluice, 'dist')]);
  cpSync(join(root, 'package.json'), join(sluice, 'package.json'));
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === '@types' || name === '.bin' || name.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  mkdirSync(join(modules, '@types'));
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(modules, '@types', 'node'));
  writeFileSync(
    join(dir, 'index.ts'),
    `import { createSluice, type SluiceOptions, type SluiceStatus } from 'sluice';
const options: SluiceOptions = { kafka: { brokers: ['kafka:9092'] }, database: { url: 'postgres://db/app' }, routes: [] };
const sluice = createSluice(options);
const status: SluiceStatus = sluice.status();
console.log(status.batching.bufferedBytes);
`,
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        types: ['node'],
        // Resolve each package where the user's node_modules has it, not where the symlink points.
        preserveSymlinks: true,
      },
      files: ['index.ts'],
    }),
  );
  return dir;
}

describe('published types', () => {
  it('compile in a project with skipLibCheck off and without @types/pg', () => {
    const dir = consumerProject();
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? error);
    }
    expect(output).toBe('');
  }, 60_000);
});
