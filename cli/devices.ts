import { deviceViewSchema, listDevicesResponseSchema } from '../shared/admin/response-schemas.js';
import type { ListQuery } from '../shared/admin/schemas.js';
import type { ApiClient } from './api-client.js';
import { confirm } from './confirm.js';
import { CliError } from './errors.js';
import { type Format, printList, printObject } from './output.js';

export const DEVICE_COLUMNS = [
  'serialNumber',
  'status',
  'thingName',
  'batchId',
  'certificateId',
  'updatedAt',
];
const PAGE_SIZE = 1000;

export async function getDevice(client: ApiClient, serial: string, format: Format): Promise<void> {
  const device = await client.call('GET', `devices/${encodeURIComponent(serial)}`, deviceViewSchema);
  await printObject(device, DEVICE_COLUMNS, format);
}

export async function listDevices(
  client: ApiClient,
  filter: Pick<ListQuery, 'batchId' | 'status'>,
  format: Format,
): Promise<void> {
  const devices = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({
      ...(filter.batchId ? { batchId: filter.batchId } : {}),
      ...(filter.status ? { status: filter.status } : {}),
      limit: String(PAGE_SIZE),
      ...(cursor ? { cursor } : {}),
    });
    const page = await client.call('GET', `devices?${query}`, listDevicesResponseSchema);
    devices.push(...page.devices);
    cursor = page.cursor;
  } while (cursor);
  // Why each failed, so an operator can act without reading logs.
  const failed = filter.status === 'FAILED';
  const rows = failed
    ? devices.map((device) => ({
        ...device,
        failedStep: device.failure?.step,
        error: device.failure?.error,
        rollback: device.failure?.rollback,
      }))
    : devices;
  await printList(rows, failed ? [...DEVICE_COLUMNS, ...FAILURE_COLUMNS] : DEVICE_COLUMNS, format);
}

const FAILURE_COLUMNS = ['failedStep', 'error', 'rollback'];

export async function decommissionDevice(
  client: ApiClient,
  serial: string,
  options: { yes?: boolean; format: Format },
): Promise<void> {
  if (!options.yes) {
    const sure = await confirm(
      `Decommission ${serial}? Its certificate is deactivated and detached and its thing removed: the device ` +
        'can no longer get credentials.',
      `decommission ${serial}`,
    );
    if (!sure) throw new CliError(`${serial} was not decommissioned`);
  }
  const device = await client.call(
    'POST',
    `devices/${encodeURIComponent(serial)}/decommission`,
    deviceViewSchema,
  );
  await printObject(device, DEVICE_COLUMNS, options.format);
}
