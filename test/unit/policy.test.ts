import { describe, expect, it } from 'vitest';
import { isAllowed } from '../../sandbox/credentials/policy.js';

const alias = 'arn:aws:iot:eu-west-1:123456789012:rolealias/device';
const doc = (...Statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement });
const allowAssume = { Effect: 'Allow', Action: 'iot:AssumeRoleWithCertificate', Resource: alias };

describe('isAllowed (IoT policy evaluation)', () => {
  it('allows an action and resource an Allow statement names exactly', () => {
    expect(isAllowed([doc(allowAssume)], 'iot:AssumeRoleWithCertificate', alias)).toBe(true);
  });

  it('allows through wildcards in action and resource, action case-insensitively', () => {
    const statement = {
      Effect: 'Allow',
      Action: ['IOT:Assume*'],
      Resource: 'arn:aws:iot:*:*:rolealias/dev?ce',
    };

    expect(isAllowed([doc(statement)], 'iot:AssumeRoleWithCertificate', alias)).toBe(true);
  });

  it('denies what no statement allows', () => {
    expect(
      isAllowed(
        [doc({ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' })],
        'iot:AssumeRoleWithCertificate',
        alias,
      ),
    ).toBe(false);
  });

  it('denies a role alias other than the one allowed', () => {
    expect(isAllowed([doc(allowAssume)], 'iot:AssumeRoleWithCertificate', `${alias}-admin`)).toBe(false);
  });

  it('lets an explicit Deny in any attached policy win over an Allow', () => {
    const deny = { Effect: 'Deny', Action: 'iot:*', Resource: '*' };

    expect(isAllowed([doc(allowAssume), doc(deny)], 'iot:AssumeRoleWithCertificate', alias)).toBe(false);
  });

  it('substitutes policy variables, and a missing variable matches nothing', () => {
    const statement = {
      Effect: 'Allow',
      Action: 'iot:AssumeRoleWithCertificate',
      Resource: `${alias.slice(0, -6)}\${iot:Connection.Thing.ThingName}`,
    };

    expect(
      isAllowed([doc(statement)], 'iot:AssumeRoleWithCertificate', alias, {
        'iot:Connection.Thing.ThingName': 'device',
      }),
    ).toBe(true);
    expect(isAllowed([doc(statement)], 'iot:AssumeRoleWithCertificate', alias)).toBe(false);
  });

  it('grants nothing through an Allow with a Condition it cannot evaluate', () => {
    expect(
      isAllowed(
        [doc({ ...allowAssume, Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } } })],
        'iot:AssumeRoleWithCertificate',
        alias,
      ),
    ).toBe(false);
  });

  it('ignores a document that is not JSON', () => {
    expect(isAllowed(['{', doc(allowAssume)], 'iot:AssumeRoleWithCertificate', alias)).toBe(true);
  });
});
