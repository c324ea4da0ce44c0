import type { BatchItem, DeviceRecord } from '../inventory/model.js';

export interface RotationStatus {
  /** When an operator asked the device (or its batch) to rotate, if after its certificate was issued. */
  requestedAt?: string;
  due: boolean;
  overdue: boolean;
  pendingCertificateId?: string;
  graceUntil?: string;
}

/**
 * Whether an operator's request to rotate is still open for this device: asked of the device or its
 * batch (one write for a whole batch) after its current certificate became current, and not yet
 * answered by a rotation. Overdue once open for longer than `overdueAfterMs`.
 */
export function rotationStatus(
  device: DeviceRecord,
  batch: Pick<BatchItem, 'rotationRequestedAt'> | undefined,
  now: Date,
  overdueAfterMs: number,
): RotationStatus {
  // When the current certificate became current: the later of its registration and its rotation.
  const since = Math.max(
    Date.parse(device.rotatedAt ?? '') || 0,
    Date.parse(device.activatedAt ?? device.createdAt) || 0,
  );
  const requests = [device.rotationRequestedAt, batch?.rotationRequestedAt]
    .filter((at): at is string => at !== undefined && Date.parse(at) > since)
    .sort();
  const requestedAt = requests[0];
  const due = device.status === 'ACTIVE' && requestedAt !== undefined;
  const pending = device.rotation?.state === 'PENDING' ? device.rotation : undefined;
  return {
    ...(requestedAt ? { requestedAt } : {}),
    due,
    overdue: due && now.getTime() - Date.parse(requestedAt as string) > overdueAfterMs,
    ...(pending?.certificateId ? { pendingCertificateId: pending.certificateId } : {}),
    ...(pending?.graceUntil ? { graceUntil: pending.graceUntil } : {}),
  };
}
