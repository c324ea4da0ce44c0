import { IoTClient } from '@aws-sdk/client-iot';
import { Behaviour, type BehaviourConfig } from '../../sandbox/iot/behaviour.js';
import { IotRegistry } from '../../sandbox/iot/registry.js';
import { type RunningIot, startIotEmulator } from '../../sandbox/iot/server.js';
import { CertificateAuthority } from '../../sandbox/pki/ca.js';

export interface EmulatorFixture {
  registry: IotRegistry;
  behaviour: Behaviour;
  emulator: RunningIot;
  client: IoTClient;
  ca: CertificateAuthority;
}

/** The sandbox's IoT emulator on a free 127.0.0.1 port, and an SDK client pointed at it. */
export async function startEmulator(
  config: BehaviourConfig = { '*': { ratePerSecond: 0 } },
): Promise<EmulatorFixture> {
  const ca = await CertificateAuthority.create();
  const registry = new IotRegistry({
    region: 'eu-west-1',
    accountId: '123456789012',
    ca,
    endpoints: {
      'iot:CredentialProvider': '127.0.0.1:8443',
      'iot:Data-ATS': '127.0.0.1:8883',
      'iot:Data': '127.0.0.1:8883',
    },
  });
  const behaviour = new Behaviour(config);
  const emulator = await startIotEmulator(registry, behaviour, '127.0.0.1', 0);
  const client = new IoTClient({
    region: 'eu-west-1',
    endpoint: emulator.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  return { registry, behaviour, emulator, client, ca };
}
