import type { BatchItem, DeviceStatus } from '../inventory/model.js';

export interface BatchView {
  batchId: string;
  status: BatchItem['status'];
  createdAt: string;
  revokedAt?: string;
  /** Tokens: minted, used (at least once), revoked while unused, expired while unused. */
  claims: { issued: number; used: number; revoked: number; expired: number };
  /** Reset devices leave their batch's counts until they register again. */
  devices: Record<Exclude<DeviceStatus, 'PROVISIONING' | 'RESET'>, number>;
  firstRegistrationAt?: string;
  lastRegistrationAt?: string;
  /** When an operator asked every device of the batch to rotate. */
  rotationRequestedAt?: string;
}

/**
 * What a batch item's counters say, at `now`. Tokens are counted by expiry, so an unused token is
 * `expired` once its expiry has passed, or `revoked` if the batch was revoked before that.
 */
export function batchView(item: BatchItem, now: Date): BatchView {
  const byExpiry = new Map<number, { issued: number; used: number; revoked: number }>();
  for (const [name, value] of Object.entries(item)) {
    const match = /^(issued|used|revoked)@(\d+)$/.exec(name);
    if (!match || typeof value !== 'number') continue;
    const expiry = Number(match[2]);
    const entry = byExpiry.get(expiry) ?? { issued: 0, used: 0, revoked: 0 };
    entry[match[1] as 'issued' | 'used' | 'revoked'] += value;
    byExpiry.set(expiry, entry);
  }
  const claims = { issued: 0, used: 0, revoked: 0, expired: 0 };
  const nowSeconds = now.getTime() / 1000;
  const revokedSeconds = item.revokedAt ? Date.parse(item.revokedAt) / 1000 : Number.POSITIVE_INFINITY;
  for (const [expiry, entry] of byExpiry) {
    claims.issued += entry.issued;
    claims.used += entry.used;
    claims.revoked += entry.revoked;
    const unused = Math.max(0, entry.issued - entry.used - entry.revoked);
    if (expiry <= Math.min(nowSeconds, revokedSeconds)) claims.expired += unused;
    else if (item.status === 'REVOKED') claims.revoked += unused;
  }
  const devices = (status: DeviceStatus) => Math.max(0, item[`devices@${status}`] ?? 0);
  return {
    batchId: item.batchId,
    status: item.status ?? 'ACTIVE',
    createdAt: item.createdAt,
    ...(item.revokedAt ? { revokedAt: item.revokedAt } : {}),
    claims,
    devices: {
      ACTIVE: devices('ACTIVE'),
      FAILED: devices('FAILED'),
      DECOMMISSIONED: devices('DECOMMISSIONED'),
    },
    ...(item.firstRegistrationAt ? { firstRegistrationAt: item.firstRegistrationAt } : {}),
    ...(item.lastRegistrationAt ? { lastRegistrationAt: item.lastRegistrationAt } : {}),
    ...(item.rotationRequestedAt ? { rotationRequestedAt: item.rotationRequestedAt } : {}),
  };
}
