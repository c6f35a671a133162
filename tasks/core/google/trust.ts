/**
 * What a Google Cloud workload identity pool needs to trust an Azure DevOps idToken, built from the
 * token's own claims and the provider's resource name: the OIDC provider (issuer URI the token's iss,
 * allowed audience api://AzureADTokenExchange, google.subject=assertion.sub, an attribute condition
 * that admits exactly this subject) and, with a service account, the roles/iam.workloadIdentityUser
 * binding of the federated principal [protocols.md section 9]. Pure functions: no network.
 */
import { JwtClaims } from '../devops/claims';
import { shellWord, EXCHANGE_AUDIENCE } from '../aws/trust';
import { GcpProvider, principalFor } from './gcp';

/** A CEL string literal: single quotes, with backslash and quote escaped. */
export function celString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A POSIX shell double-quoted word: ", $, ` and \ escaped. */
function shellDoubleQuoted(s: string): string {
  return `"${s.replace(/[\\"$`]/g, '\\$&')}"`;
}

export interface GcpTrustFix {
  issuer: string;
  audience: string;
  subject: string;
  principal: string;
  /** gcloud ... providers create-oidc with every flag (an existing provider: update-oidc, same flags). */
  providerCommand: string;
  /** With a service account: the workloadIdentityUser binding. */
  bindingCommand?: string;
}

export function gcpTrustFix(p: GcpProvider, claims: JwtClaims, serviceAccount?: string): GcpTrustFix {
  const issuer = claims.iss ?? 'https://vstoken.dev.azure.com/<organization id>';
  const subject = claims.sub ?? '<subject>';
  const audience = EXCHANGE_AUDIENCE;
  const principal = principalFor(p, subject);
  const providerCommand = [
    'gcloud iam workload-identity-pools providers create-oidc',
    p.providerId,
    `--project=${p.projectNumber}`,
    '--location=global',
    `--workload-identity-pool=${p.poolId}`,
    `--issuer-uri=${shellWord(issuer)}`,
    `--allowed-audiences=${shellWord(audience)}`,
    '--attribute-mapping=google.subject=assertion.sub',
    `--attribute-condition=${shellDoubleQuoted(`assertion.sub==${celString(subject)}`)}`,
  ].join(' ');
  const bindingCommand = serviceAccount
    ? `gcloud iam service-accounts add-iam-policy-binding ${shellWord(serviceAccount)} --role=roles/iam.workloadIdentityUser --member=${shellWord(principal)}`
    : undefined;
  return { issuer, audience, subject, principal, providerCommand, ...(bindingCommand ? { bindingCommand } : {}) };
}
