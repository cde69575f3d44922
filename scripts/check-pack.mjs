#!/usr/bin/env node
// Checks the published declarations the way a user's compiler sees them: packs the package
// (`npm pack`, from the current build in dist/), unpacks it into a scratch TypeScript project
// with `strict` and `skipLibCheck: false`, imports `.` and every other subpath of "exports",
// and compiles. Any error inside the packed `.d.ts` files fails `npm test`. Then the same tarball
// goes through publint (package.json fields against the packed files, warnings are errors) and
// @arethetypeswrong/cli (how each subpath's types resolve, ESM-only profile); neither needs the
// network. Last, the tarball is installed into a fresh project the way a user installs it (its
// "dependencies" only, from npm's cache when it holds them) and its `sdj` bin is run through
// `npx sdj --help`, which must print the help and exit 0.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const scratch = mkdtempSync(join(tmpdir(), 'sdj-pack-'));
// Removed however the check ends (a failure below exits at once).
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], { cwd: root, encoding: 'utf8' }));
const tarball = join(scratch, packed[0].filename);
const modules = join(scratch, 'node_modules');
const installed = join(modules, pkg.name);
mkdirSync(installed, { recursive: true });
execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
// The package's own dependencies and type packages, as the user would have them installed.
for (const name of readdirSync(join(root, 'node_modules'))) {
  if (name === pkg.name || name.startsWith('.')) continue;
  symlinkSync(join(root, 'node_modules', name), join(modules, name));
}
const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
const imports = subpaths.map((k, i) => `import * as m${i} from '${k === '.' ? pkg.name : pkg.name + k.slice(1)}';\nexport { m${i} };`);
writeFileSync(join(scratch, 'index.ts'), imports.join('\n') + '\n');
writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'pack-check', private: true, type: 'module' }));
writeFileSync(
  join(scratch, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: ['node'] },
    files: ['index.ts'],
  }),
);
const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', scratch], { encoding: 'utf8' });
if (r.status !== 0) {
  console.error(`the packed declarations do not compile (strict, skipLibCheck: false):\n${r.stdout}${r.stderr}`);
  process.exit(1);
}
console.log(`packed declarations compile (strict, skipLibCheck: false): ${subpaths.join(', ')}`);
const bin = (name) => join(root, 'node_modules', '.bin', name);
tool('publint', [bin('publint'), 'run', tarball, '--strict']);
tool('attw', [bin('attw'), tarball, '--profile', 'esm-only', '--no-definitely-typed', '--format', 'ascii', '--no-emoji', '--no-color']);
checkBin();

/**
 * Installs the tarball into a fresh project (production dependencies only, no optional ones, no
 * install scripts) and runs each of its bins with `--help` through `npx`, from that project.
 */
function checkBin() {
  // Outside the scratch directory: its node_modules (the repository's, dev tools included) must
  // not be what resolves the bin's imports.
  const project = mkdtempSync(join(tmpdir(), 'sdj-bin-'));
  process.on('exit', () => rmSync(project, { recursive: true, force: true }));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'bin-check', private: true, type: 'module' }));
  const install = (mode) =>
    spawnSync('npm', ['install', mode, '--omit=optional', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', tarball], {
      cwd: project,
      encoding: 'utf8',
    });
  // Offline first (npm's cache holds the dependencies of every developer machine and CI run);
  // the registry only when the cache misses.
  let r = install('--offline');
  if (r.status !== 0) r = install('--prefer-offline');
  if (r.status !== 0) {
    console.error(`the packed package does not install:\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  const bins = Object.keys(pkg.bin ?? {});
  if (bins.length === 0) {
    console.error('package.json declares no "bin": the `sdj` command would not be installed');
    process.exit(1);
  }
  for (const name of bins) {
    const help = spawnSync('npx', ['--no-install', name, '--help'], { cwd: project, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    if (help.status !== 0 || !help.stdout.includes(`Usage: ${name}`)) {
      console.error(`\`npx ${name} --help\` from a fresh install of the packed package failed (exit ${help.status ?? help.signal}):\n${help.stdout}${help.stderr}`);
      process.exit(1);
    }
    console.log(`npx ${name} --help: prints the help from a fresh install`);
  }
}

/** Runs one packaging linter on the tarball; its report is printed only when it fails. */
function tool(name, [cmd, ...args]) {
  const r = spawnSync(cmd, args, { cwd: scratch, encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`${name} reports problems in the packed package:\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  console.log(`${name}: no problems`);
}
