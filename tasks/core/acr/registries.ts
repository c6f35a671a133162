/**
 * The registries a task may send tokens to: names normalised to login servers, and every host
 * checked against the connection's cloud (or the user's explicit list) before any token is
 * fetched, so a typo or a hostile name never receives one.
 */
import { Cloud, CLOUDS } from '../azure/clouds';
import { InputError } from '../http/failures';
import { neutralize, safe } from '../agent/output';

export interface RegistryHost {
  /** host[:port], lower case: the key in auth files and the OAuth service name. */
  loginServer: string;
  /** What the user wrote, for messages. */
  given: string;
}

const ACR_NAME = /^[a-z0-9]{5,50}$/;
const HOST_PORT = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;
const IPV4_PORT = /^\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?$/;

/** Splits a comma- or newline-separated list, dropping blanks and duplicates. */
export function splitList(raw: string | undefined): string[] {
  const out: string[] = [];
  for (const part of (raw ?? '').split(/[,\n\r]+/)) {
    const v = part.trim();
    if (v && !out.includes(v)) out.push(v);
  }
  return out;
}

/** host[:port] from what a user wrote: scheme and trailing slash dropped, lower case; a path refused. */
export function normalizeHost(value: string, input: string): string {
  let v = value.trim();
  if (/^http:\/\//i.test(v)) {
    throw new InputError(input, safe`'${value}' uses http://; registries are reached over https only`, `Write the host name alone, e.g. ${neutralize(v.replace(/^http:\/\//i, '').replace(/\/.*$/, '').toLowerCase())}.`);
  }
  v = v.replace(/^https:\/\//i, '').replace(/^docker:\/\//i, '').replace(/\/+$/, '').toLowerCase();
  if (v.includes('/')) {
    const host = v.slice(0, v.indexOf('/'));
    throw new InputError(input, safe`'${value}' includes a repository path`, safe`Give the registry's login server only, e.g. '${host}'; the repository goes in the image name of the docker/podman/helm step.`);
  }
  if (!HOST_PORT.test(v) && !IPV4_PORT.test(v)) {
    throw new InputError(input, safe`'${value}' is not a host name`, 'Give a registry name (myregistry) or login server (myregistry.azurecr.io), separated by commas or new lines.');
  }
  const port = /:(\d+)$/.exec(v);
  if (port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) throw new InputError(input, safe`'${value}' has an invalid port`, 'Use a port from 1 to 65535.');
  return v;
}

/** A bare registry name gets the cloud's login-server suffix: myreg becomes myreg.azurecr.io. */
export function toLoginServer(value: string, cloud: Cloud, input: string): RegistryHost {
  const trimmed = value.trim();
  const bare = trimmed.toLowerCase();
  if (!/[.:/]/.test(bare)) {
    if (!ACR_NAME.test(bare)) {
      throw new InputError(input, safe`'${trimmed}' is not a valid Azure Container Registry name`, 'Registry names have 5 to 50 letters and digits; or give the full login server, e.g. myregistry.azurecr.io.');
    }
    if (!cloud.acrSuffix) throw new InputError(input, safe`'${trimmed}' is a bare name, but the connection's cloud (${cloud.name}) has no known registry suffix`, 'Give the full login server.');
    return { loginServer: `${bare}${cloud.acrSuffix}`, given: trimmed };
  }
  return { loginServer: normalizeHost(trimmed, input), given: trimmed };
}

function isAcrLoginServer(host: string, suffix: string): boolean {
  if (!suffix || host.includes(':')) return false;
  const s = suffix.replace(/\./g, '\\.');
  return new RegExp(`^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?${s}$`).test(host);
}

/**
 * Refuses, before any request, a host that is neither an ACR login server of the connection's
 * cloud nor listed in trustedRegistryHosts.
 */
export function checkTrusted(hosts: RegistryHost[], cloud: Cloud, trusted: string[], input: string, trustedInput: string): void {
  for (const h of hosts) {
    if (trusted.includes(h.loginServer) || isAcrLoginServer(h.loginServer, cloud.acrSuffix)) continue;
    const other = Object.values(CLOUDS).find((c) => c !== cloud && isAcrLoginServer(h.loginServer, c.acrSuffix));
    if (other) {
      throw new InputError(input, safe`'${h.given}' is a registry of ${other.name}, but the service connection is for ${cloud.name}`, `Use a service connection for ${other.name}, or a registry in ${cloud.name} (*${cloud.acrSuffix}).`);
    }
    throw new InputError(
      input,
      safe`'${h.given}' is not an Azure Container Registry login server of ${cloud.name} (*${cloud.acrSuffix || '?'}), so no token is sent to it`,
      safe`Check the name. If it is a registry you trust (a private mirror or a custom domain in front of ACR), list '${h.loginServer}' in ${trustedInput}.`,
    );
  }
}
