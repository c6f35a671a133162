/**
 * Reads the secrets the `secrets` input names. The mount of each path is asked once (its type and
 * KV version decide the API path: KV v2 reads <mount>/data/<path> and takes data.data), each
 * secret is read once however many keys are taken from it, and every value is masked as soon as it
 * is parsed. All or nothing: when any entry fails, every failure is reported and no value is
 * returned, so no variable is set from half a list.
 */
import { header, HttpResponse, parseJson } from '../http/http';
import { TaskFailure } from '../http/failures';
import { mask } from '../agent/variables';
import { neutralize, safe } from '../agent/output';
import { SecretSpec } from './secret-specs';
import { MountInfo, VaultClient } from './vault-client';
import { explainVaultStatus, vaultErrors } from './vault-errors';
import { cliPrefix } from './vault-target';

export interface SecretValue {
  spec: SecretSpec;
  value: string;
  /** The API path read, for the log: secret/data/ci/db. */
  apiPath: string;
}

interface Problem {
  spec: SecretSpec;
  what: string;
  fix: string;
  said?: string;
}

/** How many reads are in flight at once: Vault handles many, a rate limit quota may not. */
const PARALLEL_READS = 4;

/** Masks a value, each of its lines too (the agent masks line by line, and refuses a multi-line secret). */
export function maskValue(value: string): void {
  const lines = value.split(/\r\n|\r|\n/);
  if (lines.length === 1) {
    mask(value);
    return;
  }
  for (const line of lines) if (line.trim()) mask(line);
}

/** Every string inside a JSON value, masked: a later step may print one field of the whole secret. */
function maskLeaves(v: unknown): void {
  if (typeof v === 'string') maskValue(v);
  else if (Array.isArray(v)) v.forEach(maskLeaves);
  else if (v && typeof v === 'object') Object.values(v).forEach(maskLeaves);
}

function apiPathFor(spec: SecretSpec, mount: MountInfo): string {
  const rest = spec.path.startsWith(`${mount.path}/`) ? spec.path.slice(mount.path.length + 1) : spec.path.split('/').slice(1).join('/');
  // vault-action's form (secret/data/ci) and the CLI's (secret/ci) both read the same KV v2 secret.
  if (mount.kvVersion === 2) return rest.startsWith('data/') ? `${mount.path}/${rest}` : `${mount.path}/data/${rest}`;
  return `${mount.path}/${rest}`;
}

function policyLine(apiPath: string): string {
  return `path "${apiPath}" { capabilities = ["read"] }`;
}

export async function readSecrets(client: VaultClient, token: string, specs: SecretSpec[], policies: string[]): Promise<SecretValue[]> {
  const t = client.target;
  const problems: Problem[] = [];
  const mounts: MountInfo[] = [];
  const planned: { spec: SecretSpec; mount: MountInfo; apiPath: string }[] = [];
  const policiesText = policies.length ? policies.join(', ') : '(none)';

  for (const spec of specs) {
    let mount = mounts.find((m) => spec.path.startsWith(`${m.path}/`));
    if (!mount) {
      const found = await client.mountOf(token, spec.path);
      if ('refused' in found) {
        const res = found.refused;
        if (res.status !== 403) throw explainVaultStatus(t, res.status, res.body, header(res, 'content-type'), res.url, res.retryAfterTooLong);
        problems.push({
          spec,
          what: safe`no secrets engine is mounted at the start of ${spec.path}, or the Vault token's policies (${policiesText}) grant nothing under it (Vault answers both alike).`,
          fix: safe`Check the mount (${cliPrefix(t)}vault secrets list) and, if it is right, grant the role's policy read on the secret: ${policyLine(spec.path)} (for KV version 2 with data/ after the mount).`,
          said: vaultErrors(res.body).join('; '),
        });
        continue;
      }
      mount = found;
      mounts.push(mount);
    }
    const rest = spec.path.slice(mount.path.length + 1);
    if (mount.kvVersion === 2 && /^(metadata|delete|undelete|destroy|subkeys|config)(\/|$)/.test(rest)) {
      problems.push({ spec, what: safe`${spec.path} is a KV version 2 management path, not a secret.`, fix: safe`Name the secret: ${mount.path}/<path> or ${mount.path}/data/<path>.` });
      continue;
    }
    planned.push({ spec, mount, apiPath: apiPathFor(spec, mount) });
  }

  // One read per secret, whatever number of keys is taken from it.
  const reads = new Map<string, Promise<HttpResponse>>();
  const paths = [...new Set(planned.map((p) => p.apiPath))];
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const p = paths[next++];
      const pending = client.read(token, p);
      reads.set(p, pending);
      await pending.catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, paths.length) }, worker));

  const values: SecretValue[] = [];
  const dataOf = new Map<string, Record<string, unknown>>();
  for (const { spec, mount, apiPath } of planned) {
    let data = dataOf.get(apiPath);
    if (!data) {
      const res = await (reads.get(apiPath) as Promise<HttpResponse>);
      if (res.status !== 200) {
        const p = readProblem(res, spec, mount, apiPath, policiesText, cliPrefix(t));
        if (!p) throw explainVaultStatus(t, res.status, res.body, header(res, 'content-type'), res.url, res.retryAfterTooLong);
        problems.push(p);
        continue;
      }
      const body = parseJson(res.body) as { data?: unknown } | undefined;
      const raw = mount.kvVersion === 2 ? (body?.data as { data?: unknown } | undefined)?.data : body?.data;
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
        problems.push({ spec, what: safe`Vault's answer for ${apiPath} holds no secret data${mount.kvVersion === 2 ? ' (data.data)' : ' (data)'}.`, fix: safe`Check that ${spec.path} is a secret (${cliPrefix(t)}vault read ${apiPath}).` });
        continue;
      }
      data = raw as Record<string, unknown>;
      maskLeaves(data);
      dataOf.set(apiPath, data);
    }
    if (spec.key === undefined) {
      const json = JSON.stringify(data);
      mask(json);
      values.push({ spec, value: json, apiPath });
      continue;
    }
    if (!Object.prototype.hasOwnProperty.call(data, spec.key)) {
      const keys = Object.keys(data);
      problems.push({ spec, what: safe`the secret ${apiPath} has no key '${spec.key}'; its keys: ${keys.length ? keys.join(', ') : '(none)'}.`, fix: 'Use one of its keys (names are case-sensitive), or `<path> | <VARIABLE>` for the whole secret.' });
      continue;
    }
    const v = data[spec.key];
    const value = typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v);
    maskValue(value);
    values.push({ spec, value, apiPath });
  }

  if (problems.length) {
    const evidence: string[] = [];
    for (const p of problems.sort((a, b) => a.spec.line - b.spec.line)) {
      evidence.push(safe`  Line ${p.spec.line} ('${p.spec.text}'): ` + p.what);
      evidence.push(`    Fix: ${p.fix}`);
      if (p.said) evidence.push(`    Vault said: ${neutralize(p.said)}`);
    }
    throw new TaskFailure({
      what: safe`Vault at ${t.address}: ${problems.length} of ${specs.length} secrets could not be read, so no variable was set (all or nothing).`,
      cause: problems.length === 1 ? 'See the entry below.' : 'See each entry below.',
      fix: 'Correct each entry below (the secret\'s path and key, or the role\'s policies), then re-run the job.',
      evidence,
      code: 'VAULT_READ',
    });
  }
  return values;
}

function readProblem(res: HttpResponse, spec: SecretSpec, mount: MountInfo, apiPath: string, policies: string, cli: string): Problem | undefined {
  const errors = vaultErrors(res.body);
  const said = errors.join('; ');
  if (res.status === 403) {
    return {
      spec,
      what: safe`permission denied reading ${apiPath}: the Vault token's policies (${policies}) lack the read capability on it.`,
      fix: safe`Add to one of the role's policies: ${policyLine(apiPath)} (${cli}vault policy write <policy> <file>), or add a policy that has it to the role's token_policies.`,
      said,
    };
  }
  if (res.status === 404) {
    const body = parseJson(res.body) as { data?: { metadata?: { deletion_time?: unknown; destroyed?: unknown; version?: unknown } }; warnings?: unknown } | undefined;
    const meta = body?.data?.metadata;
    const warnings = Array.isArray(body?.warnings) ? body.warnings.filter((w): w is string => typeof w === 'string').join(' ') : '';
    if (/versioned k\/v|invalid path/i.test(warnings + said)) {
      return { spec, what: safe`${mount.path} is a KV version 2 mount and ${apiPath} is not one of its data paths.`, fix: safe`Name the secret as ${mount.path}/<path> or ${mount.path}/data/<path>.`, said: said || warnings };
    }
    if (meta && (meta.destroyed === true || (typeof meta.deletion_time === 'string' && meta.deletion_time))) {
      const version = typeof meta.version === 'number' ? meta.version : undefined;
      return {
        spec,
        what: safe`the latest version${version ? ` (${version})` : ''} of ${spec.path} was ${meta.destroyed === true ? 'destroyed' : `deleted at ${String(meta.deletion_time)}`}.`,
        fix: meta.destroyed === true ? safe`Write a new version (${cli}vault kv put ${spec.path} ...).` : safe`Restore it (${cli}vault kv undelete -versions=${version ?? '<version>'} ${mount.path}/${spec.path.slice(mount.path.length + 1).replace(/^data\//, '')}) or write a new version.`,
      };
    }
    const mismatch = mount.kvVersion === 1 && spec.path.slice(mount.path.length + 1).startsWith('data/')
      ? safe` ${mount.path} is a KV version 1 mount, which has no data/ segment: the secret is ${mount.path}/${spec.path.slice(mount.path.length + 6)}.`
      : '';
    return { spec, what: safe`there is no secret at ${apiPath}${mount.kvVersion ? ` (KV version ${mount.kvVersion} mount ${mount.path})` : ''}.${mismatch}`, fix: safe`Check the path (${cli}vault ${mount.kvVersion ? 'kv list' : 'list'} ${mount.path}/...); names are case-sensitive.` };
  }
  if (res.status === 400 && /versioned k\/v|invalid path/i.test(said)) {
    return { spec, what: safe`the path does not fit the KV version of mount ${mount.path}.`, fix: safe`Name the secret as ${mount.path}/<path>.`, said };
  }
  return undefined;
}
