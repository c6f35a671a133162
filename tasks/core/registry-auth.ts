/**
 * Registry auth files (docker's config.json format, also read by podman, buildah, skopeo and helm).
 * Job scope: a fresh owner-only folder for this job. User scope: the user's own file, merged,
 * with its exact bytes kept aside so the post-job step can put them back.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ACR_USER } from './acr';
import { TaskFailure } from './failures';
import { makeSecretDir, removeSecretPath, writeSecretFile } from './secret-files';

export interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string; [k: string]: unknown }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

export interface Login {
  loginServer: string;
  refreshToken: string;
}

export function authEntry(refreshToken: string): { auth: string } {
  return { auth: Buffer.from(`${ACR_USER}:${refreshToken}`).toString('base64') };
}

/** The user's docker config file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG?.trim() || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** Reads a docker config; a file that is not a JSON object is reported, never overwritten. */
export function readDockerConfig(file: string): { bytes?: Buffer; config: DockerConfig } {
  if (!fs.existsSync(file)) return { config: {} };
  const bytes = fs.readFileSync(file);
  let parsed: unknown;
  try {
    parsed = bytes.length === 0 ? {} : JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw corrupt(file, 'it is not a JSON object');
  const config = parsed as DockerConfig;
  if (config.auths !== undefined && (typeof config.auths !== 'object' || config.auths === null || Array.isArray(config.auths))) throw corrupt(file, '"auths" is not an object');
  return { bytes, config };
}

function corrupt(file: string, why: string): TaskFailure {
  return new TaskFailure({
    what: `The docker config file ${file} could not be read (${why}); the task leaves it as it is.`,
    cause: 'The file was damaged, or another tool wrote something docker would not read either.',
    fix: 'Fix or remove the file, or use configScope: job, which writes a separate file for this job and does not touch yours.',
    code: 'DOCKER_CONFIG_CORRUPT',
  });
}

/** What a merge means for the tools, for the log: entries that would win over ours. */
export function mergeWarnings(config: DockerConfig, logins: Login[]): string[] {
  const out: string[] = [];
  for (const l of logins) {
    const helper = config.credHelpers?.[l.loginServer];
    if (helper !== undefined) out.push(`The docker config's credHelpers sends ${l.loginServer} to docker-credential-${helper}, which wins over the login written here: docker and podman will ask that helper instead. Remove the credHelpers entry for ${l.loginServer}, or use configScope: job.`);
  }
  if (config.credsStore) {
    out.push(`The docker config sets credsStore "${config.credsStore}": docker looks up every registry without a credHelpers entry in that store and ignores the logins written to "auths" (podman, skopeo and helm still use them). Use configScope: job for docker.`);
  }
  return out;
}

function withLogins(config: DockerConfig, logins: Login[]): DockerConfig {
  const auths = { ...(config.auths ?? {}) };
  for (const l of logins) auths[l.loginServer] = authEntry(l.refreshToken);
  return { ...config, auths };
}

export interface JobConfig {
  dir: string;
  file: string;
  notes: string[];
}

/**
 * A fresh config for this job, seeded with the user's own registries so later steps keep them,
 * minus what would hide these logins from docker (credsStore, credHelpers for these hosts).
 */
export function writeJobConfig(tempDirectory: string, logins: Login[], seedFile = userConfigPath()): JobConfig {
  const notes: string[] = [];
  let seed: DockerConfig = {};
  try {
    seed = readDockerConfig(seedFile).config;
  } catch {
    notes.push(`Your docker config ${seedFile} could not be read; this job's config starts empty.`);
  }
  if (seed.credsStore) {
    notes.push(`This job's config leaves out credsStore "${seed.credsStore}" of ${seedFile} (docker would otherwise ignore the logins written here); registries kept only in that store are not logged in for later steps.`);
    delete seed.credsStore;
  }
  if (seed.credHelpers) {
    const helpers = { ...seed.credHelpers };
    for (const l of logins) delete helpers[l.loginServer];
    seed.credHelpers = helpers;
  }
  const dir = makeSecretDir(tempDirectory, 'docker-config');
  const file = path.join(dir, 'config.json');
  writeSecretFile(file, JSON.stringify(withLogins(seed, logins), null, 2) + '\n');
  return { dir, file, notes };
}

export interface UserConfigBackup {
  file: string;
  /** Where the exact original bytes are kept (owner-only), or undefined when there was no file. */
  backup?: string;
  backupDir: string;
  /** The folder the task created for the file, to remove on restore. */
  createdDir?: string;
  /** The original file's permission bits. */
  mode?: number;
}

/**
 * Keeps the user's file aside (exact bytes, owner-only) before anything touches it, so the
 * post-job step can restore it even if the task fails half-way.
 */
export function backupUserConfig(tempDirectory: string, file = userConfigPath()): { backup: UserConfigBackup; config: DockerConfig } {
  const { bytes, config } = readDockerConfig(file);
  const backupDir = makeSecretDir(tempDirectory, 'docker-config-backup');
  const backup: UserConfigBackup = { file, backupDir };
  if (bytes) {
    backup.backup = path.join(backupDir, 'config.json.orig');
    backup.mode = fs.statSync(file).mode & 0o777;
    writeSecretFile(backup.backup, bytes);
  } else if (!fs.existsSync(path.dirname(file))) {
    backup.createdDir = path.dirname(file);
  }
  return { backup, config };
}

/** Writes the user's config with the logins merged in, every other entry and key kept, atomically. */
export function writeMergedUserConfig(file: string, config: DockerConfig, logins: Login[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Tokens are in it now: owner-only, whatever the file's mode was; the restore puts the mode back.
  writeSecretFile(file, JSON.stringify(withLogins(config, logins), null, 2) + '\n');
}

/** Puts the user's file back exactly as it was (or removes it); harmless when run twice. */
export function restoreUserConfig(b: UserConfigBackup): string {
  if (!fs.existsSync(b.backupDir)) return `The docker config ${b.file} was already restored.`;
  let what: string;
  if (b.backup && fs.existsSync(b.backup)) {
    const original = fs.readFileSync(b.backup);
    fs.mkdirSync(path.dirname(b.file), { recursive: true });
    writeSecretFile(b.file, original);
    fs.chmodSync(b.file, b.mode ?? 0o600);
    what = `Restored ${b.file} to its contents before the task.`;
  } else {
    removeSecretPath(b.file);
    if (b.createdDir) {
      try {
        fs.rmdirSync(b.createdDir);
      } catch {
        /* not empty: another tool wrote there; leave it */
      }
    }
    what = `Removed ${b.file}, which did not exist before the task.`;
  }
  removeSecretPath(b.backupDir);
  return what;
}
