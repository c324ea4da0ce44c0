import type * as z from 'zod/mini';
import { batchViewSchema, listBatchesResponseSchema } from '../shared/admin/response-schemas.js';
import type { ApiClient } from './api-client.js';
import { type Format, printList, printObject } from './output.js';

/** Table and CSV columns: the counts flattened; JSON keeps the API's nested object. */
export const BATCH_COLUMNS = [
  'batchId',
  'status',
  'issued',
  'used',
  'revoked',
  'expired',
  'active',
  'failed',
  'decommissioned',
  'firstRegistrationAt',
  'lastRegistrationAt',
  'rotationRequestedAt',
];

type BatchView = z.infer<typeof batchViewSchema>;

function flat(batch: BatchView): Record<string, unknown> {
  return {
    ...batch,
    ...batch.claims,
    active: batch.devices.ACTIVE,
    failed: batch.devices.FAILED,
    decommissioned: batch.devices.DECOMMISSIONED,
  };
}

export async function getBatch(client: ApiClient, batchId: string, format: Format): Promise<void> {
  const batch = await client.call('GET', `batches/${encodeURIComponent(batchId)}`, batchViewSchema);
  await printBatch(batch, format);
}

/** Asks every device of the batch to rotate (one write); the devices learn it from GET /rotation. */
export async function rotateBatch(client: ApiClient, batchId: string, format: Format): Promise<void> {
  const batch = await client.call('POST', `batches/${encodeURIComponent(batchId)}/rotate`, batchViewSchema);
  await printBatch(batch, format);
}

function printBatch(batch: BatchView, format: Format): Promise<void> {
  return printObject(format === 'json' ? batch : flat(batch), BATCH_COLUMNS, format);
}

export async function listBatches(client: ApiClient, format: Format): Promise<void> {
  const batches: BatchView[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: '1000', ...(cursor ? { cursor } : {}) });
    const page = await client.call('GET', `batches?${query}`, listBatchesResponseSchema);
    batches.push(...page.batches);
    cursor = page.cursor;
  } while (cursor);
  await printList(format === 'json' ? batches : batches.map(flat), BATCH_COLUMNS, format);
}
