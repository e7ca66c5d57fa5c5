import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// test/durations.json: the seconds each file took in a full run (2 cores, maxWorkers 3). CI runs a
// fresh clone, where vitest has no duration cache and starts the biggest files first: a long but
// short-sourced file (double-failover, 138 s) then started ~12 minutes in and ran alone at the end.
// The list only orders the run, longest first, so the workers end together; refresh it from a
// run's per-file times when files grow or shrink a lot.
const SECONDS: Record<string, number> = JSON.parse(readFileSync(join(import.meta.dirname, 'test/durations.json'), 'utf8'));
// A file not listed yet (a new one) may be slow: it starts mid-run, not in the final minutes.
const UNLISTED_SECONDS = 30;

/** Longest first by SECONDS; vitest's own order (its cache, else file size) among equals. */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const seconds = (f: TestSpecification) => SECONDS[relative(f.project.config.root, f.moduleId).replaceAll('\\', '/')] ?? UNLISTED_SECONDS;
    return (await super.sort(files)).sort((a, b) => seconds(b) - seconds(a));
  }
}

// Tests run real processes (brokers, Redis, kcat, JVMs), so they get generous timeouts. Most of a
// file's time is waiting on those processes (a full run on 2 cores keeps them ~78 % busy with three
// workers), so three files run at once: one full run took 1,001 s for 2,370 s of test files.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'native/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 3,
    reporters: ['default'],
    sequence: { sequencer: LongestFirst },
  },
});
