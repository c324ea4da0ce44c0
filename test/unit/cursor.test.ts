import { describe, expect, it } from 'vitest';
import { resourcesOf, tableDefinitions } from '../../sandbox/tables.js';
import { CURSOR_KEYS, decodeCursor, encodeCursor } from '../../shared/inventory/cursor.js';
import { codeThrownBy } from '../support/error-code.js';

/** The attributes of a LastEvaluatedKey from an index, as serverless.yml declares the table. */
function lastEvaluatedKeyOf(table: string, index: string): string[] {
  const definition = tableDefinitions(resourcesOf('serverless.yml')).get(table);
  const indexKeys = definition?.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === index)?.KeySchema;
  const names = [...(definition?.KeySchema ?? []), ...(indexKeys ?? [])].map(
    (key) => key.AttributeName ?? '',
  );
  return [...new Set(names)];
}

describe('pagination cursors', () => {
  it.each([
    ['claimsByBatch', 'ClaimsTable', 'byBatch'],
    ['devicesByBatch', 'DevicesTable', 'byBatch'],
    ['devicesByStatus', 'DevicesTable', 'byStatus'],
  ] as const)('expects for %s the key attributes serverless.yml gives the index', (name, table, index) => {
    expect([...CURSOR_KEYS[name]].sort()).toEqual(lastEvaluatedKeyOf(table, index).sort());
  });

  it('gives back the key it encoded', () => {
    const key = { serialNumber: 'SN-1', status: 'ACTIVE', updatedAt: '2026-11-28T12:00:00.000Z' };

    expect(decodeCursor(encodeCursor(key), CURSOR_KEYS.devicesByStatus)).toEqual(key);
  });

  it.each([
    ['not base64url JSON', 'not-a-cursor'],
    ['a JSON array', Buffer.from('["SN-1","B1"]').toString('base64url')],
    [
      'a key with __proto__',
      Buffer.from('{"__proto__":"x","serialNumber":"S","batchId":"B"}').toString('base64url'),
    ],
    ['a key with an empty value', encodeCursor({ serialNumber: '', batchId: 'B1' })],
  ])('refuses %s as INVALID_REQUEST', (_name, cursor) => {
    expect(codeThrownBy(() => decodeCursor(cursor, CURSOR_KEYS.devicesByBatch))).toBe('INVALID_REQUEST');
  });
});
