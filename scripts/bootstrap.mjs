#!/usr/bin/env node
// Makes a fresh clone runnable: installs npm dependencies when the lockfile changed and builds the
// native core when its Rust sources changed. It runs before `npm start` and `npm test`, possibly on
// the system Node (before the pinned Node 24 is installed), so it is plain JavaScript with no
// dependencies. When everything is current it only hashes a few files and exits.
//
// The scripts in package.json then run the pinned Node by path and with `exec`
// (`node scripts/bootstrap.mjs && exec node_modules/.bin/node ...`): by path, because the shell
// looked `node` up (and hashed it) before this script installed node_modules/.bin/node, so a bare
// second `node` would be the system one; with `exec`, so no shell sits between npm and the broker
// to die of the SIGTERM or SIGINT that npm forwards to its child.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => process.stderr.write(`[bootstrap] ${msg}\n`);

function hashFiles(files) {
  const h = createHash('sha256');
  for (const f of files.sort()) {
    if (!existsSync(f)) continue;
    h.update(f.slice(root.length)).update(readFileSync(f));
  }
  return h.digest('hex');
}

function walk(dir, keep) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(p, keep));
    else if (keep(entry.name)) out.push(p);
  }
  return out;
}

function run(cmd, args, cwd = root) {
  say(`${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) {
    say(`failed: ${cmd} ${args.join(' ')} (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

// 1. npm dependencies, keyed by the lockfile and the fields of each package.json that change what
// is installed (a new script must not trigger a reinstall).
function depsHash() {
  const h = createHash('sha256');
  const lock = join(root, 'package-lock.json');
  if (existsSync(lock)) h.update(readFileSync(lock));
  const manifests = [join(root, 'package.json'), join(root, 'native/package.json'),
    ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'package.json'))];
  for (const f of manifests.filter((m) => existsSync(m)).sort()) {
    const m = JSON.parse(readFileSync(f, 'utf8'));
    h.update(f.slice(root.length)).update(JSON.stringify([m.name, m.dependencies, m.devDependencies, m.optionalDependencies, m.workspaces, m.bin]));
  }
  return h.digest('hex');
}
const depsStamp = join(root, 'node_modules/.runnel-deps-stamp');
const wanted = depsHash();
// The npm scripts exec node_modules/.bin/node (the pinned Node 24) by path, so it must exist.
const pinnedNode = join(root, 'node_modules/.bin/node');
if (!existsSync(depsStamp) || readFileSync(depsStamp, 'utf8') !== wanted || !existsSync(pinnedNode)) {
  run('npm', existsSync(join(root, 'package-lock.json')) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
  writeFileSync(depsStamp, depsHash());
}

// 2. The native core, keyed by its Rust sources.
const nativeDir = join(root, 'native');
const rustSources = [join(nativeDir, 'Cargo.toml'), join(nativeDir, 'Cargo.lock'), join(nativeDir, 'build.rs'),
  ...walk(join(nativeDir, 'src'), (n) => n.endsWith('.rs'))];
if (existsSync(join(nativeDir, 'Cargo.toml'))) {
  const nativeHash = hashFiles(rustSources);
  const nativeStamp = join(nativeDir, 'target/.runnel-build-stamp');
  const haveBinary = readdirSync(nativeDir).some((n) => n.endsWith('.node'));
  if (!haveBinary || !existsSync(nativeStamp) || readFileSync(nativeStamp, 'utf8') !== nativeHash) {
    try {
      execFileSync('cargo', ['--version'], { stdio: 'ignore' });
    } catch {
      say('cargo was not found: install Rust (https://rustup.rs, or `apt-get install cargo`) to build native/.');
      process.exit(1);
    }
    run('npm', ['run', 'build', '--workspace', '@runnel/native']);
    mkdirSync(join(nativeDir, 'target'), { recursive: true });
    writeFileSync(nativeStamp, nativeHash);
  }
}
