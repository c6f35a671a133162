/**
 * The installable .vsix, unpacked: each task folder has its task.json, bundles and icon and no
 * node_modules; task GUIDs are unique, the committed ones in the public build and UUIDs v5 of their
 * own in a private build; each task.json passes tfx's own validation with no warning and is valid
 * against the official schema.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import Ajv from 'ajv-draft-04';
import { readZip, ZipEntry } from '../helpers/zip';
import { pngSize, PICTURE_WIDTH } from '../helpers/screenshot';

const root = path.resolve(__dirname, '..', '..', '..');
// The official task.json schema (microsoft/azure-pipelines-task-lib's tasks.schema.json, with the
// Node20_1 and Node24 handlers), kept beside this test so that every clone and CI checks against it;
// where the project's shared reference copy is beside the clone, the two must be the same.
const schemaFile = path.join(root, 'tests', 'packaging', 'tasks.schema.json');
const sharedSchemaFile = path.resolve(root, '..', 'shared', 'reference', 'tasks.schema.json');
// What the agent downloads is one task's folder, never the .vsix: each task folder is bounded, and
// the .vsix (an organisation admin's install) grows by one folder per task. 1 MiB held six tasks;
// each folder carries its own task-lib (about 50 KiB packed), so seven take about 1.1 MiB.
const MAX_VSIX_BYTES = 1152 * 1024;
const MAX_TASK_FOLDER_PACKED_BYTES = 180 * 1024;
// The two marketplace pictures (about 44 and 92 KiB today).
const MAX_PICTURES_BYTES = 160 * 1024;
const packageScript = path.join(root, 'scripts', 'package.mjs');
// The namespace of private builds' task GUIDs (scripts/package.mjs): a contract with every private
// install, whose tasks would be orphaned if it changed.
const PRIVATE_TASK_NAMESPACE = '94eef0b5-f8a4-4894-9b76-6a75be27ab59';
const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type TaskJson = { id: string; name: string; friendlyName: string };
const taskJsons = (entries: ZipEntry[]): Record<string, TaskJson> => Object.fromEntries(
  entries.filter((e) => /^tasks\/[^/]+\/task\.json$/.test(e.name)).map((e) => {
    const t = JSON.parse(e.data.toString('utf8')) as TaskJson;
    return [t.name, t];
  }));

/** Packs a private build into a new temp folder: its .vsix's entries and what the script printed. */
function packPrivate(publisher: string, extensionId: string, ...more: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-vsix-'));
  try {
    const r = spawnSync(process.execPath, [packageScript, '--publisher', publisher, '--extension-id', extensionId, '--out-dir', out, ...more], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `package.mjs --publisher ${publisher}: ${r.stdout}${r.stderr}`);
    const files = fs.readdirSync(out).filter((f) => f.endsWith('.vsix'));
    assert.equal(files.length, 1, files.join(', '));
    return { file: files[0], entries: readZip(path.join(out, files[0])), stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** RFC 4122 UUID v5 (SHA-1), written here apart from the script's own. */
function uuidV5(namespace: string, name: string): string {
  const b = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(Buffer.from(name, 'utf8')).digest().subarray(0, 16);
  b[6] = 0x50 | (b[6] & 0x0f);
  b[8] = 0x80 | (b[8] & 0x3f);
  return [0, 4, 6, 8, 10].map((start, i, a) => b.subarray(start, a[i + 1] ?? 16).toString('hex')).join('-');
}

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

  // npm run screenshots (tests/helpers/screenshot.ts) makes them: each a whole summary as the run's
  // Extensions tab shows it, 1200 px wide, shrunk to 16 colours by scripts/shrink-images.mjs.
  it(`carries the marketplace pictures as PNGs ${PICTURE_WIDTH} px wide, at most ${MAX_PICTURES_BYTES / 1024} KiB together`, () => {
    let total = 0;
    for (const name of ['images/validate-summary.png', 'images/audit-summary.png']) {
      const e = entries.find((x) => x.name === name);
      assert.ok(e, `${name} packed`);
      const { width, height } = pngSize(e.data);
      assert.equal(width, PICTURE_WIDTH, name);
      assert.ok(height >= 400, `${name}: ${height} px high`);
      total += e.data.length;
    }
    assert.ok(total <= MAX_PICTURES_BYTES, `${total} bytes`);
  });

  it(`carries each task in a folder of at most ${MAX_TASK_FOLDER_PACKED_BYTES / 1024} KiB packed (what an agent downloads to run it)`, () => {
    const folders = new Map<string, number>();
    for (const e of entries) {
      const m = /^tasks\/([^/]+)\//.exec(e.name);
      if (m) folders.set(m[1], (folders.get(m[1]) ?? 0) + e.packedBytes);
    }
    assert.ok(folders.size >= 7, [...folders.keys()].join(', '));
    for (const [folder, bytes] of folders) assert.ok(bytes <= MAX_TASK_FOLDER_PACKED_BYTES, `${folder}: ${bytes} bytes packed`);
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

  it('keeps, in the public build, the task GUIDs committed in tasks/*/task.json (a contract)', () => {
    const packed = taskJsons(entries);
    const committed = fs.readdirSync(path.join(root, 'tasks')).filter((d) => fs.existsSync(path.join(root, 'tasks', d, 'task.json')))
      .map((d) => JSON.parse(fs.readFileSync(path.join(root, 'tasks', d, 'task.json'), 'utf8')) as TaskJson);
    assert.deepEqual(Object.fromEntries(Object.entries(packed).map(([n, t]) => [n, t.id])), Object.fromEntries(committed.map((t) => [t.name, t.id])));
  });

  it("passes tfx's own task.json validation with no warning, every friendlyName at most 40 characters", () => {
    // The very function `tfx extension create` calls for each task (merger.js), on the packed task
    // folders; it throws on an invalid task.json and warns (trace.warn, to stdout) about runners.
    const { validate } = require(path.join(root, 'node_modules', 'tfx-cli', '_build', 'lib', 'jsonvalidate.js')) as {
      validate(file: string, missing: string, all: string[]): unknown;
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-tasks-'));
    const printed: string[] = [];
    const log = console.log;
    try {
      for (const e of entries.filter((x) => x.name.startsWith('tasks/') && !x.name.endsWith('/'))) {
        fs.mkdirSync(path.dirname(path.join(dir, e.name)), { recursive: true });
        fs.writeFileSync(path.join(dir, e.name), e.data);
      }
      const files = entries.filter((e) => /^tasks\/[^/]+\/task\.json$/.test(e.name)).map((e) => path.join(dir, e.name));
      assert.ok(files.length >= 1);
      console.log = (...a: unknown[]) => { printed.push(a.map(String).join(' ')); };
      const failures: string[] = [];
      for (const file of files) {
        try { validate(file, 'no task.json in specified directory', files); } catch (err) { failures.push(String(err)); }
      }
      console.log = log;
      assert.deepEqual(failures, [], 'tfx: invalid task.json');
      assert.deepEqual(printed, [], 'tfx printed warnings');
      for (const t of Object.values(taskJsons(entries))) assert.ok(t.friendlyName.length <= 40, `${t.name}: '${t.friendlyName}'`);
    } finally {
      console.log = log;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a private build (--publisher, --extension-id)', function () {
    this.timeout(120_000);
    let first: ReturnType<typeof packPrivate>;
    let again: ReturnType<typeof packPrivate>;
    let other: ReturnType<typeof packPrivate>;
    before(() => {
      first = packPrivate('contoso-private', 'wit-private');
      again = packPrivate('contoso-private', 'wit-private');
      other = packPrivate('fabrikam-private', 'wit-private', '--repository-url', OTHER_REPOSITORY);
    });

    it('takes another publisher and extension id at package time, with no tfx warning', () => {
      assert.match(first.file, /^contoso-private\.wit-private-\d+\.\d+\.\d+\.vsix$/);
      const manifest = first.entries.find((e) => e.name === 'extension.vsixmanifest')!.data.toString('utf8');
      assert.match(manifest, /<Identity [^>]*Id="wit-private"[^>]*Publisher="contoso-private"/);
      assert.doesNotMatch(first.stdout + first.stderr, /warning/i);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-vsix-'));
      try {
        assert.throws(() => execFileSync(process.execPath, [packageScript, '--publisher', 'bad name', '--out-dir', out], { cwd: root, stdio: 'pipe' }), /not valid/);
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });

    it('gives its tasks GUIDs of their own: UUIDs v5 of publisher, extension id and task name, printed', () => {
      // The helper against RFC 4122's namespace DNS example (as Python's uuid.uuid5 computes it).
      assert.equal(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
      const publicIds = new Set(Object.values(taskJsons(entries)).map((t) => t.id.toLowerCase()));
      const tasks = Object.values(taskJsons(first.entries));
      assert.equal(tasks.length, publicIds.size);
      for (const t of tasks) {
        assert.match(t.id, UUID_V5, t.name);
        assert.ok(!publicIds.has(t.id.toLowerCase()), `${t.name} keeps its public GUID ${t.id}`);
        assert.equal(t.id, uuidV5(PRIVATE_TASK_NAMESPACE, `contoso-private.wit-private.${t.name}`.toLowerCase()), t.name);
        assert.match(first.stdout, new RegExp(`${t.name}: [0-9a-f-]{36} -> ${t.id}`), 'the mapping is printed');
      }
      assert.equal(new Set(tasks.map((t) => t.id)).size, tasks.length);
    });

    it('gives the same GUIDs on every build, and other GUIDs to another publisher', () => {
      const ids = (b: ReturnType<typeof packPrivate>) => Object.fromEntries(Object.values(taskJsons(b.entries)).map((t) => [t.name, t.id]));
      assert.deepEqual(ids(again), ids(first));
      const a = ids(first);
      const b = ids(other);
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
      for (const name of Object.keys(a)) {
        assert.match(b[name], UUID_V5);
        assert.notEqual(b[name], a[name], name);
      }
    });

    it('with --repository-url, links the page and each task\'s "Learn more" into that repository and names it as the repository (issue 22)', () => {
      assert.doesNotMatch(other.stdout + other.stderr, /warning/i);
      const props = vsixProperties(other.entries);
      assert.equal(props['Microsoft.VisualStudio.Services.Links.GitHub'], OTHER_REPOSITORY, 'the repository');
      assert.equal(props['Microsoft.VisualStudio.Services.Links.Getstarted'], `${OTHER_REPOSITORY}/blob/HEAD/README.md`);
      assert.equal(props['Microsoft.VisualStudio.Services.Links.Support'], `${OTHER_REPOSITORY}/issues`);
      assert.equal(props['Microsoft.VisualStudio.Services.Links.License'], `${OTHER_REPOSITORY}/blob/HEAD/LICENSE`);
      assert.equal(props['Microsoft.VisualStudio.Services.Links.Privacypolicy'], `${OTHER_REPOSITORY}/blob/HEAD/PRIVACY.md`);
      for (const t of Object.values(taskJsons(other.entries)) as HelpTaskJson[]) {
        const docs = `${OTHER_REPOSITORY}/blob/HEAD/README.md#${readmeSlug(`${t.name}@${t.version.Major}`)}`;
        assert.equal(t.helpUrl, docs, t.name);
        assert.ok(t.helpMarkDown.includes(`[Learn more](${docs})`), `${t.name}: ${t.helpMarkDown}`);
      }
      // A repository the links cannot be built for is refused before anything is packed.
      for (const bad of ['http://github.com/fabrikam/wit', 'https://user:pw@github.com/fabrikam/wit', 'https://git.example.com/fabrikam/wit', 'not a url']) {
        const r = spawnSync(process.execPath, [packageScript, '--repository-url', bad, '--out-dir', path.join(os.tmpdir(), 'wit-never-made')], { cwd: root, encoding: 'utf8' });
        assert.equal(r.status, 2, `${bad}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /repository URL/, bad);
        assert.ok(!fs.existsSync(path.join(os.tmpdir(), 'wit-never-made')));
      }
    });
  });

  it('packs into an --out-dir whose name has a dot (out.v2): the .vsix lands in it, the same package', function () {
    this.timeout(60_000);
    // tfx reads an output path with an extension as a file: the script must give it the file name.
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-vsix-'));
    try {
      const out = path.join(parent, 'out.v2');
      const r = spawnSync(process.execPath, [packageScript, '--out-dir', out], { cwd: root, encoding: 'utf8' });
      assert.equal(r.status, 0, `package.mjs --out-dir ${out}: ${r.stdout}${r.stderr}`);
      assert.ok(fs.statSync(out).isDirectory(), 'out.v2 is still a folder');
      const files = fs.readdirSync(out);
      assert.deepEqual(files, [path.basename(vsix)], 'the .vsix, named as in dist/, and nothing else');
      const packed = readZip(path.join(out, files[0]));
      assert.deepEqual(packed.map((e) => e.name).sort(), entries.map((e) => e.name).sort());
      assert.deepEqual(taskJsons(packed), taskJsons(entries));
      assert.deepEqual(fs.readdirSync(parent), ['out.v2'], 'nothing beside it');
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  describe('the service connection types it contributes (issue 20)', () => {
    // The names are a contract: pipelines and task.json inputs reference them (connectedService:<name>).
    const CONTRIBUTED = ['WorkloadIdentityAws', 'WorkloadIdentityGcp', 'WorkloadIdentityOidc', 'WorkloadIdentityVault'];
    // The server checks at publish what tfx does not: name and displayName set, at least one scheme, a known scheme.
    const KNOWN_SCHEMES = new Set(['ms.vss-endpoint.endpoint-auth-scheme-none', 'ms.vss-endpoint.endpoint-auth-scheme-basic', 'ms.vss-endpoint.endpoint-auth-scheme-token']);
    type EndpointType = { id: string; type: string; targets: string[]; properties: { name: string; displayName: string; icon?: string; helpMarkDown?: string; url?: { isVisible?: string }; authenticationSchemes: { type: string; inputDescriptors?: { id: string }[] }[] } };
    let packed: { contributions: EndpointType[] };
    before(() => {
      const vso = entries.find((e) => e.name === 'extension.vsomanifest');
      assert.ok(vso, 'extension.vsomanifest in the .vsix');
      packed = JSON.parse(vso.data.toString('utf8'));
    });

    it('are in the .vsix manifest, each with a scheme the server accepts, help naming the issuer, audience and subject, and an icon packed as an addressable PNG under 10 KiB', () => {
      const types = packed.contributions.filter((c) => c.type === 'ms.vss-endpoint.service-endpoint-type');
      assert.deepEqual(types.map((c) => c.properties.name).sort(), CONTRIBUTED);
      const assets = entries.find((e) => e.name === 'extension.vsixmanifest')!.data.toString('utf8');
      for (const c of types) {
        const p = c.properties;
        assert.deepEqual(c.targets, ['ms.vss-endpoint.endpoint-types'], p.name);
        assert.ok(p.displayName?.trim(), `${p.name}: displayName`);
        assert.ok(p.authenticationSchemes.length >= 1 && p.authenticationSchemes.every((a) => KNOWN_SCHEMES.has(a.type)), `${p.name}: schemes`);
        assert.ok(p.authenticationSchemes.some((a) => a.type === 'ms.vss-endpoint.endpoint-auth-scheme-none'), `${p.name}: the None scheme, for which Azure DevOps issues idTokens`);
        for (const needle of ['https://vstoken.dev.azure.com/<organization id>', 'api://AzureADTokenExchange', 'sc://<organization>/<project>/<connection name>']) {
          assert.ok(p.helpMarkDown?.includes(needle), `${p.name}: helpMarkDown names ${needle}`);
        }
        assert.ok(p.icon, `${p.name}: icon`);
        const icon = entries.find((e) => e.name === p.icon);
        assert.ok(icon, `${p.name}: ${p.icon} packed`);
        assert.equal(icon.data.subarray(1, 4).toString(), 'PNG');
        assert.ok(icon.data.length < 10 * 1024, `${p.icon}: ${icon.data.length} bytes`);
        assert.match(assets, new RegExp(`Path="${p.icon!.replace(/[.]/g, '\\.')}" Addressable="true"`), `${p.icon} addressable`);
      }
      const settings = (name: string) => types.find((c) => c.properties.name === name)!.properties.authenticationSchemes.flatMap((a) => a.inputDescriptors ?? []).map((i) => i.id);
      assert.deepEqual(settings('WorkloadIdentityAws'), ['roleArn', 'region', 'maxSessionDuration', 'stsEndpoint']);
      assert.deepEqual(settings('WorkloadIdentityGcp'), ['workloadIdentityProvider', 'serviceAccount', 'projectId']);
      assert.deepEqual(settings('WorkloadIdentityOidc'), ['description']);
      assert.equal(types.find((c) => c.properties.name === 'WorkloadIdentityOidc')!.properties.url?.isVisible, 'true', 'the OIDC type\'s service URL is the endpoint URL');
      // tasks/core/devops/federated-endpoint.ts reads these names: a rename breaks every Vault connection.
      assert.deepEqual(settings('WorkloadIdentityVault'), ['namespace', 'authMount', 'role', 'caCertificate']);
      assert.equal(types.find((c) => c.properties.name === 'WorkloadIdentityVault')!.properties.url?.isVisible, 'true', 'the Vault address is the endpoint URL');
    });

    it('every connectedService:<type> input of every task names a built-in type (AzureRM, generic) or one of ours', () => {
      const allowed = new Set(['azurerm', 'generic', ...CONTRIBUTED.map((n) => n.toLowerCase())]);
      const used = new Set<string>();
      for (const e of entries.filter((x) => /^tasks\/[^/]+\/task\.json$/.test(x.name))) {
        const task = JSON.parse(e.data.toString('utf8')) as { inputs?: { name: string; type: string }[] };
        for (const i of task.inputs ?? []) {
          const m = /^connectedService:([^:]+)(?::.*)?$/i.exec(i.type);
          if (!m) continue;
          // Type names compare case-insensitively, as the agent and the editor compare them.
          assert.ok(allowed.has(m[1].toLowerCase()), `${e.name} input ${i.name}: ${i.type}`);
          used.add(m[1].toLowerCase());
        }
      }
      for (const n of CONTRIBUTED) assert.ok(used.has(n.toLowerCase()), `a task takes ${n}`);
    });
  });

  it('validates each task.json against the official schema', () => {
    const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
    const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
    const tasks = entries.filter((x) => /^tasks\/[^/]+\/task\.json$/.test(x.name));
    assert.ok(tasks.length >= 6, 'every task.json of the .vsix is validated');
    for (const e of tasks) {
      const ok = validate(JSON.parse(e.data.toString('utf8')));
      assert.ok(ok, `${e.name}: ${ajv.errorsText(validate.errors)}`);
    }
  });

  describe('what an organisation admin checks before approving it (issue 22)', () => {
    let props: Record<string, string>;
    let packedTasks: HelpTaskJson[];
    before(() => {
      props = vsixProperties(entries);
      packedTasks = Object.values(taskJsons(entries)) as HelpTaskJson[];
    });

    it('has links to get started, learn, support, the license and the privacy policy; a repository only where one is given', () => {
      const committed = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8')) as { links: Record<string, { uri: string }>; repository: { type: string; uri: string }; scopes?: unknown };
      // The manifest reference's keys (getstarted, learn, license, privacypolicy, support), each an
      // object with `uri`; the committed values are placeholders package.mjs resolves (no address is ours yet).
      assert.deepEqual(Object.keys(committed.links).sort(), ['getstarted', 'learn', 'license', 'privacypolicy', 'support']);
      assert.deepEqual(committed.repository, { type: 'git', uri: '{repository}' });
      assert.equal(committed.scopes, undefined, 'the extension requests no scopes');
      const page = 'https://marketplace.visualstudio.com/items?itemName=workload-identity-tasks.workload-identity-tasks';
      for (const key of ['Getstarted', 'Learn', 'License', 'Privacypolicy']) {
        assert.equal(props[`Microsoft.VisualStudio.Services.Links.${key}`], page, `${key}: the extension's own page, with no repository given`);
      }
      assert.equal(props['Microsoft.VisualStudio.Services.Links.Support'], `${page}&ssr=false#qna`);
      assert.equal(props['Microsoft.VisualStudio.Services.Links.GitHub'], undefined, 'no repository is invented');
      const placeholders = entries.filter((e) => /(^|\/)(task\.json|extension\.vsixmanifest|extension\.vsomanifest)$/.test(e.name) && /\{(docs|repository|support)\}/.test(e.data.toString('utf8')));
      assert.deepEqual(placeholders.map((e) => e.name), [], 'every placeholder resolved');
    });

    it('builds the links for GitHub, GitLab and Azure Repos, and refuses what it cannot link into', () => {
      const { docLinks } = require(path.join(root, 'scripts', 'links.cjs')) as { docLinks(o: { publisher: string; extensionId: string; repositoryUrl?: string }): { repository?: string; support: string; resolve(t: string): string } };
      const at = (repositoryUrl: string) => docLinks({ publisher: 'p', extensionId: 'e', repositoryUrl });
      const github = at('https://github.com/fabrikam/wit.git/');
      assert.equal(github.repository, 'https://github.com/fabrikam/wit');
      assert.equal(github.resolve('[Learn more]({docs}/README.md#security)'), '[Learn more](https://github.com/fabrikam/wit/blob/HEAD/README.md#security)');
      const gitlab = at('https://gitlab.com/fabrikam/tools/wit');
      assert.equal(gitlab.resolve('{docs}/PRIVACY.md'), 'https://gitlab.com/fabrikam/tools/wit/-/blob/HEAD/PRIVACY.md');
      assert.equal(gitlab.support, 'https://gitlab.com/fabrikam/tools/wit/-/issues');
      const azure = at('https://dev.azure.com/fabrikam/tools/_git/wit');
      assert.equal(azure.resolve('{docs}/README.md#security'), 'https://dev.azure.com/fabrikam/tools/_git/wit?path=/README.md&anchor=security');
      assert.equal(azure.support, 'https://marketplace.visualstudio.com/items?itemName=p.e&ssr=false#qna', 'Azure Repos has no issues: the Marketplace Q&A');
      assert.throws(() => docLinks({ publisher: 'p', extensionId: 'e' }).resolve('{repository}'), /no repository URL/);
      for (const bad of ['http://github.com/a/b', 'https://github.com/a/b?x=1', 'https://bitbucket.org/a/b', 'https://dev.azure.com/a/b']) {
        assert.throws(() => at(bad), /repository URL/, bad);
      }
    });

    it('packs LICENSE (the Marketplace license), PRIVACY.md and CHANGELOG.md; the page has the privacy section', () => {
      for (const f of ['LICENSE', 'PRIVACY.md', 'CHANGELOG.md']) {
        const e = entries.find((x) => x.name === f);
        assert.ok(e, `${f} in the .vsix`);
        assert.ok(e.data.equals(fs.readFileSync(path.join(root, f))), `${f} as committed`);
      }
      const vsixManifest = entries.find((e) => e.name === 'extension.vsixmanifest')!.data.toString('utf8');
      assert.match(vsixManifest, /<License>LICENSE<\/License>/);
      assert.match(vsixManifest, /<Asset Type="Microsoft\.VisualStudio\.Services\.Content\.License" d:Source="File" Path="LICENSE" Addressable="true"\/>/);
      assert.match(entries.find((e) => e.name === '[Content_Types].xml')!.data.toString('utf8'), /<Override ContentType="text\/plain" PartName="\/LICENSE"\/>/);
      const privacy = fs.readFileSync(path.join(root, 'PRIVACY.md'), 'utf8');
      assert.match(privacy, /No telemetry/);
      assert.match(privacy, /No scopes/);
      // Every place a token may go (tasks/core/http/token-hosts.ts, the README's Security section).
      for (const host of ['dev.azure.com/<org>/', 'vsrm.dev.azure.com/<org>/', 'vssps.dev.azure.com/<org>/', 'login.microsoftonline.com', 'management.azure.com', 'graph.microsoft.com', '<name>.azurecr.io', 'trustedRegistryHosts', 'sts.<region>.amazonaws.com', 'stsEndpoint', 'sts.googleapis.com', 'iamcredentials.googleapis.com', 'Vault address']) {
        assert.ok(privacy.includes(host), `PRIVACY.md names ${host}`);
      }
      for (const t of packedTasks) assert.ok(privacy.includes(`${t.name}@${t.version.Major}`), `PRIVACY.md covers ${t.name}`);
      const overview = fs.readFileSync(path.join(root, 'overview.md'), 'utf8');
      const section = /^## Privacy\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(overview)?.[1] ?? '';
      for (const needle of ['no telemetry', 'no scopes', 'PRIVACY.md']) assert.ok(section.includes(needle), `overview.md's Privacy section: ${needle}`);
    });

    it('tags and descriptions name every target', () => {
      const manifest = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8')) as { tags: string[]; description: string };
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { description: string };
      const tags = new Set(manifest.tags.map((t) => t.toLowerCase()));
      for (const [target, ...aliases] of TARGETS) {
        assert.ok(tags.has(target.toLowerCase()), `tag ${target}`);
        for (const [what, text] of [['vss-extension.json', manifest.description], ['package.json', pkg.description]]) {
          assert.ok([target, ...aliases].some((n) => text.includes(n)), `${what}'s description names ${target}`);
        }
      }
      const packedTags = /<Tags>([^<]*)<\/Tags>/.exec(entries.find((e) => e.name === 'extension.vsixmanifest')!.data.toString('utf8'))?.[1].split(',') ?? [];
      assert.deepEqual(packedTags, manifest.tags);
    });

    it('states on the page the agents every task needs, and the note about agents before 4.274.1', () => {
      const overview = fs.readFileSync(path.join(root, 'overview.md'), 'utf8');
      const versions = new Set(packedTasks.map((t) => t.minimumAgentVersion));
      assert.ok(versions.size >= 1);
      for (const v of versions) assert.ok(overview.includes(`agent ${v} or later`), `overview.md states minimumAgentVersion ${v}`);
      // The README's residual risk (Security): agents before 4.274.1 let a step rewrite SystemVssConnection.
      assert.match(fs.readFileSync(path.join(root, 'README.md'), 'utf8'), /agents before 4\.274\.1/);
      assert.match(overview, /agents before 4\.274\.1[^.]*task\.setendpoint/i);
    });

    it('gives every Azure Resource Manager picker an EndpointFilterRule that keeps management-group connections', () => {
      let pickers = 0;
      for (const t of packedTasks) {
        for (const i of t.inputs.filter((x) => /^connectedService:AzureRM$/i.test(x.type))) {
          pickers++;
          // A missing or empty rule makes the classic editor apply its default, 'ScopeLevel !=
          // ManagementGroup'; this non-empty one (AzurePowerShellV5's) lists subscription and
          // management-group connections, which every task here can use.
          assert.equal(i.properties?.EndpointFilterRule, ARM_ENDPOINT_FILTER, `${t.name}.${i.name}`);
        }
      }
      assert.ok(pickers >= 6, `${pickers} pickers`);
    });

    it('links every task\'s help to this project\'s documentation: helpUrl and a "Learn more" in helpMarkDown', () => {
      const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
      const slugs = new Set([...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) => readmeSlug(m[1])));
      const page = 'https://marketplace.visualstudio.com/items?itemName=workload-identity-tasks.workload-identity-tasks';
      for (const dir of fs.readdirSync(path.join(root, 'tasks')).filter((d) => fs.existsSync(path.join(root, 'tasks', d, 'task.json')))) {
        const t = JSON.parse(fs.readFileSync(path.join(root, 'tasks', dir, 'task.json'), 'utf8')) as HelpTaskJson;
        const slug = readmeSlug(`${t.name}@${t.version.Major}`);
        assert.ok(slugs.has(slug), `README.md has a section ${t.name}@${t.version.Major} (#${slug})`);
        assert.equal(t.helpUrl, `{docs}/README.md#${slug}`, `${dir}: helpUrl`);
        assert.ok(t.helpMarkDown.includes(`[Learn more]({docs}/README.md#${slug})`), `${dir}: helpMarkDown's Learn more`);
      }
      for (const t of packedTasks) {
        assert.equal(t.helpUrl, page, `${t.name}: packed helpUrl`);
        assert.ok(t.helpMarkDown.includes(`[Learn more](${page})`), `${t.name}: packed Learn more`);
      }
    });

    it('shows an input in the classic editor only with the choice it depends on (visibleRule)', () => {
      const rules = Object.fromEntries(packedTasks.map((t) => [t.name, Object.fromEntries(t.inputs.filter((i) => i.visibleRule).map((i) => [i.name, i.visibleRule]))]));
      for (const [task, expected] of Object.entries(VISIBLE_RULES)) {
        for (const [input, rule] of Object.entries(expected)) assert.equal(rules[task]?.[input], rule, `${task}.${input}`);
      }
      // Every rule names an earlier input of its task and a value that input can take.
      for (const t of packedTasks) {
        t.inputs.forEach((i, n) => {
          if (!i.visibleRule) return;
          for (const clause of i.visibleRule.split(/\s*(?:\|\||&&)\s*/)) {
            const m = /^(\w+) (=|!=) (\S+)$/.exec(clause);
            assert.ok(m, `${t.name}.${i.name}: '${clause}'`);
            const on = t.inputs.slice(0, n).find((x) => x.name === m[1]);
            assert.ok(on, `${t.name}.${i.name} depends on ${m[1]}, an earlier input`);
            const values = on.type === 'boolean' ? ['true', 'false'] : Object.keys(on.options ?? {});
            assert.ok(values.includes(m[3]), `${t.name}.${i.name}: ${m[1]} can be ${m[3]}`);
          }
        });
      }
    });
  });

  it('keeps its copy of the official schema the same as the project\'s shared reference', function () {
    if (!fs.existsSync(sharedSchemaFile)) {
      console.log(`      (skipped: ${path.relative(root, sharedSchemaFile)} is not beside this clone; the copy in tests/packaging is used)`);
      this.skip();
    }
    assert.equal(fs.readFileSync(schemaFile, 'utf8'), fs.readFileSync(sharedSchemaFile, 'utf8'));
  });
});

const BUILTINS = new Set(require('node:module').builtinModules as string[]);

/** A repository for the links of a private build (a test name: nothing is fetched from it). */
const OTHER_REPOSITORY = 'https://github.com/fabrikam-private/workload-identity-tasks';
/** What each Azure Resource Manager picker filters by (see the test). */
const ARM_ENDPOINT_FILTER = 'ScopeLevel != AzureMLWorkspace';
/** Every service the extension reaches: a tag each, and the name (or a short form) in the descriptions. */
const TARGETS: string[][] = [['Azure'], ['Azure Container Registry', 'ACR'], ['AWS'], ['Google Cloud'], ['HashiCorp Vault']];
/** The inputs that only matter with another input's value (all seven tasks, input by input). */
const VISIBLE_RULES: Record<string, Record<string, string>> = {
  FetchOidcToken: {
    connectedServiceNameARM: 'connectionType = azureResourceManager', awsConnection: 'connectionType = aws', gcpConnection: 'connectionType = gcp', oidcConnection: 'connectionType = oidc', genericConnection: 'connectionType = generic',
    accessTokenScope: 'connectionType = azureResourceManager', exportTerraformEnv: 'connectionType = azureResourceManager', exportAzureIdentityEnv: 'connectionType = azureResourceManager',
    keepTokenFileFresh: 'exportAzureIdentityEnv = true || writeTokenFile = true',
  },
  AcrLoginFederated: {},
  ValidateServiceConnection: {
    connectedServiceNameARM: 'connectionType = azureResourceManager', awsConnection: 'connectionType = aws', gcpConnection: 'connectionType = gcp', oidcConnection: 'connectionType = oidc',
    scope: 'connectionType = azureResourceManager', requiredRoles: 'connectionType = azureResourceManager', secretExpiryWarningDays: 'connectionType = azureResourceManager',
  },
  AwsAssumeRoleFederated: {
    connectedServiceNameARM: 'connectionType = azureResourceManager', awsConnection: 'connectionType = aws',
    roleArn: 'connectionType = azureResourceManager', region: 'connectionType = azureResourceManager', stsEndpoint: 'connectionType = azureResourceManager',
    keepTokenFileFresh: 'exportWebIdentityFile = true',
  },
  GcpAuthFederated: {
    connectedServiceNameARM: 'connectionType = azureResourceManager', gcpConnection: 'connectionType = gcp',
    workloadIdentityProvider: 'connectionType = azureResourceManager', serviceAccount: 'connectionType = azureResourceManager',
    keepTokenFileFresh: 'createCredentialsFile = true', accessTokenLifetime: 'tokenFormat = access_token', accessTokenScopes: 'tokenFormat = access_token',
  },
  VaultSecretsFederated: { vaultConnection: 'connectionType = vault', oidcConnection: 'connectionType = oidc', vaultAddress: 'connectionType = pipeline' },
  AuditServiceConnections: { projects: 'scope = organization', secretExpiryWarningDays: 'checkSecretExpiry = true' },
};

type HelpTaskJson = TaskJson & {
  helpUrl: string; helpMarkDown: string; minimumAgentVersion: string; version: { Major: number; Minor: number; Patch: number };
  inputs: { name: string; type: string; visibleRule?: string; options?: Record<string, string>; properties?: Record<string, string> }[];
};

/** The vsixmanifest's Metadata properties (links, repository), by id. */
function vsixProperties(entries: ZipEntry[]): Record<string, string> {
  const xml = entries.find((e) => e.name === 'extension.vsixmanifest')!.data.toString('utf8');
  return Object.fromEntries([...xml.matchAll(/<Property Id="([^"]+)" Value="([^"]*)"\/>/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&')]));
}

/** The anchor GitHub gives a heading: lower case, punctuation but '-' and '_' dropped, spaces as '-'. */
function readmeSlug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}
