export const TEST_TABLES = { claims: 'claims', devices: 'devices', history: 'history' } as const;
