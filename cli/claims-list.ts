import { type ClaimView, listClaimsResponseSchema } from '../shared/admin/response-schemas.js';
import type { ApiClient } from './api-client.js';
import { type Format, printList } from './output.js';

export const CLAIM_VIEW_COLUMNS = ['claimId', 'status', 'usesLeft', 'maxUses', 'serialNumber', 'expiresAt'];

export async function listClaims(client: ApiClient, batchId: string, format: Format): Promise<void> {
  const claims: ClaimView[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ batchId, limit: '1000', ...(cursor ? { cursor } : {}) });
    const page = await client.call('GET', `claims?${query}`, listClaimsResponseSchema);
    claims.push(...page.claims);
    cursor = page.cursor;
  } while (cursor);
  await printList(claims, CLAIM_VIEW_COLUMNS, format);
}
