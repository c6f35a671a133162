/**
 * L0 runner for VaultSecretsFederated@1 under TaskMockRunner: Vault is mocked at its client
 * (tasks/core/vault/vault-client.ts), which answers from the Vault the test describes in L0_VAULT
 * (VaultWorld in vault.test.ts) and prints what it was asked; the secrets' parsing, reading and
 * delivery are the task's own code.
 */
import { federatedTaskMock } from './federated-harness';

/** What vault.test.ts describes: the login's answer, the mounts (KV version by mount path), the secrets, the revoke's status. */
interface VaultWorld {
  token: string;
  accessor: string;
  policies: string[];
  leaseDuration: number;
  mounts: Record<string, 1 | 2>;
  /** By API path (secret/data/ci/db for KV version 2): the secret's data. */
  secrets: Record<string, Record<string, unknown>>;
  /** API paths the token's policies do not grant read on. */
  forbidden: string[];
  /** revoke-self's answer: 204, or 403 (refused). */
  revoke: number;
}

const world = JSON.parse(process.env.L0_VAULT ?? '{}') as VaultWorld;
const { tmr, token: idToken } = federatedTaskMock('VaultSecretsFederatedV1', 'sc://contoso/web/vault');

interface Target { address: string; namespace?: string; authMount: string; role?: string }

const answer = (status: number, body: unknown, url: string) => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), url, attempts: 1 });
const denied = (url: string) => answer(403, { errors: ['1 error occurred:\n\t* permission denied\n\n'] }, url);

tmr.registerMock('../core/vault/vault-client', {
  VaultClient: class {
    constructor(_http: unknown, readonly target: Target) {}

    private where(): string {
      return `${this.target.address} namespace=${this.target.namespace ?? '(root)'}`;
    }

    private who(token: string): string {
      return token === world.token ? 'the Vault token' : 'another token';
    }

    async login(jwt: string) {
      const t = this.target;
      console.log(`L0: login at ${this.where()} auth/${t.authMount} role=${t.role ?? '(default)'} jwt=${jwt === idToken ? 'the idToken' : 'another token'}`);
      // As the real client: the token is masked before it is returned.
      (require('../../tasks/core/agent/variables') as typeof import('../../tasks/core/agent/variables')).mask(world.token);
      return { token: world.token, accessor: world.accessor, policies: world.policies, leaseDuration: world.leaseDuration, renewable: true, metadata: { role: t.role ?? 'default-role' } };
    }

    async mountOf(token: string, path: string) {
      console.log(`L0: mount of ${path} with ${this.who(token)}`);
      const mount = Object.keys(world.mounts).find((m) => path.startsWith(`${m}/`));
      if (!mount) return { refused: denied(`${this.target.address}/v1/sys/internal/ui/mounts/${path}`) };
      return { path: mount, type: 'kv', kvVersion: world.mounts[mount] };
    }

    async read(token: string, apiPath: string) {
      console.log(`L0: read ${apiPath} with ${this.who(token)}`);
      const url = `${this.target.address}/v1/${apiPath}`;
      if (token !== world.token || world.forbidden.includes(apiPath)) return denied(url);
      const data = world.secrets[apiPath];
      if (!data) return answer(404, { errors: [] }, url);
      const version = world.mounts[apiPath.split('/')[0]];
      return answer(200, version === 2 ? { data: { data, metadata: { version: 3, deletion_time: '', destroyed: false } } } : { data, lease_duration: 2764800 }, url);
    }

    async revokeSelf(token: string) {
      console.log(`L0: revoke-self at ${this.where()} with ${token === world.token ? 'the stored token' : 'another token'}`);
      if (world.revoke === 204) return { revoked: true };
      if (world.revoke === 403) return { revoked: false, refused: denied(`${this.target.address}/v1/auth/token/revoke-self`) };
      throw new Error(`L0: no answer for revoke-self ${world.revoke}`);
    }
  },
});
// A post-job step loads no task-lib (tasks/core/agent/agent-channel.ts): it runs without the mock task-lib,
// whose loading would take the task variables out of the environment the agent gives the step.
tmr.run(process.env.L0_SCENARIO === 'post');
