/**
 * The yardstick: a dependency-free Node script that makes the same requests as FetchOidcToken
 * (the Oidctoken call, then the Entra exchange when a scope is given) or AcrLoginFederated (and
 * the registry's exchange, and the auth file) or ValidateServiceConnection (the endpoint, the
 * idToken, the Entra token, the subscription, permissions and role definition), printing the same ##vso commands. No validation,
 * no messages, no retries: the least a task could do.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';

function post(url: string, headers: Record<string, string>, body: string, method = 'POST'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) }, agent: false }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const id = process.env.INPUT_CONNECTEDSERVICENAMEARM!;
  const auth = JSON.parse(process.env[`ENDPOINT_AUTH_${id}`]!);
  const jobToken = JSON.parse(process.env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION!).parameters.AccessToken;
  const roles = process.env.INPUT_REQUIREDROLES;
  if (roles) {
    // ValidateServiceConnection's requests: the connection as Azure DevOps sees it first.
    const endpointUrl = `${process.env.SYSTEM_COLLECTIONURI}${process.env.SYSTEM_TEAMPROJECTID}/_apis/serviceendpoint/endpoints/${id}?api-version=7.1`;
    JSON.parse(await post(endpointUrl, { Authorization: `Bearer ${jobToken}` }, '', 'GET'));
  }
  const url = `${process.env.SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=${id}`;
  const idToken = JSON.parse(await post(url, { Authorization: `Bearer ${jobToken}`, 'Content-Type': 'application/json' }, '{}')).oidcToken;
  console.log(`##vso[task.setsecret]${idToken}`);
  console.log(`##vso[task.setvariable variable=idToken;isOutput=true;issecret=true;]${idToken}`);
  const roleArn = process.env.INPUT_ROLEARN;
  if (roleArn) {
    // AwsAssumeRoleFederated's request: STS with the idToken.
    const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: 'baseline', DurationSeconds: '3600', WebIdentityToken: idToken }).toString();
    const xml = await post(process.env.INPUT_STSENDPOINT!, { 'Content-Type': 'application/x-www-form-urlencoded' }, form);
    const secret = /<SecretAccessKey>([^<]*)</.exec(xml)?.[1];
    console.log(`##vso[task.setsecret]${secret}`);
    console.log(`##vso[task.setvariable variable=AWS_SECRET_ACCESS_KEY;isOutput=false;issecret=true;]${secret}`);
    return;
  }
  const registry = process.env.INPUT_REGISTRIES;
  const scope = registry ? 'https://containerregistry.azure.net/.default' : roles ? 'https://management.azure.com/.default' : process.env.INPUT_ACCESSTOKENSCOPE;
  if (scope) {
    const authority = process.env[`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`];
    const form = new URLSearchParams({
      client_id: auth.parameters.serviceprincipalid,
      scope,
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: idToken,
    }).toString();
    const token = JSON.parse(await post(`${authority}${auth.parameters.tenantid}/oauth2/v2.0/token`, { 'Content-Type': 'application/x-www-form-urlencoded' }, form)).access_token;
    console.log(`##vso[task.setsecret]${token}`);
    if (roles) {
      const arm = (process.env[`ENDPOINT_URL_${id}`] ?? '').replace(/\/+$/, '');
      const sub = process.env[`ENDPOINT_DATA_${id}_SUBSCRIPTIONID`];
      const h = { Authorization: `Bearer ${token}` };
      JSON.parse(await post(`${arm}/subscriptions/${sub}?api-version=2022-12-01`, h, '', 'GET'));
      const target = process.env.INPUT_SCOPE;
      JSON.parse(await post(`${arm}${target}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`, h, '', 'GET'));
      JSON.parse(await post(`${arm}${target}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=${encodeURIComponent(`roleName eq '${roles}'`)}`, h, '', 'GET'));
      console.log('##vso[task.setvariable variable=validationStatus;isOutput=true;issecret=false;]ok');
      return;
    }
    if (!registry) {
      console.log(`##vso[task.setvariable variable=accessToken;isOutput=true;issecret=true;]${token}`);
      return;
    }
    // AcrLoginFederated's requests: the exchange, then a 0600 auth file.
    const exchange = new URLSearchParams({ grant_type: 'access_token', service: registry, tenant: auth.parameters.tenantid, access_token: token }).toString();
    const refresh = JSON.parse(await post(`https://${registry}/oauth2/exchange`, { 'Content-Type': 'application/x-www-form-urlencoded' }, exchange)).refresh_token;
    console.log(`##vso[task.setsecret]${refresh}`);
    const dir = fs.mkdtempSync(path.join(process.env.AGENT_TEMPDIRECTORY ?? os.tmpdir(), 'docker-config-'));
    const auths = { [registry]: { auth: Buffer.from(`00000000-0000-0000-0000-000000000000:${refresh}`).toString('base64') } };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths }), { mode: 0o600 });
    console.log(`##vso[task.setvariable variable=DOCKER_CONFIG;isOutput=false;issecret=false;]${dir}`);
  }
}

main().catch((e) => {
  console.log(`##vso[task.complete result=Failed;]${(e as Error).message}`);
});
