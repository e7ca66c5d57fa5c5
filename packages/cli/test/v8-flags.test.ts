import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applyServerV8Flags, SERVER_V8_FLAGS } from '../src/v8-flags.ts';

const MODULE = new URL('../src/v8-flags.ts', import.meta.url).pathname;

/** A fresh Node process that applies the server flags from `env`, then allocates ~64 MB of garbage. */
function run(env: Record<string, string>): string {
  const script = `import { applyServerV8Flags } from ${JSON.stringify(MODULE)};
    console.log('applied: ' + JSON.stringify(applyServerV8Flags(process.env)));
    let keep; for (let i = 0; i < 1000; i++) keep = new Array(8192).fill(i);`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
}

describe('server V8 flags', () => {
  it('default to SERVER_V8_FLAGS; RUNNEL_V8_FLAGS replaces them, empty keeps V8 as it is', () => {
    expect(SERVER_V8_FLAGS).toContain('--heap-growing-percent=');
    expect(applyServerV8Flags({ RUNNEL_V8_FLAGS: '' })).toBe('');
    expect(run({})).toContain(`applied: ${JSON.stringify(SERVER_V8_FLAGS)}`);
  });

  it('reach V8 in the process that applies them', () => {
    // --trace-gc makes V8 itself print every collection: the flag took effect.
    const traced = run({ RUNNEL_V8_FLAGS: '--trace-gc' });
    expect(traced).toContain('applied: "--trace-gc"');
    expect(traced).toMatch(/Scavenge|Mark-Compact/);
    expect(run({ RUNNEL_V8_FLAGS: '' })).not.toMatch(/Scavenge|Mark-Compact/);
  });
});
