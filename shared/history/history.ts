import { randomUUID } from 'node:crypto';
import type { HistoryEvent, HistoryEventName } from '../admin/response-schemas.js';
import type { TransactItem } from '../inventory/transactions.js';

/** Who changed a device: the device itself, the reconciler, or an operator (their IAM principal's ARN). */
export const DEVICE_ACTOR = 'device';
export const RECONCILER_ACTOR = 'reconciler';

/** One entry of a device's history, before it is written. */
export type HistoryEntry = { event: HistoryEventName; actor: string } & Omit<
  HistoryEvent,
  'at' | 'event' | 'actor'
>;

/**
 * An entry as stored in the history table: under its device's serial number, sorted by `eventKey`
 * (the time, then the entry's place among those written at once, then a random tail so that two
 * writers never collide).
 */
export interface HistoryItem extends HistoryEvent {
  serialNumber: string;
  eventKey: string;
}

/**
 * The Put items that append `entries`, in order, to a device's history: written in the same
 * transaction as the change they tell of, so the history never says what did not happen, and never
 * misses what did. Append-only: a Put never replaces an entry.
 */
export function historyPuts(
  historyTable: string,
  serialNumber: string,
  at: Date,
  entries: HistoryEntry[],
): TransactItem[] {
  return entries.map((entry, index) => {
    const item: HistoryItem = {
      ...entry,
      serialNumber,
      at: at.toISOString(),
      eventKey: `${at.toISOString()}#${index}#${randomUUID().slice(0, 8)}`,
    };
    return {
      Put: {
        TableName: historyTable,
        Item: item,
        ConditionExpression: 'attribute_not_exists(eventKey)',
      },
    };
  });
}

/** An entry as the admin API shows it: without its storage keys. */
export function historyEvent(item: HistoryItem): HistoryEvent {
  const { serialNumber: _serial, eventKey: _key, ...event } = item;
  return event;
}
