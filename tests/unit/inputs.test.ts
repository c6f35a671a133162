/** Scope and claim helpers. */
import * as assert from 'node:assert/strict';
import { decodeJwt, issuerKind } from '../../tasks/core/devops/claims';
import { TaskFailure } from '../../tasks/core/http/failures';

describe('claims', () => {
  it('decodes claims without verifying, and refuses what is not a JWT without echoing it', () => {
    const t = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"iss":"i","sub":"s"}').toString('base64url')}.sig`;
    assert.equal(decodeJwt(t, 'x').claims.sub, 's');
    assert.throws(() => decodeJwt('secret-value-not-a-jwt', 'The token'), (e: unknown) => e instanceof TaskFailure && !e.message.includes('secret-value'));
    assert.throws(() => decodeJwt('a.b.c', 'The token'), TaskFailure);
  });

  it('tells the vstoken issuer from the Entra issuer', () => {
    assert.equal(issuerKind('https://vstoken.dev.azure.com/8f2a'), 'vstoken');
    assert.equal(issuerKind('https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0'), 'entra');
    assert.equal(issuerKind('https://token.actions.githubusercontent.com'), 'other');
  });
});
