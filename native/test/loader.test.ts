import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('facade loader', () => {
  it('throws NativeError NOT_BUILT with the command to run when the binary does not load', () => {
    // The generated loader honours NAPI_RS_NATIVE_LIBRARY_PATH; pointing it nowhere simulates a missing build.
    const script = "try { await import('@runnel/native'); console.log('loaded') } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }";
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '/nonexistent/runnel-native.node' },
      encoding: 'utf8',
    });
    const out = JSON.parse(r.stdout.trim());
    expect(out.name).toBe('NativeError');
    expect(out.code).toBe('NOT_BUILT');
    expect(out.message).toContain('npm run build:native');
  });
});
