/** The AWS inputs, validated before any request: each message names the input and the fix. */
import { InputError } from '../core/http/failures';
import { stringInput } from '../core/agent/inputs';
import { isAwsStsHost } from '../core/http/token-hosts';
import { currentRun } from '../core/agent/run-identity';
import { REGION, ROLE_ARN } from '../core/aws/names';

export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_DURATION = 3600;
export const MIN_DURATION = 900;
export const MAX_DURATION = 43200;

/** How a bad value is refused: as an input, or as a field of the service connection (connection-settings.ts). */
export type Refuse = (problem: string, fix: string) => InputError;
const asInput = (name: string): Refuse => (problem, fix) => new InputError(name, problem, fix);

export function parseRoleArn(v: string | undefined, refuse: Refuse = asInput('roleArn')): string {
  if (!v) throw refuse('no role is given', 'Set roleArn to the ARN of the IAM role to assume, e.g. arn:aws:iam::123456789012:role/azure-pipelines-deploy.');
  if (!ROLE_ARN.test(v)) throw refuse(`'${v}' is not an IAM role ARN`, 'Use the form arn:aws:iam::<12-digit account id>:role/<role name> (IAM > Roles > the role > ARN).');
  return v;
}

export function roleArnInput(): string {
  return parseRoleArn(stringInput('roleArn'));
}

export function parseRegion(raw: string | undefined, refuse: Refuse = asInput('region')): string {
  const v = (raw ?? DEFAULT_REGION).toLowerCase();
  if (!REGION.test(v)) throw refuse(`'${v}' is not an AWS region code`, 'Use a region code such as us-east-1, eu-west-2 or us-gov-west-1.');
  return v;
}

export function regionInput(): string {
  return parseRegion(stringInput('region'));
}

export function parseDuration(raw: string | undefined, refuse: Refuse = asInput('durationSeconds')): number {
  const v = raw ?? `${DEFAULT_DURATION}`;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 900 || n > 43200) throw refuse(`'${v}' is not a whole number of seconds from 900 to 43200`, 'Set durationSeconds from 900 (15 minutes) to 43200 (12 hours), within the role\'s maximum session duration; the default is 3600.');
  return n;
}

export function durationInput(): number {
  return parseDuration(stringInput('durationSeconds'));
}

/** The regional endpoint of STS. */
export function regionalStsEndpoint(region: string): string {
  return `https://sts.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}/`;
}

export function parseStsEndpoint(v: string | undefined, region: string, refuse: Refuse = asInput('stsEndpoint')): string {
  if (!v) return regionalStsEndpoint(region);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw refuse(`'${v}' is not a URL`, 'Give an https URL such as https://sts.us-east-1.amazonaws.com/ or your VPC endpoint, or leave it empty for the regional endpoint.');
  }
  if (u.protocol !== 'https:') throw refuse(`'${v}' is not https`, 'The idToken is a credential: STS is only called over https.');
  return u.href.endsWith('/') ? u.href : `${u.href}/`;
}

export function stsEndpointInput(region: string): string {
  return parseStsEndpoint(stringInput('stsEndpoint'), region);
}

/** AWS's pattern [\w+=,.@-], 2 to 64 characters. */
const SESSION = /^[\w+=,.@-]{2,64}$/;

export function sessionNameInput(): string {
  const given = stringInput('roleSessionName');
  if (given) {
    if (!SESSION.test(given)) throw new InputError('roleSessionName', `'${given}' is not a valid role session name`, 'Use 2 to 64 characters from letters, digits and + = , . @ _ -, or leave it empty for a name built from the pipeline and run.');
    return given;
  }
  // Who assumed the role shows in CloudTrail: the pipeline and the run, cut to AWS's pattern. In a
  // classic release the Build.* variables name the artifact's build: the release and its stage do.
  const run = currentRun();
  const clean = (s: string) => s.replace(/[^\w+=,.@-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  const label = run.kind === 'release' ? [run.pipeline ?? 'release', run.stage].filter(Boolean).join('-') : run.pipeline ?? 'pipeline';
  const id = clean(run.id ?? `${Date.now()}`).slice(0, 40) || `${Date.now()}`;
  const name = `azp-${clean(label)}`.slice(0, 64 - id.length - 1) + `-${id}`;
  return name.length >= 2 ? name.slice(0, 64) : 'azure-pipelines';
}

/**
 * The idToken is a credential: a stsEndpoint that is not one of AWS's STS hosts (a private DNS name
 * for a VPC endpoint, say) may be right, but the user should see where the token goes.
 */
export function stsEndpointWarning(endpoint: string): string | undefined {
  const host = new URL(endpoint).host;
  if (isAwsStsHost(new URL(endpoint).hostname)) return undefined;
  return `Input 'stsEndpoint': ${host} is not an AWS STS host (sts.<region>.amazonaws.com, a FIPS, dual-stack or VPC endpoint); the connection's idToken is sent there. Make sure it is your STS endpoint, or leave stsEndpoint empty for the regional endpoint.`;
}
