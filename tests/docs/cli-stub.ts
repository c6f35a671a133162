/**
 * The command-line tools the docs' shell snippets call, as stubs. tests/docs/snippets.test.ts runs
 * each shell block with a PATH that holds only these (one wrapper, linked under each tool's name):
 * the wrapper runs this file with the name it was called by, which checks the arguments against
 * the table below, appends what it received to a log, and exits 2 with the reason when the tool
 * would refuse the command (an unknown subcommand or flag, a missing required flag, a file that is
 * not there) or when the command would not do what the docs say it does (a provider with no
 * audience, a Vault role that is not a JWT role).
 *
 * The flags are the tools' own, from their reference pages (each entry names its page); tfx's come
 * from tfx-cli's source in node_modules, and `npm run package`'s from scripts/package.mjs. A flag
 * the table does not list is refused, as the tool would refuse it: add it from the tool's reference,
 * never by guessing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Cli = 'gcloud' | 'aws' | 'vault' | 'npm' | 'tfx';
/** Every tool a stub stands for; `npx tfx` is tfx. */
export const STUBBED = ['gcloud', 'aws', 'vault', 'npm', 'npx', 'tfx'] as const;

type FlagKind = 'value' | 'bool' | 'list';

interface KeyValues {
  /** Parameters the endpoint takes (Vault API page). */
  allowed: readonly string[];
  /** Each entry present; an array: one of them. */
  required: readonly (string | readonly string[])[];
  /** At most one of each group. */
  exclusive?: readonly (readonly string[])[];
  values?: Record<string, RegExp>;
  /** Parameters that are maps: only JSON on standard input (`-`) can give them. */
  maps?: readonly string[];
}

export interface CommandSpec {
  id: string;
  cli: Cli;
  /** The subcommand words after the tool's name. */
  words: readonly string[];
  /** How many positional arguments after the words: [min, max]. */
  positionals: readonly [number, number];
  /** For Vault's `write`: which path the first positional must be. */
  pathPattern?: RegExp;
  flags: Record<string, FlagKind>;
  /** Each flag present; an array: one of them. */
  required?: readonly (string | readonly string[])[];
  /** Each value of the flag must match (and say why not). */
  values?: Record<string, { pattern: RegExp; why: string }>;
  /** key=value arguments after the path (Vault's write). */
  keyValues?: KeyValues;
  /** The reference the flags come from. */
  ref: string;
}

// gcloud topic flags ("GCLOUD WIDE FLAGS" of every command's page).
const GCLOUD_WIDE: Record<string, FlagKind> = {
  project: 'value', account: 'value', 'billing-project': 'value', configuration: 'value', 'flags-file': 'value',
  flatten: 'value', format: 'value', help: 'bool', 'impersonate-service-account': 'value', 'log-http': 'bool',
  quiet: 'bool', 'trace-token': 'value', 'user-output-enabled': 'bool', verbosity: 'value', 'access-token-file': 'value',
};
// aws help global options (AWS CLI v2 command reference, "Global Options").
const AWS_GLOBAL: Record<string, FlagKind> = {
  debug: 'bool', 'endpoint-url': 'value', 'no-verify-ssl': 'bool', 'no-paginate': 'bool', output: 'value', query: 'value',
  profile: 'value', region: 'value', version: 'value', color: 'value', 'no-sign-request': 'bool', 'ca-bundle': 'value',
  'cli-read-timeout': 'value', 'cli-connect-timeout': 'value', 'cli-binary-format': 'value', 'no-cli-pager': 'bool',
  'cli-auto-prompt': 'bool', 'no-cli-auto-prompt': 'bool',
};
// Vault's HTTP options, taken by every command that talks to the server (vault <command> -help).
const VAULT_HTTP: Record<string, FlagKind> = {
  address: 'value', 'agent-address': 'value', 'ca-cert': 'value', 'ca-path': 'value', 'client-cert': 'value', 'client-key': 'value',
  header: 'value', namespace: 'value', 'tls-server-name': 'value', 'tls-skip-verify': 'bool', 'wrap-ttl': 'value', mfa: 'value',
  'policy-override': 'bool',
};

const AUDIENCE = { pattern: /^api:\/\/AzureADTokenExchange$/, why: 'the audience of every idToken the tasks present is api://AzureADTokenExchange' };
const ISSUER = { pattern: /^https:\/\/(vstoken\.dev\.azure\.com\/[0-9a-f-]{36}|login\.microsoftonline\.com\/[0-9a-f-]{36}\/v2\.0)$/, why: 'the issuer is https://vstoken.dev.azure.com/<organization id> or https://login.microsoftonline.com/<tenant id>/v2.0' };

// The JWT auth method's role and config parameters (Vault API: auth/jwt, "Create/Update role",
// "Configure"), with the token parameters every auth method's role takes (tokenutil).
const TOKEN_PARAMS = ['token_ttl', 'token_max_ttl', 'token_policies', 'policies', 'token_bound_cidrs', 'token_explicit_max_ttl',
  'token_no_default_policy', 'token_num_uses', 'token_period', 'token_type'];
const ROLE_PARAMS = ['role_type', 'bound_audiences', 'user_claim', 'user_claim_json_pointer', 'clock_skew_leeway', 'expiration_leeway',
  'not_before_leeway', 'bound_subject', 'bound_claims', 'bound_claims_type', 'groups_claim', 'claim_mappings', 'oidc_scopes',
  'allowed_redirect_uris', 'verbose_oidc_logging', 'max_age', ...TOKEN_PARAMS];
const CONFIG_PARAMS = ['oidc_discovery_url', 'oidc_discovery_ca_pem', 'oidc_client_id', 'oidc_client_secret', 'oidc_response_mode',
  'oidc_response_types', 'jwks_url', 'jwks_ca_pem', 'jwt_validation_pubkeys', 'jwt_supported_algs', 'bound_issuer', 'default_role',
  'provider_config', 'namespace_in_state'];

export const COMMANDS: readonly CommandSpec[] = [
  {
    id: 'gcloud iam workload-identity-pools create', cli: 'gcloud', words: ['iam', 'workload-identity-pools', 'create'], positionals: [1, 1],
    flags: { location: 'value', description: 'value', disabled: 'bool', 'display-name': 'value', mode: 'value',
      'inline-certificate-issuance-config-file': 'value', 'inline-trust-config-file': 'value', ...GCLOUD_WIDE },
    required: ['location'],
    ref: 'https://cloud.google.com/sdk/gcloud/reference/iam/workload-identity-pools/create',
  },
  {
    id: 'gcloud iam workload-identity-pools providers create-oidc', cli: 'gcloud', words: ['iam', 'workload-identity-pools', 'providers', 'create-oidc'], positionals: [1, 1],
    flags: { location: 'value', 'workload-identity-pool': 'value', 'issuer-uri': 'value', 'allowed-audiences': 'value', 'attribute-mapping': 'value',
      'attribute-condition': 'value', description: 'value', disabled: 'bool', 'display-name': 'value', 'jwk-json-path': 'value', ...GCLOUD_WIDE },
    // gcloud itself takes a provider without --allowed-audiences, which then accepts only its own
    // resource name as the audience: the tasks' idTokens would be refused.
    required: ['location', 'workload-identity-pool', 'issuer-uri', 'allowed-audiences', 'attribute-mapping'],
    values: {
      'issuer-uri': ISSUER,
      'allowed-audiences': AUDIENCE,
      'attribute-mapping': { pattern: /(^|,)google\.subject=assertion\.sub(,|$)/, why: 'the tasks\' connections are bound by subject: map google.subject=assertion.sub' },
    },
    ref: 'https://cloud.google.com/sdk/gcloud/reference/iam/workload-identity-pools/providers/create-oidc',
  },
  {
    id: 'gcloud iam service-accounts add-iam-policy-binding', cli: 'gcloud', words: ['iam', 'service-accounts', 'add-iam-policy-binding'], positionals: [1, 1],
    flags: { member: 'value', role: 'value', condition: 'value', 'condition-from-file': 'value', ...GCLOUD_WIDE },
    required: ['member', 'role'],
    ref: 'https://cloud.google.com/sdk/gcloud/reference/iam/service-accounts/add-iam-policy-binding',
  },
  {
    id: 'aws iam create-open-id-connect-provider', cli: 'aws', words: ['iam', 'create-open-id-connect-provider'], positionals: [0, 0],
    flags: { url: 'value', 'client-id-list': 'list', 'thumbprint-list': 'list', tags: 'list', ...AWS_GLOBAL },
    // The API takes a provider with no client id; it would then accept no token of the tasks.
    required: ['url', 'client-id-list'],
    values: {
      url: { pattern: /^https:\/\/(vstoken\.dev\.azure\.com\/[0-9a-f-]{36}|login\.microsoftonline\.com\/[0-9a-f-]{36}\/v2\.0)$/, why: ISSUER.why },
      'client-id-list': AUDIENCE,
    },
    ref: 'https://docs.aws.amazon.com/cli/latest/reference/iam/create-open-id-connect-provider.html',
  },
  {
    id: 'vault auth enable', cli: 'vault', words: ['auth', 'enable'], positionals: [1, 1],
    flags: { path: 'value', description: 'value', local: 'bool', 'seal-wrap': 'bool', 'default-lease-ttl': 'value', 'max-lease-ttl': 'value',
      'listing-visibility': 'value', 'plugin-name': 'value', 'plugin-version': 'value', options: 'value', ...VAULT_HTTP },
    ref: 'https://developer.hashicorp.com/vault/docs/commands/auth/enable',
  },
  {
    id: 'vault write auth/<mount>/config', cli: 'vault', words: ['write'], positionals: [1, 1], pathPattern: /^auth\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/config$/,
    flags: { field: 'value', format: 'value', force: 'bool', f: 'bool', ...VAULT_HTTP },
    keyValues: {
      allowed: CONFIG_PARAMS,
      // Vault needs one way to the keys; bound_issuer is this project's rule: the jwks of
      // vstoken.dev.azure.com are shared by every organisation, the issuer tells them apart.
      required: [['oidc_discovery_url', 'jwks_url', 'jwt_validation_pubkeys'], 'bound_issuer'],
      exclusive: [['oidc_discovery_url', 'jwks_url', 'jwt_validation_pubkeys']],
      values: { oidc_discovery_url: ISSUER.pattern, bound_issuer: ISSUER.pattern, jwks_url: /^https:\/\// },
    },
    ref: 'https://developer.hashicorp.com/vault/api-docs/auth/jwt#configure',
  },
  {
    id: 'vault write auth/<mount>/role/<name>', cli: 'vault', words: ['write'], positionals: [1, 1], pathPattern: /^auth\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/role\/[A-Za-z0-9_.-]+$/,
    flags: { field: 'value', format: 'value', force: 'bool', f: 'bool', ...VAULT_HTTP },
    keyValues: {
      allowed: ROLE_PARAMS,
      // role_type defaults to oidc (a browser login, which takes no JWT); a role bound to no subject
      // or claim takes any token of the organisation.
      required: ['role_type', 'user_claim', 'bound_audiences', ['bound_subject', 'bound_claims']],
      values: { role_type: /^jwt$/, bound_audiences: /^api:\/\/AzureADTokenExchange$/, bound_claims_type: /^(string|glob)$/ },
      maps: ['bound_claims', 'claim_mappings'],
    },
    ref: 'https://developer.hashicorp.com/vault/api-docs/auth/jwt#create-update-role',
  },
  {
    id: 'vault policy write', cli: 'vault', words: ['policy', 'write'], positionals: [2, 2],
    flags: { ...VAULT_HTTP },
    ref: 'https://developer.hashicorp.com/vault/docs/commands/policy/write',
  },
  { id: 'npm ci', cli: 'npm', words: ['ci'], positionals: [0, 0], flags: {}, ref: 'https://docs.npmjs.com/cli/commands/npm-ci' },
  { id: 'npm test', cli: 'npm', words: ['test'], positionals: [0, 0], flags: {}, ref: 'package.json scripts' },
  // The script's own arguments (after --) are checked against the script: see checkNpmRun.
  { id: 'npm run', cli: 'npm', words: ['run'], positionals: [1, 1], flags: {}, ref: 'https://docs.npmjs.com/cli/commands/npm-run-script' },
  // tfx: the flags are read from tfx-cli itself (tfxArguments), required ones are the docs' rule.
  { id: 'tfx login', cli: 'tfx', words: ['login'], positionals: [0, 0], flags: {}, required: ['service-url'], ref: 'node_modules/tfx-cli/_build/exec/login.js' },
  { id: 'tfx extension publish', cli: 'tfx', words: ['extension', 'publish'], positionals: [0, 0], flags: {}, required: [['vsix', 'manifests', 'manifest-globs']], ref: 'node_modules/tfx-cli/_build/exec/extension/publish.js' },
  { id: 'tfx extension create', cli: 'tfx', words: ['extension', 'create'], positionals: [0, 0], flags: {}, ref: 'node_modules/tfx-cli/_build/exec/extension/create.js' },
];

/** The files of tfx-cli whose classes make each command (the command's class and its parents). */
const TFX_SOURCES: Record<string, readonly string[]> = {
  'tfx login': ['lib/tfcommand.js', 'exec/login.js'],
  'tfx extension publish': ['lib/tfcommand.js', 'exec/extension/default.js', 'exec/extension/create.js', 'exec/extension/publish.js'],
  'tfx extension create': ['lib/tfcommand.js', 'exec/extension/default.js', 'exec/extension/create.js'],
};

/**
 * The arguments a tfx command registers (registerCommandArgument in its class chain), as tfx names
 * them on the command line: --kebab-case of the camelCase name, and short aliases such as -u.
 */
export function tfxArguments(repo: string, id: string): Record<string, FlagKind> {
  const sources = TFX_SOURCES[id];
  if (!sources) throw new Error(`no tfx-cli sources for ${id}`);
  const out: Record<string, FlagKind> = {};
  const call = /registerCommandArgument\(\s*(\[[^\]]*\]|"[^"]*")\s*,\s*(?:"(?:[^"\\]|\\.)*"|null)\s*,\s*(?:null|"(?:[^"\\]|\\.)*"|`[^`]*`)\s*,\s*([\w.]+)/g;
  for (const file of sources) {
    const text = fs.readFileSync(path.join(repo, 'node_modules', 'tfx-cli', '_build', file), 'utf8');
    const calls = (text.match(/registerCommandArgument\(/g) ?? []).length - (/^\s*registerCommandArgument\(name/m.test(text) ? 1 : 0);
    const found = [...text.matchAll(call)];
    if (found.length !== calls) throw new Error(`tfx-cli ${file}: read ${found.length} of ${calls} registerCommandArgument calls: update tfxArguments`);
    for (const [, names, ctor] of found) {
      const kind: FlagKind = /Boolean/.test(ctor) ? 'bool' : 'list';
      for (const n of names.replace(/[[\]"\s]/g, '').split(',')) {
        out[n.startsWith('-') ? n.slice(1) : n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)] = kind;
      }
    }
  }
  return out;
}

/** `npm run package`'s own options: those scripts/package.mjs reads with option('<name>', ...). */
export function packageOptions(repo: string): string[] {
  const text = fs.readFileSync(path.join(repo, 'scripts', 'package.mjs'), 'utf8');
  return [...text.matchAll(/\boption\('([a-z-]+)'/g)].map((m) => m[1]);
}

export interface Invocation {
  cli: string;
  args: string[];
  /** The line of the snippet the command started on (1-based, in the block). */
  line: number;
  /** The spec the arguments matched, when one did. */
  spec?: string;
  errors: string[];
}

interface Parsed {
  flags: Map<string, string[]>;
  positionals: string[];
  afterDashDash?: string[];
  errors: string[];
}

function display(cli: string, words: readonly string[]): string {
  return [cli, ...words].join(' ');
}

function parseGnu(args: string[], flags: Record<string, FlagKind>, name: string, allowDashDash: boolean): Parsed {
  const out: Parsed = { flags: new Map(), positionals: [], errors: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--' && allowDashDash) {
      out.afterDashDash = args.slice(i + 1);
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.positionals.push(a);
      continue;
    }
    const m = /^--?([^=]+)(?:=([\s\S]*))?$/.exec(a);
    const flag = m?.[1] ?? a;
    const kind = flags[flag];
    if (!m || kind === undefined || (!a.startsWith('--') && flag.length > 1)) {
      out.errors.push(`${name} has no flag ${a.split('=')[0]}`);
      continue;
    }
    const values: string[] = [];
    if (kind === 'bool') {
      if (m[2] !== undefined && !/^(true|false)$/.test(m[2])) out.errors.push(`${name} --${flag} takes no value (got '${m[2]}')`);
    } else if (m[2] !== undefined) {
      values.push(m[2]);
    } else if (kind === 'value') {
      if (i + 1 >= args.length || args[i + 1].startsWith('--')) out.errors.push(`${name} --${flag} needs a value`);
      else values.push(args[++i]);
    } else {
      while (i + 1 < args.length && !args[i + 1].startsWith('--')) values.push(args[++i]);
    }
    out.flags.set(flag, [...(out.flags.get(flag) ?? []), ...values]);
  }
  return out;
}

/** Vault's CLI: -flag=value (or --flag) before the positional arguments; after them a flag is an argument. */
function parseVault(args: string[], flags: Record<string, FlagKind>, name: string): Parsed {
  const out: Parsed = { flags: new Map(), positionals: [], errors: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (out.positionals.length > 0 || !a.startsWith('-') || a === '-') {
      if (out.positionals.length > 0 && /^--?[a-z]/.test(a)) out.errors.push(`${name}: the flag ${a} comes after the arguments, where Vault reads it as an argument: put flags first`);
      out.positionals.push(a);
      continue;
    }
    const m = /^--?([a-z_-]+)(?:=([\s\S]*))?$/.exec(a);
    const kind = m ? flags[m[1]] : undefined;
    if (!m || kind === undefined) {
      out.errors.push(`${name} has no flag ${a.split('=')[0]}`);
      continue;
    }
    const values: string[] = [];
    if (kind === 'bool') {
      if (m[2] !== undefined && !/^(true|false)$/.test(m[2])) out.errors.push(`${name} -${m[1]} takes no value`);
    } else if (m[2] !== undefined) values.push(m[2]);
    else if (i + 1 < args.length) values.push(args[++i]);
    else out.errors.push(`${name} -${m[1]} needs a value`);
    out.flags.set(m[1], values);
  }
  return out;
}

function checkRequired(required: readonly (string | readonly string[])[], has: (n: string) => boolean, name: string, prefix: string): string[] {
  const errors: string[] = [];
  for (const r of required) {
    const any = typeof r === 'string' ? [r] : r;
    if (!any.some(has)) errors.push(`${name} received no ${any.map((n) => prefix + n).join(' or ')}`);
  }
  return errors;
}

function checkKeyValues(spec: CommandSpec, p: Parsed, stdin: () => string, cwd: string, name: string): string[] {
  const kv = spec.keyValues as KeyValues;
  const errors: string[] = [];
  const params = new Map<string, unknown>();
  const data = p.positionals.slice(1);
  if (data.includes('-') && data.length > 1) {
    errors.push(`${name}: - (JSON on standard input) is ignored when key=value pairs are given too: use one or the other`);
  }
  for (const a of data) {
    if (a === '-') {
      let body: unknown;
      try {
        body = JSON.parse(stdin());
      } catch (e) {
        errors.push(`${name}: standard input is not JSON (${(e as Error).message})`);
        continue;
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        errors.push(`${name}: standard input is not a JSON object`);
        continue;
      }
      for (const [k, v] of Object.entries(body)) params.set(k, v);
      continue;
    }
    const m = /^([A-Za-z0-9_]+)=([\s\S]*)$/.exec(a);
    if (!m) {
      errors.push(`${name}: '${a}' is not key=value`);
      continue;
    }
    let value: string = m[2];
    if (value.startsWith('@')) {
      const file = path.resolve(cwd, value.slice(1));
      if (!fs.existsSync(file)) errors.push(`${name}: ${m[1]}=@${value.slice(1)} names a file that is not there`);
      else value = fs.readFileSync(file, 'utf8');
    }
    if (kv.maps?.includes(m[1])) errors.push(`${name}: ${m[1]} is a map, which key=value cannot give (Vault: expected a map, got 'string'): write the JSON on standard input with -`);
    params.set(m[1], value);
  }
  for (const k of params.keys()) if (!kv.allowed.includes(k)) errors.push(`${name} has no parameter ${k}`);
  errors.push(...checkRequired(kv.required, (n) => params.has(n), name, ''));
  for (const group of kv.exclusive ?? []) {
    const given = group.filter((n) => params.has(n));
    if (given.length > 1) errors.push(`${name} takes only one of ${group.join(', ')} (got ${given.join(' and ')})`);
  }
  for (const [k, re] of Object.entries(kv.values ?? {})) {
    if (!params.has(k)) continue;
    const v = params.get(k);
    for (const item of Array.isArray(v) ? v : String(v).split(',')) {
      if (!re.test(String(item))) errors.push(`${name}: ${k}=${String(item)} does not match ${re}`);
    }
  }
  for (const k of kv.maps ?? []) {
    const v = params.get(k);
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) errors.push(`${name}: ${k} must be a map (a JSON object)`);
  }
  return errors;
}

export interface StubContext {
  repo: string;
  cwd: string;
  env: Record<string, string | undefined>;
  stdin: () => string;
}

/** npm run <script> [-- args]: the script exists; package's arguments are package.mjs's options. */
function checkNpmRun(p: Parsed, ctx: StubContext, name: string): string[] {
  const script = p.positionals[0];
  const scripts = (JSON.parse(fs.readFileSync(path.join(ctx.repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  if (!(script in scripts)) return [`${name}: package.json has no script '${script}'`];
  const rest = p.afterDashDash ?? [];
  if (script !== 'package') return rest.length ? [`${name} ${script}: takes no arguments (got ${rest.join(' ')})`] : [];
  const options = Object.fromEntries(packageOptions(ctx.repo).map((o) => [o, 'value' as FlagKind]));
  const q = parseGnu(rest, options, `${name} package --`, false);
  const errors = [...q.errors, ...q.positionals.map((a) => `${name} package: takes no argument '${a}'`)];
  if (errors.length) return errors;
  // What the script does: the .vsix, named as package.mjs names it, in --out-dir or dist/.
  const manifest = JSON.parse(fs.readFileSync(path.join(ctx.repo, 'vss-extension.json'), 'utf8')) as { publisher: string; id: string; version: string };
  const opt = (n: string, env: string) => q.flags.get(n)?.[0] ?? ctx.env[env];
  const publisher = opt('publisher', 'PUBLISHER') ?? manifest.publisher;
  const id = opt('extension-id', 'EXTENSION_ID') ?? manifest.id;
  const outDir = path.resolve(ctx.cwd, opt('out-dir', 'VSIX_OUT_DIR') ?? 'dist');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, `${publisher}.${id}-${manifest.version}.vsix`), '');
  return [];
}

/** Which command the arguments are, and what is wrong with them. */
export function checkInvocation(cliName: string, argv: string[], ctx: StubContext): { spec?: string; errors: string[] } {
  const cli = (cliName === 'npx' ? argv[0] : cliName) as Cli;
  const args = cliName === 'npx' ? argv.slice(1) : argv;
  if (cliName === 'npx' && cli !== 'tfx') return { errors: [`npx ${argv[0] ?? ''}: no stub for this package`] };
  const leading: string[] = [];
  for (const a of args) {
    if (a.startsWith('-')) break;
    leading.push(a);
  }
  const candidates = COMMANDS.filter((c) => c.cli === cli && c.words.every((w, i) => leading[i] === w))
    .sort((a, b) => b.words.length - a.words.length);
  if (candidates.length === 0) return { errors: [`${display(cli, leading.slice(0, 4))}: no such command in the table (tests/docs/cli-stub.ts)`] };
  const words = candidates[0].words;
  const rest = args.slice(words.length);
  const firstArgument = rest.find((a) => !a.startsWith('-')) ?? '';
  let spec = candidates.find((c) => c.words.length === words.length && (!c.pathPattern || c.pathPattern.test(firstArgument)));
  if (!spec) return { errors: [`${display(cli, words)} ${firstArgument}: no such path in the table (tests/docs/cli-stub.ts)`] };
  // Vault's write is named with its path: "vault write auth/jwt/role/web-ci received no role_type".
  const name = spec.pathPattern ? `${display(cli, words)} ${firstArgument}` : display(cli, words);
  if (cli === 'tfx') spec = { ...spec, flags: tfxArguments(ctx.repo, spec.id) };
  const p = cli === 'vault' ? parseVault(rest, spec.flags, name) : parseGnu(rest, spec.flags, name, cli === 'npm');
  const errors = [...p.errors];
  const [min, max] = spec.positionals;
  const positionalCount = spec.keyValues ? Math.min(p.positionals.length, 1) : p.positionals.length;
  if (positionalCount < min || positionalCount > max) {
    errors.push(`${name} takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${positionalCount}${p.positionals.length ? ` (${p.positionals.join(' ')})` : ''}`);
  }
  const dash = cli === 'vault' ? '-' : '--';
  errors.push(...checkRequired(spec.required ?? [], (n) => p.flags.has(n), name, dash));
  for (const [flag, { pattern, why }] of Object.entries(spec.values ?? {})) {
    for (const v of p.flags.get(flag) ?? []) {
      for (const item of v.split(',')) if (!pattern.test(item)) errors.push(`${name} ${dash}${flag}=${item}: ${why}`);
    }
  }
  if (spec.keyValues) errors.push(...checkKeyValues(spec, p, ctx.stdin, ctx.cwd, name));
  if (spec.id === 'npm run' && errors.length === 0) errors.push(...checkNpmRun(p, ctx, name));
  if (spec.id === 'vault policy write') {
    const file = p.positionals[1];
    if (file && file !== '-' && !fs.existsSync(path.resolve(ctx.cwd, file))) errors.push(`${name}: the policy file ${file} is not there`);
  }
  if (spec.id === 'tfx extension publish') {
    for (const v of p.flags.get('vsix') ?? []) if (!fs.existsSync(path.resolve(ctx.cwd, v))) errors.push(`${name} --vsix ${v}: no such file (what the steps before made: ${listVsix(ctx.cwd)})`);
  }
  return { spec: spec.id, errors };
}

function listVsix(cwd: string): string {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith('.vsix')) found.push(path.relative(cwd, path.join(dir, e.name)));
    }
  };
  walk(cwd);
  return found.join(', ') || 'none';
}

/** As a stub: argv[2] is the name the tool was called by. */
function main(): void {
  const [cliName, ...argv] = process.argv.slice(2);
  const log = process.env.SNIPPET_LOG as string;
  const repo = process.env.SNIPPET_REPO as string;
  let stdinText: string | undefined;
  const ctx: StubContext = {
    repo,
    cwd: process.cwd(),
    env: process.env,
    stdin: () => (stdinText ??= fs.readFileSync(0, 'utf8')),
  };
  let result: { spec?: string; errors: string[] };
  try {
    result = checkInvocation(cliName, argv, ctx);
  } catch (e) {
    result = { errors: [`stub failure: ${(e as Error).stack ?? String(e)}`] };
  }
  const inv: Invocation = { cli: cliName, args: argv, line: Number(process.env.SNIPPET_LINE ?? 0), ...result };
  fs.appendFileSync(log, JSON.stringify(inv) + '\n');
  if (result.errors.length) {
    for (const e of result.errors) process.stderr.write(`${e}\n`);
    process.exit(2);
  }
}

if (require.main === module) main();
