/** The Google inputs, validated before any request: each message names the input and the fix. */
import { InputError } from '../core/http/failures';
import { stringInput } from '../core/agent/inputs';
import { safe } from '../core/agent/output';
import { CLOUD_PLATFORM_SCOPE, GcpProvider } from '../core/google/gcp';
import { PROJECT_ID, PROVIDER, SERVICE_ACCOUNT } from '../core/google/names';

export const MIN_LIFETIME = 300;
export const MAX_LIFETIME = 43200;

/** How a bad value is refused: as an input, or as a field of the service connection (connection-settings.ts). */
export type Refuse = (problem: string, fix: string) => InputError;
const asInput = (name: string): Refuse => (problem, fix) => new InputError(name, problem, fix);

export function parseProvider(raw: string | undefined, refuse: Refuse = asInput('workloadIdentityProvider')): GcpProvider {
  const example = 'projects/123456789012/locations/global/workloadIdentityPools/azure-pipelines/providers/contoso';
  if (!raw) throw refuse('no provider is given', `Set workloadIdentityProvider to the provider's full name, e.g. ${example} (IAM & Admin > Workload Identity Federation > the provider).`);
  const v = raw.replace(/^(https:)?\/\/iam\.googleapis\.com\//, '');
  const m = PROVIDER.exec(v);
  if (!m) {
    const hint = /^projects\/[a-z]/.test(v) ? ' It takes the project number (digits), not the project id.' : '';
    throw refuse(safe`'${raw}' is not a workload identity provider name`, `Use projects/<project number>/locations/global/workloadIdentityPools/<pool id>/providers/<provider id>, e.g. ${example}.${hint}`);
  }
  return { name: v, projectNumber: m[1], poolId: m[2], providerId: m[3] };
}

export function providerInput(): GcpProvider {
  return parseProvider(stringInput('workloadIdentityProvider'));
}

export function parseServiceAccount(v: string | undefined, refuse: Refuse = asInput('serviceAccount')): string | undefined {
  if (v === undefined) return undefined;
  if (!SERVICE_ACCOUNT.test(v)) throw refuse(safe`'${v}' is not a service account e-mail`, 'Use the e-mail of the service account, e.g. deployer@my-project.iam.gserviceaccount.com, or leave it empty for direct resource access by the federated principal.');
  return v;
}

export function serviceAccountInput(): string | undefined {
  return parseServiceAccount(stringInput('serviceAccount'));
}

export function parseProjectId(v: string | undefined, refuse: Refuse = asInput('projectId')): string | undefined {
  if (v === undefined) return undefined;
  if (!PROJECT_ID.test(v)) throw refuse(safe`'${v}' is not a Google Cloud project id`, 'Use the project id (6 to 30 lower-case letters, digits and hyphens, starting with a letter), e.g. contoso-prod, not its number or display name.');
  return v;
}

export function projectIdInput(): string | undefined {
  return parseProjectId(stringInput('projectId'));
}

export function lifetimeInput(): number {
  const raw = stringInput('accessTokenLifetime') ?? '3600';
  const digits = raw.replace(/s$/, '');
  const n = Number(digits);
  if (!/^\d+$/.test(digits) || n < MIN_LIFETIME || n > MAX_LIFETIME) {
    throw new InputError('accessTokenLifetime', safe`'${raw}' is not a whole number of seconds from ${MIN_LIFETIME} to ${MAX_LIFETIME}`, 'Set accessTokenLifetime from 300 to 3600 seconds (up to 43200 where the organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension lists the service account); the default is 3600.');
  }
  return n;
}

export function scopesInput(): string[] {
  const raw = stringInput('accessTokenScopes');
  if (!raw) return [CLOUD_PLATFORM_SCOPE];
  const scopes = raw.split(/[\s,]+/).filter(Boolean).map((s) => (/^[a-z][a-z0-9._-]*$/i.test(s) ? `https://www.googleapis.com/auth/${s}` : s));
  for (const s of scopes) {
    let ok = false;
    try {
      const u = new URL(s);
      ok = u.protocol === 'https:' && u.hostname === 'www.googleapis.com' && u.pathname.startsWith('/auth/') && !u.search && !u.hash;
    } catch {
      ok = false;
    }
    if (!ok) throw new InputError('accessTokenScopes', safe`'${s}' is not a Google OAuth scope`, 'Give scopes such as https://www.googleapis.com/auth/cloud-platform (or just cloud-platform), separated by commas or new lines.');
  }
  return [...new Set(scopes)];
}
