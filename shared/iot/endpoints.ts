import type { IotGateway } from './iot-gateway.js';

export interface Endpoints {
  credentialsProvider: string;
  data: string;
}

/**
 * Endpoints from configuration when set, else from DescribeEndpoint, resolved once per container.
 * A failed lookup is not cached, so the next request tries again.
 */
export function endpointResolver(
  iot: IotGateway,
  configured: { credentialsProvider?: string | undefined; data?: string | undefined },
): () => Promise<Endpoints> {
  let cached: Promise<Endpoints> | undefined;
  const resolve = async (): Promise<Endpoints> => {
    const [credentialsProvider, data] = await Promise.all([
      configured.credentialsProvider ?? iot.describeEndpoint('iot:CredentialProvider'),
      configured.data ?? iot.describeEndpoint('iot:Data-ATS'),
    ]);
    return { credentialsProvider, data };
  };
  return () => {
    cached ??= resolve().catch((error: unknown) => {
      cached = undefined;
      throw error;
    });
    return cached;
  };
}
