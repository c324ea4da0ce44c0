import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  type IoTClient,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createTables, resourcesOf } from '../sandbox/tables.js';
import { mintClaim } from '../shared/claims/mint-claim.js';
import { hashClaimToken } from '../shared/claims/token.js';
import type { Device } from './devices.js';

/** Tables of their own in the same DynamoDB Local: the naive replay never touches the inventory. */
export const NAIVE_TABLES = { claims: 'bench-naive-claims', devices: 'bench-naive-devices' };

export interface NaiveTarget {
  /** Through the delaying proxy, as the functions reach DynamoDB. */
  dynamo: DynamoDBClient;
  /** The IoT emulator, with its configured latency. */
  iot: IoTClient;
  policyName: string;
}

export interface NaiveCreated {
  thingName: string;
  certificateId: string;
  certificateArn: string;
}

/** Creates the replay's tables (from serverless.yml's definitions) straight in DynamoDB Local. */
export async function createNaiveTables(direct: DynamoDBClient): Promise<void> {
  await createTables(direct, resourcesOf('serverless.yml'), {
    ClaimsTable: NAIVE_TABLES.claims,
    DevicesTable: NAIVE_TABLES.devices,
  });
}

/** A claim for the replay, written straight to its table; returns its token. */
export async function seedNaiveClaim(direct: DynamoDBClient): Promise<string> {
  const { token, claim } = mintClaim({ batchId: 'BENCH-NAIVE', ttlSeconds: 3600 });
  await DynamoDBDocumentClient.from(direct).send(
    new PutCommand({ TableName: NAIVE_TABLES.claims, Item: claim }),
  );
  return token;
}

/**
 * A registration's AWS calls made strictly one after the other, each waiting for the previous
 * answer: the reference the saga's depth is compared with. The same eight calls, with items of the
 * same shape, from the same SDK clients as the functions use.
 */
export async function naiveRegistration(target: NaiveTarget, device: Device): Promise<NaiveCreated> {
  const tokenHash = hashClaimToken(device.token);
  const doc = DynamoDBDocumentClient.from(target.dynamo);
  const now = new Date().toISOString();
  const provisioningId = randomUUID();
  const thingName = device.serialNumber;
  const deviceKey = { serialNumber: device.serialNumber };
  await doc.send(
    new GetCommand({ TableName: NAIVE_TABLES.claims, Key: { tokenHash }, ConsistentRead: true }),
  );
  await doc.send(new GetCommand({ TableName: NAIVE_TABLES.devices, Key: deviceKey, ConsistentRead: true }));
  await doc.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: NAIVE_TABLES.claims,
            Key: { tokenHash },
            UpdateExpression: 'SET usesLeft = usesLeft - :one, lastUsedAt = :now',
            ConditionExpression: 'usesLeft > :zero',
            ExpressionAttributeValues: { ':one': 1, ':zero': 0, ':now': now },
          },
        },
        {
          Put: {
            TableName: NAIVE_TABLES.devices,
            Item: { ...deviceKey, thingName, status: 'PROVISIONING', provisioningId, createdAt: now },
            ConditionExpression: 'attribute_not_exists(serialNumber)',
          },
        },
        {
          Put: {
            TableName: NAIVE_TABLES.devices,
            Item: { serialNumber: `thing#${thingName}`, kind: 'thing-name', owner: device.serialNumber },
            ConditionExpression: 'attribute_not_exists(serialNumber)',
          },
        },
        {
          Put: {
            TableName: NAIVE_TABLES.devices,
            Item: { serialNumber: `key#${provisioningId}`, kind: 'public-key', owner: device.serialNumber },
            ConditionExpression: 'attribute_not_exists(serialNumber)',
          },
        },
        {
          Update: {
            TableName: NAIVE_TABLES.claims,
            Key: { tokenHash: 'batch#BENCH-NAIVE' },
            UpdateExpression: 'ADD used :one',
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
    }),
  );
  const certificate = await target.iot.send(
    new CreateCertificateFromCsrCommand({ certificateSigningRequest: device.csr, setAsActive: true }),
  );
  const certificateArn = certificate.certificateArn as string;
  const certificateId = certificate.certificateId as string;
  await target.iot.send(
    new CreateThingCommand({
      thingName,
      attributePayload: { attributes: { batchId: 'BENCH-NAIVE', provisioningId } },
    }),
  );
  await doc.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: NAIVE_TABLES.devices,
            Key: deviceKey,
            UpdateExpression:
              'SET #status = :active, certificateId = :id, certificateArn = :arn, certificatePem = :pem, activatedAt = :now',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':active': 'ACTIVE',
              ':id': certificateId,
              ':arn': certificateArn,
              ':pem': certificate.certificatePem,
              ':now': now,
            },
          },
        },
        {
          Update: {
            TableName: NAIVE_TABLES.claims,
            Key: { tokenHash: 'batch#BENCH-NAIVE' },
            UpdateExpression: 'ADD registered :one',
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
    }),
  );
  await target.iot.send(new AttachPolicyCommand({ policyName: target.policyName, target: certificateArn }));
  await target.iot.send(new AttachThingPrincipalCommand({ thingName, principal: certificateArn }));
  return { thingName, certificateId, certificateArn };
}

/**
 * Takes the replay's certificates and things out of the emulator again (detach, deactivate, delete
 * once the detachments have propagated), so that the invariant checker after the burst sees only the
 * inventory's own.
 */
export async function removeNaiveLeftovers(
  iot: IoTClient,
  policyName: string,
  created: NaiveCreated[],
): Promise<void> {
  for (const { thingName, certificateId, certificateArn } of created) {
    await iot.send(new DetachPolicyCommand({ policyName, target: certificateArn }));
    await iot.send(new DetachThingPrincipalCommand({ thingName, principal: certificateArn }));
    await iot.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }));
  }
  for (const { thingName, certificateId } of created) {
    await untilPropagated(() => iot.send(new DeleteCertificateCommand({ certificateId })));
    await untilPropagated(() => iot.send(new DeleteThingCommand({ thingName })));
  }
}

/** Retries a delete that AWS IoT refuses while a detachment propagates (docs/sandbox.md), for up to 10 s. */
async function untilPropagated(remove: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await remove();
      return;
    } catch (error) {
      const name = (error as Error).name;
      const propagating = name === 'DeleteConflictException' || name === 'InvalidRequestException';
      if (!propagating || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
