/** Where the user-scope docker config is, as docker itself finds it: DOCKER_CONFIG, else the home folder's .docker (%USERPROFILE%\.docker on Windows). */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as sinon from 'sinon';
import { userConfigPath } from '../../tasks/core/acr/registry-auth';
// The module object itself, so that a stub is what the product calls.
import os = require('node:os');

describe('user-scope docker config path', () => {
  afterEach(() => sinon.restore());

  it('without DOCKER_CONFIG: <home>\\.docker\\config.json, the home folder from os.homedir() (USERPROFILE on Windows), joined by the platform', () => {
    const home = 'C:\\Users\\agent';
    sinon.stub(os, 'homedir').returns(home);
    assert.equal(userConfigPath({ USERPROFILE: home }), path.join(home, '.docker', 'config.json'));
    assert.equal(userConfigPath({ DOCKER_CONFIG: '  ' }), path.join(home, '.docker', 'config.json'), 'a blank DOCKER_CONFIG counts as unset');
  });

  it('without DOCKER_CONFIG and without a stub: the real home folder, never a literal "~"', () => {
    const p = userConfigPath({});
    assert.equal(p, path.join(os.homedir(), '.docker', 'config.json'));
    assert.ok(path.isAbsolute(p), p);
    assert.ok(!p.includes('~'), p);
  });

  it('DOCKER_CONFIG wins over the home folder', () => {
    sinon.stub(os, 'homedir').returns('C:\\Users\\agent');
    const dir = path.join(os.tmpdir(), 'docker-config-elsewhere');
    assert.equal(userConfigPath({ DOCKER_CONFIG: dir }), path.join(dir, 'config.json'));
    assert.equal(userConfigPath({ DOCKER_CONFIG: 'D:\\docker' }), path.join('D:\\docker', 'config.json'));
  });
});
