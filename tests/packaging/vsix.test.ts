/**
 * The installable .vsix, unpacked: each task folder has its task.json, bundles and icon and no
 * node_modules; task GUIDs are unique; each task.json is valid against the official schema.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import Ajv from 'ajv-draft-04';
import { readZip, ZipEntry } from '../helpers/zip';

const root = path.resolve(__dirname, '..', '..', '..');
const schemaFile = path.resolve(root, '..', 'shared', 'reference', 'tasks.schema.json');
const MAX_VSIX_BYTES = 1024 * 1024;

describe('the .vsix package', () => {
  let vsix: string;
  let entries: ZipEntry[];
  let manifest: { contributions: { type: string; properties: { name: string } }[] };

  before(() => {
    const dist = path.join(root, 'dist');
    const found = fs.existsSync(dist) ? fs.readdirSync(dist).filter((f) => f.endsWith('.vsix')) : [];
    assert.equal(found.length, 1, 'npm test packages first: exactly one .vsix in dist/');
    vsix = path.join(dist, found[0]);
    entries = readZip(vsix);
    manifest = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8'));
  });

  it(`is at most ${MAX_VSIX_BYTES / 1024} KiB and carries no node_modules`, () => {
    const size = fs.statSync(vsix).size;
    assert.ok(size <= MAX_VSIX_BYTES, `${size} bytes`);
    assert.deepEqual(entries.filter((e) => e.name.includes('node_modules/')).map((e) => e.name), []);
  });

  it('has, for every task contribution, task.json, its bundled targets and an icon', () => {
    const tasks = manifest.contributions.filter((c) => c.type === 'ms.vss-distributed-task.task');
    assert.ok(tasks.length >= 1);
    const names = new Set(entries.map((e) => e.name));
    for (const c of tasks) {
      const dir = c.properties.name;
      assert.ok(names.has(`${dir}/task.json`), `${dir}/task.json`);
      assert.ok(names.has(`${dir}/icon.png`), `${dir}/icon.png`);
      const task = JSON.parse(entries.find((e) => e.name === `${dir}/task.json`)!.data.toString('utf8'));
      for (const section of ['prejobexecution', 'execution', 'postjobexecution']) {
        const handlers = task[section] ?? {};
        if (section === 'execution') assert.deepEqual(Object.keys(handlers).sort(), ['Node20_1', 'Node24'], `${dir} handlers`);
        for (const h of Object.values(handlers) as { target: string }[]) {
          const bundle = entries.find((e) => e.name === `${dir}/${h.target}`);
          assert.ok(bundle, `${dir}/${h.target}`);
          // A bundle requires nothing but Node itself and files beside it in the package.
          const required = [...bundle.data.toString('utf8').matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]).filter((m) => !m.startsWith('node:') && !BUILTINS.has(m.split('/')[0]));
          const missing = [...new Set(required)].filter((m) => !(m.startsWith('./') && names.has(`${dir}/${m.slice(2)}`)));
          assert.deepEqual(missing, [], `${dir}/${h.target} requires modules that are not in the package`);
        }
      }
      const png = entries.find((e) => e.name === `${dir}/icon.png`)!.data;
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
    }
  });

  it('gives every task a unique GUID', () => {
    const ids = entries.filter((e) => /^tasks\/[^/]+\/task\.json$/.test(e.name)).map((e) => JSON.parse(e.data.toString('utf8')).id as string);
    assert.ok(ids.length >= 1);
    assert.equal(new Set(ids.map((i) => i.toLowerCase())).size, ids.length);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  });

  it('takes another publisher and extension id at package time, for a private install', function () {
    this.timeout(60_000);
    const out = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'wit-vsix-'));
    try {
      execFileSync(process.execPath, [path.join(root, 'scripts', 'package.mjs'), '--publisher', 'contoso-private', '--extension-id', 'wit-private', '--out-dir', out], { cwd: root, stdio: 'pipe' });
      const [file] = fs.readdirSync(out).filter((f) => f.endsWith('.vsix'));
      assert.match(file, /^contoso-private\.wit-private-\d+\.\d+\.\d+\.vsix$/);
      const manifest = readZip(path.join(out, file)).find((e) => e.name === 'extension.vsixmanifest')!.data.toString('utf8');
      assert.match(manifest, /<Identity [^>]*Id="wit-private"[^>]*Publisher="contoso-private"/);
      assert.throws(() => execFileSync(process.execPath, [path.join(root, 'scripts', 'package.mjs'), '--publisher', 'bad name', '--out-dir', out], { cwd: root, stdio: 'pipe' }), /not valid/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('validates each task.json against the official schema', function () {
    if (!fs.existsSync(schemaFile)) {
      console.log(`      (skipped: ${path.relative(root, schemaFile)} is not beside this clone)`);
      this.skip();
    }
    const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
    const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
    for (const e of entries.filter((x) => /^tasks\/[^/]+\/task\.json$/.test(x.name))) {
      const ok = validate(JSON.parse(e.data.toString('utf8')));
      assert.ok(ok, `${e.name}: ${ajv.errorsText(validate.errors)}`);
    }
  });
});

const BUILTINS = new Set(require('node:module').builtinModules as string[]);
