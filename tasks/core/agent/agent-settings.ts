/**
 * The agent's proxy and CA settings: Agent.ProxyUrl, Agent.ProxyUsername, Agent.ProxyPassword and
 * Agent.ProxyBypassList; Agent.CAInfo and the client certificate (Agent.ClientCert, ...). Read as
 * task-lib's getHttpProxyConfiguration and getHttpCertConfiguration read them, variable by variable
 * in the same order, through the step's agent channel: task-lib's getVariable in a main step (the
 * same calls, the same debug lines), the post-job channel with task-lib's rules in a post-job step,
 * which so reaches the agent's proxy without loading task-lib (its vault, node:crypto and 65 KiB of
 * code doubled the start-up of the post-job step that revokes a Vault token).
 */
import fs = require('node:fs');
import { agent } from './agent-channel';
import { mask } from './variables';
import type { ProxySettings, TlsSettings } from '../http/http';
import { TaskFailure } from '../http/failures';
import { safe, warn } from './output';

/** task-lib's getHttpProxyConfiguration() (no request URL: the bypass list is returned, not applied). */
function proxyConfiguration(): { proxyUrl: string; proxyUsername?: string; proxyPassword?: string; proxyBypassHosts: string[] } | undefined {
  const v = (name: string) => agent().getVariable(name);
  const proxyUrl = v('Agent.ProxyUrl');
  if (!proxyUrl) return undefined;
  const proxyUsername = v('Agent.ProxyUsername');
  const proxyPassword = v('Agent.ProxyPassword');
  const proxyBypassHosts = JSON.parse(v('Agent.ProxyBypassList') || '[]') as string[];
  return { proxyUrl, proxyUsername, proxyPassword, proxyBypassHosts };
}

/** task-lib's getHttpCertConfiguration(). */
function certConfiguration(): { caFile?: string; certFile?: string; keyFile?: string; passphrase?: string } | undefined {
  const v = (name: string) => agent().getVariable(name);
  const caFile = v('Agent.CAInfo');
  const certFile = v('Agent.ClientCert');
  if (!caFile && !certFile) return undefined;
  if (!certFile) return { caFile, certFile };
  const keyFile = v('Agent.ClientCertKey');
  v('Agent.ClientCertArchive');
  const passphrase = v('Agent.ClientCertPassword');
  return { caFile, certFile, keyFile, passphrase };
}

export function readProxy(): ProxySettings | undefined {
  const cfg = proxyConfiguration();
  if (!cfg?.proxyUrl) return undefined;
  if (cfg.proxyPassword) mask(cfg.proxyPassword);
  // The agent passes what was configured: a bare host:port is an http proxy; credentials may sit in the URL.
  const raw = /^[a-z][a-z0-9+.-]*:\/\//i.test(cfg.proxyUrl) ? cfg.proxyUrl : `http://${cfg.proxyUrl}`;
  let url: URL;
  try {
    url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new TaskFailure({
      what: 'The agent\'s proxy setting (Agent.ProxyUrl) is not an http:// or https:// URL.',
      cause: 'The agent was configured with a malformed --proxyurl.',
      fix: 'Re-configure the agent with --proxyurl http://<host>:<port> (the .proxy file in the agent folder).',
      code: 'AGENT_CONFIG',
    });
  }
  let username = cfg.proxyUsername || undefined;
  let password = cfg.proxyPassword || undefined;
  if (!username && url.username) {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
    if (password) mask(password);
  }
  const bypass: RegExp[] = [];
  for (const pattern of cfg.proxyBypassHosts ?? []) {
    try {
      bypass.push(new RegExp(pattern, 'i'));
    } catch {
      warn(safe`Ignoring the agent proxy bypass entry '${pattern}': it is not a valid regular expression.`);
    }
  }
  return { url: `${url.protocol}//${url.host}`, username, password, bypass };
}

function readFileSetting(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TaskFailure({
      what: `The agent's ${what} file ${file} could not be read: ${(e as Error).message}.`,
      cause: 'The agent was configured with a certificate file that is missing or unreadable by the agent\'s account.',
      fix: 'Re-run the agent configuration with the right --sslcacert / --sslclientcert paths, or fix the file\'s permissions.',
      code: 'AGENT_CONFIG',
    });
  }
}

/** The agent's CA, and its client certificate for `collectionUri`'s host only ('' : none sent). */
export function readTls(collectionUri: string): TlsSettings {
  const cfg = certConfiguration();
  const out: TlsSettings = {};
  if (cfg?.caFile) out.ca = [readFileSetting(cfg.caFile, 'CA certificate')];
  if (cfg?.certFile && cfg.keyFile && collectionUri) {
    if (cfg.passphrase) mask(cfg.passphrase);
    out.clientCert = {
      host: new URL(collectionUri).host,
      cert: readFileSetting(cfg.certFile, 'client certificate'),
      key: readFileSetting(cfg.keyFile, 'client certificate key'),
      passphrase: cfg.passphrase || undefined,
    };
  }
  return out;
}
