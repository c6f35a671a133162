/**
 * AwsAssumeRoleFederated@1 with a connection of type WorkloadIdentityAws (awsConnection): the role,
 * region, STS endpoint and maximum session duration come from the connection, which an admin set
 * and approves pipelines for. Inputs may narrow (a session name, a shorter session) but not
 * redirect: a roleArn, region or stsEndpoint input that differs from the connection's is refused,
 * naming both values, before any request (the region too: the STS host is derived from it).
 */
import { stringInput } from '../core/agent/inputs';
import { safe } from '../core/agent/output';
import { InputError } from '../core/http/failures';
import { FederatedEndpoint } from '../core/devops/federated-endpoint';
import { connectionFieldError, differsFromConnection } from '../core/devops/connection-choice';
import { DEFAULT_DURATION, MAX_DURATION, MIN_DURATION, parseDuration, parseRegion, parseRoleArn, parseStsEndpoint } from './inputs';

export interface AwsSettings {
  roleArn: string;
  region: string;
  /** The STS endpoint: the connection's, or its region's. */
  endpoint: string;
  durationSeconds: number;
  /** The connection's maximum session duration (its default when not set: 3600). */
  maxSessionDuration: number;
}

const ANOTHER = 'To use another role, region or STS endpoint, use a service connection made for it (an admin creates it and approves which pipelines may use it).';

export function awsSettings(ep: FederatedEndpoint): AwsSettings {
  const p = ep.parameters;
  // The connection's own settings first, with the inputs' validators.
  const roleArn = parseRoleArn(p.roleArn, connectionFieldError(ep, 'roleArn', 'Role ARN'));
  const region = parseRegion(p.region, connectionFieldError(ep, 'region', 'Region'));
  const endpoint = parseStsEndpoint(p.stsEndpoint, region, connectionFieldError(ep, 'stsEndpoint', 'STS endpoint'));
  const rawMax = p.maxSessionDuration ?? `${DEFAULT_DURATION}`;
  const maxSessionDuration = Number(rawMax);
  if (!/^\d+$/.test(rawMax) || maxSessionDuration < MIN_DURATION || maxSessionDuration > MAX_DURATION) {
    throw connectionFieldError(ep, 'maxSessionDuration', 'Maximum session duration')(safe`'${rawMax}' is not a whole number of seconds from ${MIN_DURATION} to ${MAX_DURATION}`, 'Set it from 900 to 43200 seconds, within the role\'s own maximum session duration.');
  }

  // Then the inputs: the same value is fine, another is refused.
  const roleInput = stringInput('roleArn');
  if (roleInput !== undefined && roleInput !== roleArn) {
    throw differsFromConnection(ep, 'roleArn', roleInput, roleArn, 'role', `Remove roleArn: the connection's role is assumed. ${ANOTHER}`);
  }
  const regionInput = stringInput('region');
  if (regionInput !== undefined && parseRegion(regionInput) !== region) {
    throw differsFromConnection(ep, 'region', regionInput, region, 'region', `Remove region: STS is called in the connection's region and AWS_REGION is set to it. The credentials work in every region: for resources in another, set AWS_REGION (or --region) in the step that uses them. ${ANOTHER}`);
  }
  const endpointInput = stringInput('stsEndpoint');
  if (endpointInput !== undefined && parseStsEndpoint(endpointInput, region) !== endpoint) {
    throw differsFromConnection(ep, 'stsEndpoint', endpointInput, endpoint, 'STS endpoint', `Remove stsEndpoint: the idToken goes only to the connection's STS endpoint. ${ANOTHER}`);
  }
  const durationInput = stringInput('durationSeconds');
  let durationSeconds = Math.min(DEFAULT_DURATION, maxSessionDuration);
  if (durationInput !== undefined) {
    durationSeconds = parseDuration(durationInput);
    if (durationSeconds > maxSessionDuration) {
      throw new InputError(
        'durationSeconds',
        safe`${durationSeconds} seconds is longer than the maximum session duration of service connection '${ep.id}' (${maxSessionDuration} seconds)`,
        `Set durationSeconds to ${maxSessionDuration} or less, or leave it out (then ${Math.min(DEFAULT_DURATION, maxSessionDuration)}). A longer session needs an admin to raise the connection's maximum session duration (and the role's).`,
      );
    }
  }
  return { roleArn, region, endpoint, durationSeconds, maxSessionDuration };
}
