import {
  type DeviceView,
  deviceViewSchema,
  listDevicesResponseSchema,
} from '../shared/admin/response-schemas.js';
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
  filter: Pick<ListQuery, 'batchId' | 'status' | 'rotation'>,
  format: Format,
): Promise<void> {
  const devices = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({
      ...(filter.batchId ? { batchId: filter.batchId } : {}),
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.rotation ? { rotation: filter.rotation } : {}),
      limit: String(PAGE_SIZE),
      ...(cursor ? { cursor } : {}),
    });
    const page = await client.call('GET', `devices?${query}`, listDevicesResponseSchema);
    devices.push(...page.devices);
    cursor = page.cursor;
  } while (cursor);
  // Why each failed, so an operator can act without reading logs; when each was asked to rotate.
  const failed = filter.status === 'FAILED';
  const rotation = filter.rotation !== undefined;
  const rows = devices.map((device) => ({
    ...device,
    ...(failed ? failureCells(device) : {}),
    ...(rotation ? rotationCells(device) : {}),
  }));
  await printList(
    rows,
    [...DEVICE_COLUMNS, ...(failed ? FAILURE_COLUMNS : []), ...(rotation ? ROTATION_COLUMNS : [])],
    format,
  );
}

const FAILURE_COLUMNS = ['failedStep', 'error', 'rollback'];
const ROTATION_COLUMNS = ['rotationDue', 'rotationOverdue', 'rotationRequestedAt'];

const failureCells = (device: DeviceView) => ({
  failedStep: device.failure?.step,
  error: device.failure?.error,
  rollback: device.failure?.rollback,
});

const rotationCells = (device: DeviceView) => ({
  rotationDue: device.rotation?.due,
  rotationOverdue: device.rotation?.overdue,
  rotationRequestedAt: device.rotation?.requestedAt,
});

/**
 * Asks one device to rotate its certificate: the API records the request and the device learns it the
 * next time it polls GET /rotation. Nothing changes on the device's side until it does.
 */
export async function rotateDevice(client: ApiClient, serial: string, format: Format): Promise<void> {
  const device = await client.call('POST', `devices/${encodeURIComponent(serial)}/rotate`, deviceViewSchema);
  await printObject(device, DEVICE_COLUMNS, format);
}

/**
 * After a repair: the device's certificates are retired and it is RESET, thing and thing name kept, so
 * that it may register again, once, with a claim bound to its serial number.
 */
export async function resetDevice(
  client: ApiClient,
  serial: string,
  options: { yes?: boolean; format: Format },
): Promise<void> {
  if (!options.yes) {
    const sure = await confirm(
      `Reset ${serial}? Its certificates are retired (it can no longer get credentials) until it registers ` +
        'again with a claim bound to its serial number.',
      `reset ${serial}`,
    );
    if (!sure) throw new CliError(`${serial} was not reset`);
  }
  const device = await client.call('POST', `devices/${encodeURIComponent(serial)}/reset`, deviceViewSchema);
  await printObject(device, DEVICE_COLUMNS, options.format);
  process.stderr.write(
    `${serial} may register again, once, with a claim bound to its serial number:\n` +
      `  echo ${serial} > serials.txt\n` +
      '  npx fleet claims create --batch <batch, e.g. RMA-2026-12> --serials-file serials.txt\n' +
      'then boot the device with the token: it registers with a new key and keeps its thing name.\n',
  );
}

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
