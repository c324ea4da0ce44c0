export const TEST_TABLES = { claims: 'claims', devices: 'devices' } as const;
