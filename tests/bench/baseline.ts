/**
 * The yardstick: a dependency-free Node script that makes the same requests as a task's main step
 * and prints the same ##vso commands, chosen by the same environment the task gets:
 *   FetchOidcToken         the Oidctoken call, then the Entra exchange when a scope is given;
 *   AcrLoginFederated      + the registry's exchange and the 0600 auth file (INPUT_REGISTRIES);
 *   ValidateServiceConnection  the endpoint, the idToken, the Entra token, the subscription,
 *                          permissions and role definition, and the summary (INPUT_REQUIREDROLES);
 *   AwsAssumeRoleFederated STS with the idToken (INPUT_ROLEARN);
 *   GcpAuthFederated       Google STS, then IAM Credentials with a service account, and the
 *                          credentials and token files (INPUT_WORKLOADIDENTITYPROVIDER);
 *   AuditServiceConnections at project scope with the job token: the identity service's resource
 *                          area, the project's connections, each one's last use, the creators, and
 *                          the reports (no connection input);
 *   VaultSecretsFederated  the Vault login with the idToken, one mount lookup per mount, one read
 *                          per secret, the secret variables, the token for the post-job step and
 *                          for later steps (INPUT_VAULTCONNECTION).
 * Through the agent's proxy when AGENT_PROXYURL is set: CONNECT, then TLS to the public name, as the
 * task does. No validation, no messages, no retries: the least a task could do.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';

const env = process.env;

function request(url: string, method: string, headers: Record<string, string>, body = ''): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const send = (socket?: tls.TLSSocket) => {
      const options: https.RequestOptions = { method, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } };
      // A tunnelled socket is the request's own connection (no agent); a direct one gets a fresh connection too.
      if (socket) Object.assign(options, { createConnection: () => socket, defaultPort: 443 });
      else options.agent = false;
      const req = https.request(u, options, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => (res.statusCode === 200 || res.statusCode === 204 ? resolve(data) : reject(new Error(`HTTP ${res.statusCode} from ${u.host}${u.pathname}: ${data.slice(0, 300)}`))));
      });
      req.on('error', reject);
      req.end(body);
    };
    const proxy = env.AGENT_PROXYURL;
    if (!proxy) return send();
    const p = new URL(proxy);
    const authority = `${u.hostname}:${u.port || 443}`;
    const connect = http.request({ host: p.hostname, port: p.port, method: 'CONNECT', path: authority, headers: { Host: authority }, agent: false });
    connect.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return reject(new Error(`CONNECT ${authority}: HTTP ${res.statusCode}`));
      }
      send(tls.connect({ socket, servername: u.hostname }));
    });
    connect.on('error', reject);
    connect.end();
  });
}

const get = async (url: string, token: string) => JSON.parse(await request(url, 'GET', { Authorization: `Bearer ${token}` }));
const form = (url: string, fields: Record<string, string>) => request(url, 'POST', { 'Content-Type': 'application/x-www-form-urlencoded' }, new URLSearchParams(fields).toString());
const out = (line: string) => process.stdout.write(`${line}\n`);
const setVariable = (name: string, value: string, output: boolean, secret = false) => out(`##vso[task.setvariable variable=${name};isOutput=${output};issecret=${secret};]${value}`);

/** An owner-only folder under the agent's temp directory, and 0600 files in it. */
function secretDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(env.AGENT_TEMPDIRECTORY!, `${prefix}-`));
  fs.chmodSync(dir, 0o700);
  return dir;
}
const writeSecret = (file: string, content: string) => fs.writeFileSync(file, content, { mode: 0o600 });

async function oidcToken(jobToken: string, id: string): Promise<string> {
  const url = env.SYSTEM_OIDCREQUESTURI ? `${env.SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=${id}` : '';
  return JSON.parse(await request(url, 'POST', { Authorization: `Bearer ${jobToken}`, 'Content-Type': 'application/json' }, '{}')).oidcToken;
}

async function entraToken(id: string, auth: { parameters: Record<string, string> }, scope: string, idToken: string): Promise<{ access_token: string; expires_in: number }> {
  const authority = env[`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`];
  const answer = await form(`${authority}${auth.parameters.tenantid}/oauth2/v2.0/token`, {
    client_id: auth.parameters.serviceprincipalid,
    scope,
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: idToken,
  });
  return JSON.parse(answer);
}

/** GcpAuthFederated: Google STS, IAM Credentials with a service account, the two files and their variables. */
async function gcp(idToken: string): Promise<void> {
  const provider = env.INPUT_WORKLOADIDENTITYPROVIDER!;
  const audience = `//iam.googleapis.com/${provider}`;
  const sts = JSON.parse(await form('https://sts.googleapis.com/v1/token', {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience,
    scope: 'https://www.googleapis.com/auth/cloud-platform',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: idToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
  }));
  out(`##vso[task.setsecret]${sts.access_token}`);
  let token = sts.access_token as string;
  let expires = new Date(Date.now() + sts.expires_in * 1000).toISOString();
  const sa = env.INPUT_SERVICEACCOUNT;
  const impersonation = sa ? `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${encodeURIComponent(sa)}:generateAccessToken` : undefined;
  if (impersonation) {
    const body = JSON.stringify({ scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '3600s' });
    const iam = JSON.parse(await request(impersonation, 'POST', { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body));
    out(`##vso[task.setsecret]${iam.accessToken}`);
    token = iam.accessToken;
    expires = iam.expireTime;
  }
  if (env.INPUT_TOKENFORMAT === 'access_token') {
    setVariable('accessToken', token, true, true);
    setVariable('accessTokenExpiresOn', expires, true);
  }
  const dir = secretDir('gcp-credentials');
  out(`##vso[task.settaskvariable variable=WorkloadIdentity.GcpAuth.TokenFile.Dir;issecret=false;]${dir}`);
  const tokenFile = path.join(dir, 'oidc-token');
  writeSecret(tokenFile, idToken);
  const credentials = path.join(dir, 'credentials.json');
  writeSecret(credentials, JSON.stringify({
    type: 'external_account',
    audience,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: 'https://sts.googleapis.com/v1/token',
    ...(impersonation ? { service_account_impersonation_url: impersonation } : {}),
    credential_source: { file: tokenFile, format: { type: 'text' } },
    universe_domain: 'googleapis.com',
  }));
  setVariable('GOOGLE_APPLICATION_CREDENTIALS', credentials, false);
  setVariable('CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', credentials, false);
  setVariable('credentialsFilePath', credentials, true);
}

/**
 * AuditServiceConnections at project scope with the job token: the same GETs as
 * tasks/core/devops (resource area, the project's list, one history per connection, one identity
 * batch per 100 creators), then the three reports and their commands.
 */
async function audit(jobToken: string): Promise<void> {
  out(`##vso[task.setsecret]${jobToken}`);
  const collection = env.SYSTEM_COLLECTIONURI!;
  const project = encodeURIComponent(env.SYSTEM_TEAMPROJECTID!);
  const [area, list] = await Promise.all([
    get(`${collection}_apis/resourceAreas/8a3d49b8-91f0-46ef-b33d-dda338c25db3?api-version=7.1-preview.1`, jobToken),
    get(`${collection}${project}/_apis/serviceendpoint/endpoints?includeFailed=true&includeDetails=true&api-version=7.1`, jobToken),
  ]);
  const types = ['azurerm', 'dockerregistry'];
  const endpoints = (list.value as { id: string; name: string; type: string; createdBy?: { id?: string } }[]).filter((e) => types.includes(e.type.toLowerCase()));
  const history = await Promise.all(endpoints.map((e) => get(`${collection}${project}/_apis/serviceendpoint/${encodeURIComponent(e.id)}/executionhistory?top=1&api-version=7.1-preview.1`, jobToken)));
  const creators = [...new Set(endpoints.map((e) => e.createdBy?.id?.toLowerCase()).filter((x): x is string => !!x))];
  const base = (area.locationUrl as string).replace(/\/?$/, '/');
  const identities: { id: string; isActive?: boolean }[] = [];
  for (let i = 0; i < creators.length; i += 100) {
    identities.push(...(await get(`${base}_apis/identities?identityIds=${creators.slice(i, i + 100).map(encodeURIComponent).join(',')}&api-version=7.1`, jobToken)).value);
  }
  const rows = endpoints.map((e, i) => ({ name: e.name, type: e.type, lastUse: history[i].value[0]?.data?.finishTime ?? 'never', creatorActive: identities.find((x) => x?.id?.toLowerCase() === e.createdBy?.id?.toLowerCase())?.isActive !== false }));
  const dir = fs.mkdtempSync(path.join(env.AGENT_TEMPDIRECTORY!, 'service-connection-audit-'));
  const file = (name: string, text: string) => (fs.writeFileSync(path.join(dir, name), text), path.join(dir, name));
  const md = file('service-connection-audit.md', `# Service connections\n\n${rows.map((r) => `| ${r.name} | ${r.type} | ${r.lastUse} |`).join('\n')}\n`);
  const csv = file('service-connection-audit.csv', `name,type,lastUse,creatorActive\n${rows.map((r) => `${r.name},${r.type},${r.lastUse},${r.creatorActive}`).join('\n')}\n`);
  const json = file('service-connection-audit.json', JSON.stringify({ rows }, null, 2));
  out(`##vso[task.uploadsummary]${md}`);
  out(`##vso[task.addattachment type=WorkloadIdentity.Audit;name=service-connection-audit.csv;]${csv}`);
  out(`##vso[task.addattachment type=WorkloadIdentity.Audit;name=service-connection-audit.json;]${json}`);
  setVariable('auditStatus', 'warning', true);
  setVariable('connectionsAudited', String(rows.length), true);
  setVariable('connectionsNeedingAction', '0', true);
  setVariable('reportJsonPath', json, true);
  setVariable('reportCsvPath', csv, true);
}

/**
 * VaultSecretsFederated with a HashiCorp Vault connection: the JWT login at the connection's Vault
 * address, then for `<path> <key> | <VARIABLE>` entries one sys/internal/ui/mounts lookup per mount
 * and one read per secret (KV v2: <mount>/data/<rest>), the values as secret variables, the token
 * and session as task variables, VAULT_ADDR and VAULT_TOKEN with exportToken.
 */
async function vault(jobToken: string, id: string): Promise<void> {
  const idToken = await oidcToken(jobToken, id);
  out(`##vso[task.setsecret]${idToken}`);
  const address = env[`ENDPOINT_URL_${id}`]!.replace(/\/+$/, '');
  const { authMount, role } = JSON.parse(env[`ENDPOINT_AUTH_${id}`]!).parameters;
  const call = async (method: string, apiPath: string, token?: string, body?: string) =>
    JSON.parse((await request(`${address}/v1/${apiPath}`, method, { Accept: 'application/json', 'X-Vault-Request': 'true', ...(token ? { 'X-Vault-Token': token } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) }, body)) || '{}');
  const login = (await call('POST', `auth/${authMount}/login`, undefined, JSON.stringify({ role, jwt: idToken }))).auth;
  const token = login.client_token as string;
  out(`##vso[task.setsecret]${token}`);
  out(`##vso[task.settaskvariable variable=WorkloadIdentity.Vault.Token;issecret=true;]${token}`);
  const session = { address, expiresOn: new Date(Date.now() + login.lease_duration * 1000).toISOString(), accessor: login.accessor };
  out(`##vso[task.settaskvariable variable=WorkloadIdentity.Vault.Session;issecret=false;]${JSON.stringify(session)}`);
  const mounts: { path: string; v2: boolean }[] = [];
  const secrets = new Map<string, Record<string, string>>();
  for (const line of env.INPUT_SECRETS!.split('\n')) {
    const [, secretPath, key, variable] = /^(\S+) (\S+) \| (\S+)$/.exec(line.trim())!;
    let mount = mounts.find((m) => secretPath.startsWith(`${m.path}/`));
    if (!mount) {
      const data = (await call('GET', `sys/internal/ui/mounts/${secretPath}`, token)).data;
      mount = { path: data.path.replace(/\/+$/, ''), v2: data.options?.version === '2' };
      mounts.push(mount);
    }
    const rest = secretPath.slice(mount.path.length + 1);
    const apiPath = mount.v2 ? `${mount.path}/data/${rest}` : secretPath;
    let data = secrets.get(apiPath);
    if (!data) {
      const body = (await call('GET', apiPath, token)).data;
      data = (mount.v2 ? body.data : body) as Record<string, string>;
      secrets.set(apiPath, data);
    }
    out(`##vso[task.setsecret]${data[key]}`);
    setVariable(variable, data[key], false, true);
  }
  if (env.INPUT_EXPORTTOKEN === 'true') {
    setVariable('VAULT_ADDR', address, false);
    setVariable('VAULT_TOKEN', token, false, true);
  }
}

async function main(): Promise<void> {
  const jobToken = JSON.parse(env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION!).parameters.AccessToken;
  if (env.INPUT_VAULTCONNECTION) return vault(jobToken, env.INPUT_VAULTCONNECTION);
  const id = env.INPUT_CONNECTEDSERVICENAMEARM;
  if (!id) return audit(jobToken);
  const auth = JSON.parse(env[`ENDPOINT_AUTH_${id}`]!);
  const roles = env.INPUT_REQUIREDROLES;
  if (roles) {
    // ValidateServiceConnection's requests: the connection as Azure DevOps sees it first.
    await get(`${env.SYSTEM_COLLECTIONURI}${env.SYSTEM_TEAMPROJECTID}/_apis/serviceendpoint/endpoints/${id}?api-version=7.1`, jobToken);
  }
  const idToken = await oidcToken(jobToken, id);
  out(`##vso[task.setsecret]${idToken}`);
  if (env.INPUT_WORKLOADIDENTITYPROVIDER) return gcp(idToken);
  const roleArn = env.INPUT_ROLEARN;
  if (roleArn) {
    // AwsAssumeRoleFederated's request: STS with the idToken.
    const xml = await form(env.INPUT_STSENDPOINT!, { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: 'baseline', DurationSeconds: '3600', WebIdentityToken: idToken });
    const field = (name: string) => new RegExp(`<${name}>([^<]*)<`).exec(xml)?.[1] ?? '';
    out(`##vso[task.setsecret]${field('SecretAccessKey')}`);
    out(`##vso[task.setsecret]${field('SessionToken')}`);
    setVariable('AWS_ACCESS_KEY_ID', field('AccessKeyId'), false);
    setVariable('AWS_SECRET_ACCESS_KEY', field('SecretAccessKey'), false, true);
    setVariable('AWS_SESSION_TOKEN', field('SessionToken'), false, true);
    const region = env.INPUT_REGION ?? 'us-east-1';
    setVariable('AWS_REGION', region, false);
    setVariable('AWS_DEFAULT_REGION', region, false);
    setVariable('awsAccessKeyId', field('AccessKeyId'), true);
    setVariable('awsSecretAccessKey', field('SecretAccessKey'), true, true);
    setVariable('awsSessionToken', field('SessionToken'), true, true);
    setVariable('awsExpiration', field('Expiration'), true);
    setVariable('awsAssumedRoleArn', field('Arn'), true);
    return;
  }
  const registry = env.INPUT_REGISTRIES;
  const scope = registry ? 'https://containerregistry.azure.net/.default' : roles ? 'https://management.azure.com/.default' : env.INPUT_ACCESSTOKENSCOPE;
  if (!roles && !registry) {
    // FetchOidcToken's outputs: the connection's ids, the idToken and when it expires.
    setVariable('servicePrincipalId', auth.parameters.serviceprincipalid, true);
    setVariable('tenantId', auth.parameters.tenantid, true);
    const subscription = env[`ENDPOINT_DATA_${id}_SUBSCRIPTIONID`];
    if (subscription) setVariable('subscriptionId', subscription, true);
    setVariable('idToken', idToken, true, true);
    const exp = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString()).exp;
    setVariable('idTokenExpiresOn', new Date(exp * 1000).toISOString(), true);
  }
  if (!scope) return;
  const entra = await entraToken(id, auth, scope, idToken);
  const token = entra.access_token;
  out(`##vso[task.setsecret]${token}`);
  if (roles) {
    const arm = (env[`ENDPOINT_URL_${id}`] ?? '').replace(/\/+$/, '');
    const target = env.INPUT_SCOPE;
    await get(`${arm}/subscriptions/${env[`ENDPOINT_DATA_${id}_SUBSCRIPTIONID`]}?api-version=2022-12-01`, token);
    await get(`${arm}${target}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`, token);
    await get(`${arm}${target}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=${encodeURIComponent(`roleName eq '${roles}'`)}`, token);
    setVariable('validationStatus', 'ok', true);
    const summary = path.join(env.AGENT_TEMPDIRECTORY!, `validation-${crypto.randomUUID()}.md`);
    fs.writeFileSync(summary, '# Validation\n\nok\n');
    out(`##vso[task.uploadsummary]${summary}`);
    return;
  }
  if (!registry) {
    setVariable('accessToken', token, true, true);
    setVariable('accessTokenExpiresOn', new Date(Date.now() + entra.expires_in * 1000).toISOString(), true);
    return;
  }
  // AcrLoginFederated's requests: the exchange, then a 0600 auth file in a 0700 folder.
  const refresh = JSON.parse(await form(`https://${registry}/oauth2/exchange`, { grant_type: 'access_token', service: registry, tenant: auth.parameters.tenantid, access_token: token })).refresh_token;
  out(`##vso[task.setsecret]${refresh}`);
  const dir = secretDir('docker-config');
  out(`##vso[task.settaskvariable variable=WorkloadIdentity.AcrLogin.JobConfigDir;issecret=false;]${dir}`);
  const file = path.join(dir, 'config.json');
  writeSecret(file, JSON.stringify({ auths: { [registry]: { auth: Buffer.from(`00000000-0000-0000-0000-000000000000:${refresh}`).toString('base64') } } }));
  setVariable('DOCKER_CONFIG', dir, false);
  setVariable('REGISTRY_AUTH_FILE', file, false);
  setVariable('HELM_REGISTRY_CONFIG', file, false);
  setVariable('dockerConfigPath', file, true);
}

main().then(
  () => out('##vso[task.complete result=Succeeded;]'),
  (e: Error) => {
    out(`##vso[task.complete result=Failed;]${e.message}`);
    process.exitCode = 1;
  },
);
