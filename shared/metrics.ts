import type { Logger } from './logger.js';

export const METRIC_NAMESPACE = 'FleetProvisioning';

/**
 * Emits a count of 1 as a CloudWatch Embedded Metric Format log line: CloudWatch turns it into a
 * metric (alarm on RollbackIncomplete) with no API call on the hot path.
 */
export function metric(logger: Logger, name: string, fields: Record<string, unknown> = {}): void {
  logger.warn(`metric ${name}`, {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        { Namespace: METRIC_NAMESPACE, Dimensions: [[]], Metrics: [{ Name: name, Unit: 'Count' }] },
      ],
    },
    [name]: 1,
    ...fields,
  });
}
