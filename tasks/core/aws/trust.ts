/**
 * What an AWS account needs to trust an Azure DevOps idToken, built from the token's own claims and
 * the role's ARN: the IAM OpenID Connect identity provider (its URL is the issuer without https://,
 * e.g. vstoken.dev.azure.com/<organization id>; its audience, IAM's "client id", the token's aud,
 * api://AzureADTokenExchange) and the role's trust policy (Federated principal of that provider,
 * StringEquals on <provider>:sub and <provider>:aud) [protocols.md section 5;
 * aws/aws-toolkit-azure-devops README]. Pure functions: nothing here reaches a network.
 */
import { JwtClaims } from '../devops/claims';

export const EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

export interface AwsTrustFix {
  /** The account of the role (12 digits), or a placeholder when the ARN has none. */
  account: string;
  /** The issuer as the token carries it (https://...). */
  issuer: string;
  /** The provider as IAM names it: the issuer without https:// */
  providerUrl: string;
  providerArn: string;
  audience: string;
  subject: string;
  /** The AWS CLI command that creates the provider. */
  createProviderCommand: string;
  /** The role's trust policy document, as JSON to paste (IAM > Roles > the role > Trust relationships > Edit). */
  trustPolicy: string;
}

/** arn:<partition>:iam::<account>:role/... */
const ROLE_ARN = /^arn:(aws[-a-z]*):iam::(\d{12}):role\//;

function firstAudience(aud: JwtClaims['aud']): string | undefined {
  const a = Array.isArray(aud) ? aud[0] : aud;
  return typeof a === 'string' && a ? a : undefined;
}

/** A shell word as it is when it holds nothing a POSIX shell reads, else single-quoted. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function awsTrustFix(roleArn: string, claims: JwtClaims): AwsTrustFix {
  const m = ROLE_ARN.exec(roleArn);
  const partition = m?.[1] ?? 'aws';
  const account = m?.[2] ?? '<account id>';
  const issuer = claims.iss ?? 'https://vstoken.dev.azure.com/<organization id>';
  const providerUrl = issuer.replace(/^https:\/\//i, '').replace(/\/+$/, '');
  const audience = firstAudience(claims.aud) ?? EXCHANGE_AUDIENCE;
  const subject = claims.sub ?? '<subject>';
  const providerArn = `arn:${partition}:iam::${account}:oidc-provider/${providerUrl}`;
  const trustPolicy = JSON.stringify(
    {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: providerArn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { [`${providerUrl}:sub`]: subject, [`${providerUrl}:aud`]: audience } },
        },
      ],
    },
    null,
    2,
  );
  return {
    account,
    issuer,
    providerUrl,
    providerArn,
    audience,
    subject,
    createProviderCommand: `aws iam create-open-id-connect-provider --url ${shellWord(`https://${providerUrl}`)} --client-id-list ${shellWord(audience)}`,
    trustPolicy,
  };
}
