/** Atomic secret writes when the replacement is refused (as Windows refuses a file held open): no temp file left, the old bytes kept, the write's own error. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import * as sinon from 'sinon';
import { writeSecretFile } from '../../tasks/core/files/secret-files';
// The module object itself (not an import-star copy), so that a stub is what the product calls.
import fs = require('node:fs');

const errno = (code: string) => Object.assign(new Error(`${code}: refused`), { code });

describe('secret files: a refused write leaves nothing behind', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-secret-'));
    file = path.join(dir, 'token');
    fs.writeFileSync(file, 'old');
  });
  afterEach(() => {
    sinon.restore();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a rename refused with EPERM: the error is EPERM, the file keeps its old bytes, no *.tmp is left', () => {
    const rename = sinon.stub(fs, 'renameSync').throws(errno('EPERM'));
    assert.throws(() => writeSecretFile(file, 'new'), (e: NodeJS.ErrnoException) => e.code === 'EPERM');
    assert.equal(rename.callCount, 1);
    assert.equal(fs.readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(fs.readdirSync(dir), ['token']);
  });

  it('a write that fails after the temp file was created (ENOSPC) leaves no *.tmp', () => {
    sinon.stub(fs, 'writeSync').throws(errno('ENOSPC'));
    assert.throws(() => writeSecretFile(file, 'new'), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC');
    assert.deepEqual(fs.readdirSync(dir), ['token']);
  });

  it('a temp file that cannot be removed either: the caller still gets the write\'s own error', () => {
    sinon.stub(fs, 'renameSync').throws(errno('EPERM'));
    sinon.stub(fs, 'rmSync').throws(errno('EBUSY'));
    assert.throws(() => writeSecretFile(file, 'new'), (e: NodeJS.ErrnoException) => e.code === 'EPERM');
  });

  it('then writes normally once the file is free', () => {
    const rename = sinon.stub(fs, 'renameSync').onFirstCall().throws(errno('EPERM'));
    rename.callThrough();
    assert.throws(() => writeSecretFile(file, 'new'));
    writeSecretFile(file, 'new');
    assert.equal(fs.readFileSync(file, 'utf8'), 'new');
    assert.deepEqual(fs.readdirSync(dir), ['token']);
  });
});
