import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

function roundTrip(nodeArgs: string[]): { usesInt64Pair: boolean; values: string[]; back: string[][] } {
  const out = execFileSync(process.execPath, [...nodeArgs, fixture('int64-round-trip.ts')], { encoding: 'utf8' });
  return JSON.parse(out);
}

describe('int64 fields keep all 64 bits', () => {
  it('with the long package protobufjs ships with', () => {
    const r = roundTrip([]);
    expect(r.usesInt64Pair).toBe(false);
    expect(r.back).toEqual(r.values.map((v) => [v, v]));
  });

  it('without it', () => {
    const r = roundTrip(['--require', fixture('hide-long.cjs')]);
    expect(r.usesInt64Pair).toBe(true);
    expect(r.back).toEqual(r.values.map((v) => [v, v]));
  });
});
