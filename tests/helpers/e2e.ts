/** What every end-to-end suite shares: connections in the emulator, bundled runs, the leak scan. */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type { Emulator } from '../emulator';
import { connectionEnv, ConnectionEnv, jobEnv, JobOptions } from './agent';
import { findLeaks, runTaskProcess, TaskRun } from './task-process';

export const TENANT = '8d1f3a3e-2f4b-4c8e-9a55-0c6f1e7b2a10';

export interface FederatedConnection {
  id: string;
  clientId: string;
  name: string;
  expected: { issuer: string; subject: string };
}

/** A federated connection and its app; `fic` changes the federated credential (to provoke a mismatch). */
export function addFederatedConnection(emu: Emulator, name = `conn-${crypto.randomBytes(3).toString('hex')}`, fic?: (expected: { issuer: string; subject: string }) => { issuer: string; subject: string }): FederatedConnection {
  const id = crypto.randomUUID();
  const clientId = crypto.randomUUID();
  emu.addServiceConnection({ id, name, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId, subscriptionId: crypto.randomUUID() });
  const expected = emu.expectedFederation(id);
  const cred = fic ? fic(expected) : expected;
  emu.addApp({ clientId, tenantId: TENANT, federatedCredentials: [{ issuer: cred.issuer, subject: cred.subject, audiences: ['api://AzureADTokenExchange'] }] });
  return { id, clientId, name, expected };
}

export const wif = (c: { id: string; clientId: string }): ConnectionEnv => ({ id: c.id, scheme: 'WorkloadIdentityFederation', tenantId: TENANT, clientId: c.clientId, subscriptionId: '0b1c2d3e-0000-4000-8000-000000000001' });

export interface BundledRun {
  task: string;
  conn: ConnectionEnv;
  inputs?: Record<string, string>;
  job?: JobOptions;
  env?: Record<string, string>;
  entry?: string;
  node?: string;
}

/**
 * Runs bundled tasks against the emulator and scans every run's output, after each test, for
 * every token the emulator issued (and their signatures alone) and for extra secrets.
 */
export class E2eRuns {
  private runs: TaskRun[] = [];
  readonly extraSecrets: string[] = [];

  constructor(private readonly emu: () => Emulator) {}

  async run(r: BundledRun): Promise<TaskRun> {
    const emu = this.emu();
    const env: Record<string, string> = { ...jobEnv(emu, r.job), ...connectionEnv(emu, r.conn), INPUT_CONNECTEDSERVICENAMEARM: r.conn.id, ...(r.env ?? {}) };
    for (const [k, v] of Object.entries(r.inputs ?? {})) env[`INPUT_${k.toUpperCase()}`] = v;
    return this.record(await runTaskProcess(r.task, r.entry ?? 'index.js', { env, node: r.node }));
  }

  record(run: TaskRun): TaskRun {
    this.runs.push(run);
    return run;
  }

  /** The runs the next scan() will check. */
  pending(): readonly TaskRun[] {
    return this.runs;
  }

  /** Call from afterEach: fails the test whose runs leaked a secret. */
  scan(testTitle: string | undefined): void {
    const emu = this.emu();
    const secrets = [...emu.issuedTokens(), emu.jobAccessToken, ...this.extraSecrets];
    for (const t of emu.issuedTokens()) {
      const sig = t.split('.')[2];
      if (sig && sig.length >= 16) secrets.push(sig);
    }
    for (const run of this.runs.splice(0)) assert.deepEqual(findLeaks(run, secrets), [], `secrets leaked in "${testTitle}"`);
  }
}
