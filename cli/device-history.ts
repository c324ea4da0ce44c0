import { deviceHistoryResponseSchema, type HistoryEvent } from '../shared/admin/response-schemas.js';
import type { ApiClient } from './api-client.js';
import { type Format, printList } from './output.js';

export const HISTORY_COLUMNS = ['at', 'event', 'actor', 'certificateId', 'details'];
const PAGE_SIZE = 1000;

/**
 * A device's whole history, oldest first: every page, so that a JSON array is the complete record
 * (events exactly as the API gives them); tables and CSV put a failure's step, error and rollback in
 * one `details` cell.
 */
export async function deviceHistory(client: ApiClient, serial: string, format: Format): Promise<void> {
  const events: HistoryEvent[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...(cursor ? { cursor } : {}) });
    const page = await client.call(
      'GET',
      `devices/${encodeURIComponent(serial)}/history?${query}`,
      deviceHistoryResponseSchema,
    );
    events.push(...page.events);
    cursor = page.cursor;
  } while (cursor);
  if (format === 'json') return printList(events, HISTORY_COLUMNS, format);
  await printList(
    events.map((event) => ({ ...event, details: details(event) })),
    HISTORY_COLUMNS,
    format,
  );
}

/** `step=attach; error=THROTTLED; rollback=COMPLETED`: the members present, in that order. */
export function details(event: HistoryEvent): string {
  return (['step', 'error', 'rollback'] as const)
    .filter((name) => event[name] !== undefined)
    .map((name) => `${name}=${event[name]}`)
    .join('; ');
}
