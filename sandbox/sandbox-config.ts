import { resolve } from 'node:path';

/** Fixed default ports, each overridable by an environment variable. */
export function sandboxSettings(env: Record<string, string | undefined> = process.env) {
  const port = (name: string, fallback: number) => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isInteger(value) || value < 0 || value > 65535)
      throw new Error(`${name} must be a port number`);
    return value;
  };
  return {
    host: '127.0.0.1',
    stage: 'local',
    region: 'eu-west-1',
    accountId: '000000000000',
    dir: resolve(env.SANDBOX_DIR ?? '.sandbox'),
    ports: {
      api: port('SANDBOX_API_PORT', 3000),
      lambda: port('SANDBOX_LAMBDA_PORT', 3002),
      dynamodb: port('SANDBOX_DYNAMODB_PORT', 8000),
      iot: port('SANDBOX_IOT_PORT', 8090),
      credentials: port('SANDBOX_CREDENTIALS_PORT', 8443),
    },
    /** JSON BehaviourConfig for the IoT emulator (latency, quotas, faults). */
    iotBehaviour: env.SANDBOX_IOT_BEHAVIOUR,
    /**
     * The DynamoDB endpoint the functions are given instead of DynamoDB Local's own: `npm run bench`
     * puts a proxy that delays every request there. Everything else still talks to DynamoDB Local.
     */
    functionsDynamodbEndpoint: env.SANDBOX_FUNCTIONS_DYNAMODB_ENDPOINT || undefined,
  };
}

export type SandboxSettings = ReturnType<typeof sandboxSettings>;

/** What `npm start` writes to .sandbox/sandbox.json (the contract in DESIGN.md). */
export interface SandboxInfo {
  apiUrl: string;
  iotEndpoint: string;
  dynamodbEndpoint: string;
  credentialsEndpoint: string;
  credentialsUrlTemplate: string;
  roleAlias: string;
  policyName: string;
  rootCaFile: string;
  demoClaimToken: string;
  region: string;
  tables: { claims: string; devices: string; history: string };
  /** Credentials the front door accepts for SigV4 on the admin (AWS_IAM) routes. */
  adminAccessKeyId: string;
  adminSecretAccessKey: string;
  /** Whether this sandbox keeps its state under .sandbox/persist (npm start -- --persist). */
  persist: boolean;
}
