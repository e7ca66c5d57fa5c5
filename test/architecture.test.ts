// The dependency rule of docs/architecture.md, as a test: imports point down only, roles never import each
// other, every external library has exactly one owner package, and the protocol package does no I/O.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

/** Which @runnel packages each package may import. `common` is importable everywhere. */
const allowed: Record<string, string[]> = {
  common: [],
  native: [],
  protocol: ['native'],
  offload: ['native'],
  rpc: [],
  metadata: [],
  storage: ['native', 'protocol', 'offload'],
  'kafka-server': ['protocol', 'metadata'],
  client: ['protocol'],
  broker: ['protocol', 'storage', 'offload', 'metadata', 'rpc', 'kafka-server'],
  controller: ['metadata', 'rpc'],
  coordinator: ['protocol', 'metadata', 'rpc', 'kafka-server', 'storage', 'offload'],
  cli: ['client', 'broker', 'controller', 'coordinator', 'metadata', 'rpc'],
};

/** Libraries that exactly one package may import. */
const owners: Record<string, string> = {
  ioredis: 'metadata',
  protobufjs: 'rpc',
  piscina: 'offload',
  pino: 'common',
  'prom-client': 'common',
  commander: 'cli',
};

/** Node built-ins the sans-I/O protocol package must not touch. */
const ioModules = ['net', 'fs', 'fs/promises', 'dgram', 'http', 'https', 'child_process', 'timers', 'worker_threads', 'tls'];

interface Pkg { folder: string; dir: string; manifest: { name: string; dependencies?: Record<string, string> } }

function packages(): Pkg[] {
  const dirs = readdirSync(join(root, 'packages')).map((f) => ({ folder: f, dir: join(root, 'packages', f) }));
  dirs.push({ folder: 'native', dir: join(root, 'native') });
  return dirs
    .filter((d) => existsSync(join(d.dir, 'package.json')))
    .map((d) => ({ ...d, manifest: JSON.parse(readFileSync(join(d.dir, 'package.json'), 'utf8')) }));
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sourceFiles(p);
    return /\.(ts|mts|js|mjs|cjs)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports, statically or dynamically, or requires. */
export function importsOf(text: string): string[] {
  const specs = new Set<string>();
  for (const re of [/\bfrom\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\bimport\s+['"]([^'"]+)['"]/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of text.matchAll(re)) specs.add(m[1]!);
  }
  return [...specs];
}

const packageOf = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);

describe('dependency rule (docs/architecture.md)', () => {
  const pkgs = packages();

  it('knows every package', () => {
    expect(pkgs.map((p) => p.folder).sort()).toEqual(Object.keys(allowed).sort());
    for (const p of pkgs) expect(p.manifest.name).toBe(`@runnel/${p.folder}`);
  });

  for (const pkg of pkgs) {
    it(`${pkg.folder} imports only what the rule allows`, () => {
      const ok = new Set(['common', pkg.folder, ...allowed[pkg.folder]!]);
      const declared = new Set(Object.keys(pkg.manifest.dependencies ?? {}));
      const violations: string[] = [];
      for (const dep of declared) {
        if (dep.startsWith('@runnel/') && !ok.has(dep.slice(8))) violations.push(`package.json depends on ${dep}`);
        const owner = owners[dep];
        if (owner && owner !== pkg.folder) violations.push(`package.json depends on ${dep}, owned by ${owner}`);
      }
      const files = [...sourceFiles(join(pkg.dir, 'src')), ...sourceFiles(join(pkg.dir, 'bin'))];
      for (const file of files) {
        const rel = file.slice(root.length + 1);
        for (const spec of importsOf(readFileSync(file, 'utf8'))) {
          if (spec.startsWith('.')) continue;
          if (spec.startsWith('node:')) {
            if (pkg.folder === 'protocol' && ioModules.includes(spec.slice(5))) violations.push(`${rel}: protocol does no I/O but imports ${spec}`);
            continue;
          }
          const name = packageOf(spec);
          if (name.startsWith('@runnel/')) {
            if (!ok.has(name.slice(8))) violations.push(`${rel}: imports ${name}`);
            else if (!declared.has(name) && name !== pkg.manifest.name) violations.push(`${rel}: imports ${name} without declaring it`);
            continue;
          }
          const owner = owners[name];
          if (owner && owner !== pkg.folder) violations.push(`${rel}: imports ${name}, which only ${owner} may import`);
          if (!declared.has(name)) violations.push(`${rel}: imports ${name} without declaring it in package.json`);
        }
      }
      expect(violations).toEqual([]);
    });
  }

  it('only native loads a .node binary', () => {
    const offenders = pkgs
      .filter((p) => p.folder !== 'native')
      .flatMap((p) => sourceFiles(join(p.dir, 'src')).filter((f) => /\.node['"]/.test(readFileSync(f, 'utf8'))));
    expect(offenders).toEqual([]);
  });

  it('catches a forbidden import (the check itself can fail)', () => {
    expect(importsOf(`import { x } from '@runnel/broker';\nconst y = await import('ioredis');`)).toEqual(['@runnel/broker', 'ioredis']);
  });
});
