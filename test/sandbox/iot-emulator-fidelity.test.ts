import {
  AttachPolicyCommand,
  CreateCertificateFromCsrCommand,
  CreatePolicyCommand,
  CreateRoleAliasCommand,
  DescribeCertificateCommand,
  ListPoliciesCommand,
  ListRoleAliasesCommand,
  ListTargetsForPolicyCommand,
  paginateListTargetsForPolicy,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { codeRejectedBy } from '../support/error-code.js';
import { type EmulatorFixture, startEmulator } from '../support/iot-emulator.js';

let fx: EmulatorFixture;
const policyDocument = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
});

beforeAll(async () => {
  fx = await startEmulator();
});
afterAll(async () => {
  await fx.emulator.close();
});

const newCertificate = () =>
  fx.client.send(
    new CreateCertificateFromCsrCommand({ certificateSigningRequest: buildCsr().pem, setAsActive: true }),
  );

describe('IoT emulator, operations and rules beyond registration', () => {
  it('refuses to set a certificate PENDING_TRANSFER or PENDING_ACTIVATION, which AWS keeps for itself', async () => {
    const { certificateId } = await newCertificate();

    for (const newStatus of ['PENDING_TRANSFER', 'PENDING_ACTIVATION'] as const) {
      expect(
        await codeRejectedBy(fx.client.send(new UpdateCertificateCommand({ certificateId, newStatus }))),
      ).toBe('InvalidRequestException');
    }
    const { certificateDescription } = await fx.client.send(
      new DescribeCertificateCommand({ certificateId }),
    );
    expect(certificateDescription?.status).toBe('ACTIVE');
  });

  it('lists policies, newest first unless asked for ascending creation order', async () => {
    await fx.client.send(new CreatePolicyCommand({ policyName: 'list-a', policyDocument }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await fx.client.send(new CreatePolicyCommand({ policyName: 'list-b', policyDocument }));

    const descending = await fx.client.send(new ListPoliciesCommand({}));
    const ascending = await fx.client.send(new ListPoliciesCommand({ ascendingOrder: true }));

    const names = (out: typeof descending) =>
      out.policies?.map((p) => p.policyName).filter((n) => n?.startsWith('list-'));
    expect(names(descending)).toEqual(['list-b', 'list-a']);
    expect(names(ascending)).toEqual(['list-a', 'list-b']);
    expect(ascending.policies?.[0]?.policyArn).toMatch(/^arn:aws:iot:eu-west-1:123456789012:policy\//);
  });

  it('lists role aliases by name', async () => {
    for (const roleAlias of ['alias-b', 'alias-a']) {
      await fx.client.send(
        new CreateRoleAliasCommand({ roleAlias, roleArn: 'arn:aws:iam::123456789012:role/device' }),
      );
    }

    const { roleAliases } = await fx.client.send(new ListRoleAliasesCommand({ ascendingOrder: true }));

    expect(roleAliases?.filter((name) => name.startsWith('alias-'))).toEqual(['alias-a', 'alias-b']);
  });

  it('lists the targets a policy is attached to, paginated, and ResourceNotFoundException for no policy', async () => {
    await fx.client.send(new CreatePolicyCommand({ policyName: 'targets', policyDocument }));
    const arns: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { certificateArn } = await newCertificate();
      await fx.client.send(new AttachPolicyCommand({ policyName: 'targets', target: certificateArn }));
      arns.push(certificateArn as string);
    }

    const targets: string[] = [];
    for await (const page of paginateListTargetsForPolicy(
      { client: fx.client, pageSize: 2 },
      { policyName: 'targets' },
    )) {
      targets.push(...(page.targets ?? []));
    }

    expect(targets.sort()).toEqual(arns.sort());
    expect(
      await codeRejectedBy(fx.client.send(new ListTargetsForPolicyCommand({ policyName: 'none' }))),
    ).toBe('ResourceNotFoundException');
  });
});
