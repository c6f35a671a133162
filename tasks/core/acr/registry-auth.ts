/**
 * Registry auth files (docker's config.json format, also read by podman, buildah, skopeo and helm).
 * Job scope: a fresh owner-only folder for this job. User scope: the user's own file, shared with
 * other jobs of the agent account: changed only under its lock, each run taking out only what it
 * put in (see mergeUserConfig and restoreUserConfig).
 */
import fs = require('node:fs');
import os = require('node:os');
import path = require('node:path');
import { isDeepStrictEqual } from 'node:util';
import { TaskFailure } from '../http/failures';
import { sha256Hex } from '../files/lazy-crypto';
import { ConfigBytes, ConfigTarget, LockOptions, readConfigBytes, resolveConfigTarget, withConfigLock } from './docker-config-file';
import { makeSecretDir, removeSecretPath, writeFileAtomic, writeSecretFile } from '../files/secret-files';

/** The user name ACR expects with a refresh token. */
export const ACR_USER = '00000000-0000-0000-0000-000000000000';

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

/** The user's docker config file where docker reads it: $DOCKER_CONFIG/config.json, else config.json in the home folder's .docker (os.homedir(): %USERPROFILE% on Windows). */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG?.trim() || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** Reads a docker config; a file that is not a JSON object, or not a readable regular file, is reported, never overwritten. */
export function readDockerConfig(file: string): { bytes?: Buffer; config: DockerConfig } {
  const target = resolveConfigTarget(file);
  const read = readConfigBytes(target);
  return { bytes: read.bytes, config: parseDockerConfig(target.file, read) };
}

function parseDockerConfig(file: string, read: ConfigBytes): DockerConfig {
  if (!read.bytes) return {};
  const bytes = read.bytes;
  let parsed: unknown;
  try {
    parsed = bytes.length === 0 ? {} : JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw corrupt(file, 'it is not a JSON object');
  const config = parsed as DockerConfig;
  if (config.auths !== undefined && (typeof config.auths !== 'object' || config.auths === null || Array.isArray(config.auths))) throw corrupt(file, '"auths" is not an object');
  return config;
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


// ---- User scope: the user's own file, shared with other jobs of the agent account ----
//
// Each run records, per registry, a hash of the entry it wrote and the entry it replaced (in an
// owner-only file under Agent.TempDirectory). Runs that overlap share a record next to the file,
// `config.json.wit-restore` (0600): the file's bytes and mode before the first of them, a hash of
// the bytes last written by one of them (to see whether anyone else wrote since), and the entries
// of runs that ended while a later run had overwritten their login. Everything happens under
// `config.json.lock`.

type AuthEntry = NonNullable<DockerConfig['auths']>[string];

interface Pristine {
  exists: boolean;
  /** The exact bytes (base64) and permission bits before the first run of an overlapping set. */
  bytes?: string;
  mode?: number;
  /** Folders the first run created for the file (deepest first), removed when it is removed. */
  createdDirs?: string[];
}

interface HostRecord {
  host: string;
  /** sha256 of the entry this run wrote: the token itself is not kept. */
  wrote: string;
  /** The entry it replaced, or null when there was none. */
  previous: AuthEntry | null;
}

interface RunRecord {
  file: string;
  real: string;
  hosts: HostRecord[];
  pristine: Pristine;
}

interface SharedRecord {
  v: 1;
  pristine: Pristine;
  /** sha256 of the bytes a run of this set last wrote. */
  written: string;
  /** Logins of ended runs that a later run had overwritten: what each one's entry should go back to. */
  retired: Record<string, { wrote: string; previous: AuthEntry | null }[]>;
}

export interface UserConfigState {
  file: string;
  /** Owner-only folder under Agent.TempDirectory holding this run's record. */
  backupDir: string;
}

const RUN_RECORD = 'run.json';

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

const sha256 = sha256Hex;
const entryHash = (e: unknown) => sha256(canonical(e));
const bytesHash = (b: Buffer | undefined) => (b ? sha256(b) : 'absent');
const sharedPath = (t: ConfigTarget) => `${t.real}.wit-restore`;

function serialize(config: DockerConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

function loadShared(t: ConfigTarget): SharedRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(sharedPath(t), 'utf8')) as SharedRecord;
    return r && r.v === 1 && r.pristine && typeof r.written === 'string' ? { ...r, retired: r.retired ?? {} } : undefined;
  } catch {
    return undefined;
  }
}

function saveShared(t: ConfigTarget, r: SharedRecord | undefined): void {
  if (r) writeSecretFile(sharedPath(t), JSON.stringify(r));
  else fs.rmSync(sharedPath(t), { force: true });
}

/** Content equality, with an empty "auths" the same as none (the task may leave `"auths": {}`). */
function sameContent(a: DockerConfig, b: DockerConfig): boolean {
  const norm = (c: DockerConfig) => {
    const copy = { ...c };
    if (copy.auths && typeof copy.auths === 'object' && !Object.keys(copy.auths).length) delete copy.auths;
    return copy;
  };
  return isDeepStrictEqual(norm(a), norm(b));
}

/** Folders that `mkdirSync(dir, { recursive: true })` created, deepest first. */
function createdFolders(dir: string, firstCreated: string | undefined): string[] | undefined {
  if (!firstCreated) return undefined;
  const out: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    out.push(d);
    if (d === firstCreated || path.dirname(d) === d) break;
  }
  return out;
}

export interface UserMerge {
  file: string;
  /** The file as it was before this run's change (for the warnings about credsStore and credHelpers). */
  config: DockerConfig;
  notes: string[];
}

/** Checks the user's file before any token is fetched: a bad file fails the task at once. */
export function checkUserConfig(file = userConfigPath()): DockerConfig {
  return readDockerConfig(file).config;
}

/**
 * Merges the logins into the user's file under its lock, keeping every other entry and key, and
 * records what this run replaced so that the post-job step can take out exactly its own logins.
 */
export async function mergeUserConfig(file: string, logins: Login[], backupDir: string, lock: LockOptions): Promise<UserMerge> {
  const target = resolveConfigTarget(file);
  const dir = path.dirname(target.real);
  const createdDirs = createdFolders(dir, fs.mkdirSync(dir, { recursive: true, mode: 0o700 }));
  const notes: string[] = [];
  if (target.symlink) notes.push(`${file} is a symlink: the logins are written to its target ${target.real}, and the symlink stays.`);
  const config = await withConfigLock(target, lock, () => {
    const read = readConfigBytes(target);
    const config = parseDockerConfig(file, read);
    let shared = loadShared(target);
    if (shared && shared.written !== bytesHash(read.bytes)) {
      notes.push(`The record ${sharedPath(target)} of earlier jobs no longer matches the file (someone else wrote it since); starting a new one.`);
      shared = undefined;
    }
    const pristine: Pristine = read.bytes ? { exists: true, bytes: read.bytes.toString('base64'), mode: read.mode } : { exists: false, createdDirs };
    if (shared) notes.push(`Other jobs' logins are in ${file} too; each job's post-job step takes out only its own.`);
    shared ??= { v: 1, pristine, written: '', retired: {} };
    const record: RunRecord = {
      file,
      real: target.real,
      pristine,
      hosts: logins.map((l) => ({ host: l.loginServer, wrote: entryHash(authEntry(l.refreshToken)), previous: config.auths?.[l.loginServer] ?? null })),
    };
    // The record first: if the write below fails half-way, the post-job step still knows what is its own.
    writeSecretFile(path.join(backupDir, RUN_RECORD), JSON.stringify(record));
    const merged = Buffer.from(serialize(withLogins(config, logins)));
    // Tokens are in it now: owner-only, whatever the file's mode was; the restore puts the mode back.
    writeFileAtomic(target.real, merged, 0o600, read.uid !== undefined ? { uid: read.uid, gid: read.gid! } : undefined);
    shared.written = bytesHash(merged);
    saveShared(target, shared);
    return config;
  });
  return { file, config, notes };
}

/** The entry a login should go back to, skipping logins of runs that have ended. */
function resolvePrevious(shared: SharedRecord | undefined, host: string, previous: AuthEntry | null): AuthEntry | null {
  const retired = shared?.retired[host];
  for (let hops = 0; previous && retired?.length && hops < 1000; hops++) {
    const h = entryHash(previous);
    const i = retired.findIndex((r) => r.wrote === h);
    if (i < 0) break;
    previous = retired[i].previous;
    retired.splice(i, 1);
  }
  if (shared && retired && !retired.length) delete shared.retired[host];
  return previous;
}

/**
 * Takes this run's logins out of the user's file, under its lock: each entry that still holds
 * this run's token goes back to what it replaced (or is deleted); an entry someone changed since
 * is left. When the content is then what it was before the first overlapping run, the original
 * bytes and mode are put back (or the file, created by a run, is removed). Harmless when run twice.
 */
export async function restoreUserConfig(state: UserConfigState, lock: LockOptions): Promise<string[]> {
  if (!fs.existsSync(state.backupDir)) return [`The docker config ${state.file} was already restored.`];
  let record: RunRecord;
  try {
    record = JSON.parse(fs.readFileSync(path.join(state.backupDir, RUN_RECORD), 'utf8')) as RunRecord;
  } catch {
    removeSecretPath(state.backupDir);
    return [`This job wrote no login to ${state.file}; nothing to remove.`];
  }
  const target: ConfigTarget = { ...resolveConfigTarget(record.file), real: record.real };
  const out: string[] = [];
  let removeDirs: string[] | undefined;
  await withConfigLock(target, lock, () => {
    const read = readConfigBytes(target);
    if (!read.bytes) {
      out.push(`The docker config ${record.file} no longer exists (removed by someone else); nothing to take out.`);
      return;
    }
    const config = parseDockerConfig(record.file, read);
    const shared = loadShared(target);
    const auths = { ...(config.auths ?? {}) };
    let changed = false;
    for (const h of record.hosts) {
      const now = auths[h.host];
      const previous = resolvePrevious(shared, h.host, h.previous);
      if (now !== undefined && entryHash(now) === h.wrote) {
        if (previous) auths[h.host] = previous;
        else delete auths[h.host];
        changed = true;
        out.push(previous ? `Put back the previous login to ${h.host}.` : `Removed the login to ${h.host}.`);
      } else {
        out.push(`Left the login to ${h.host}: it was changed since by someone else (another job, or docker login).`);
        if (shared) (shared.retired[h.host] ??= []).push({ wrote: h.wrote, previous });
      }
    }
    const result: DockerConfig = changed ? { ...config, auths } : config;
    const pristine = shared?.pristine ?? record.pristine;
    const before = pristine.exists && pristine.bytes !== undefined ? Buffer.from(pristine.bytes, 'base64') : undefined;
    let beforeConfig: DockerConfig | undefined;
    try {
      beforeConfig = before ? parseDockerConfig(record.file, { exists: true, bytes: before }) : {};
    } catch {
      beforeConfig = undefined;
    }
    if (beforeConfig && sameContent(result, beforeConfig)) {
      if (before) {
        writeFileAtomic(target.real, before, pristine.mode ?? 0o600, { uid: read.uid!, gid: read.gid! });
        out.push(`Restored ${record.file} to its exact contents before the job${shared ? 's' : ''}.`);
      } else {
        fs.rmSync(target.real, { force: true });
        removeDirs = pristine.createdDirs;
        out.push(`Removed ${record.file}, which did not exist before the job.`);
      }
      saveShared(target, undefined);
      return;
    }
    if (changed) {
      const bytes = Buffer.from(serialize(result));
      writeFileAtomic(target.real, bytes, read.mode ?? 0o600, { uid: read.uid!, gid: read.gid! });
      if (shared && shared.written === bytesHash(read.bytes)) {
        shared.written = bytesHash(bytes);
      }
      out.push(`Other entries of ${record.file} are kept${shared && shared.written === bytesHash(bytes) ? '; the last job to end puts back its original bytes' : ' as they are now (it was changed by someone else since)'}.`);
    }
    if (shared) saveShared(target, shared);
  });
  for (const d of removeDirs ?? []) {
    try {
      fs.rmdirSync(d);
    } catch {
      break; // not empty: someone else keeps files there
    }
  }
  removeSecretPath(state.backupDir);
  return out;
}
