import { defineConfig } from 'vitest/config';

/** Pure-logic tests only: no broker, no database, no global setup. */
export default defineConfig({
  test: { include: ['test/unit/**/*.test.ts'] },
});
