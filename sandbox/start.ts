import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { CreatePolicyCommand, CreateRoleAliasCommand, IoTClient } from '@aws-sdk/client-iot';
import { DynamoDbAdminStore } from '../shared/admin/dynamodb-admin-store.js';
import { mintClaim } from '../shared/claims/mint-claim.js';
import { startCredentialsProvider } from './credentials/server.js';
import { startDynamoDbLocal } from './dynamodb-local.js';
import { apiConfigOf, type PrintedService } from './front-door/api-config.js';
import { startFrontDoor } from './front-door/server.js';
import { resolveIntrinsics } from './intrinsics.js';
import { Behaviour, type BehaviourConfig } from './iot/behaviour.js';
import { IotRegistry } from './iot/registry.js';
import { startIotEmulator } from './iot/server.js';
import { waitForPort } from './net.js';
import { startOffline } from './offline.js';
import { persistentCa, persistentPaths, persistentRegistry, prepare } from './persistence.js';
import { CertificateAuthority } from './pki/ca.js';
import { assertPortsFree, PortInUseError } from './ports.js';
import { stopProcess, whenOrphaned } from './processes.js';
import { apiProbe, credentialsProbe, dynamoDbProbe, iotProbe, waitUntilAnswering } from './readiness.js';
import { type SandboxInfo, type SandboxSettings, sandboxSettings } from './sandbox-config.js';
import { createTables, type Resources } from './tables.js';

interface ServerlessConfig extends PrintedService {
  service: string;
  provider: { environment: Record<string, string> };
  custom: { tables: { claims: string; devices: string; history: string }; roleAliasName: string };
  resources: PrintedService['resources'] & { Resources: Resources };
}

interface StartOptions {
  /** Keep DynamoDB Local's data, the IoT registry and the CA under .sandbox/persist. */
  persist: boolean;
  /** serverless.yml params to override (`--param name=value`), as `serverless deploy --param` does. */
  params: Record<string, string>;
}

const sandboxCredentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };
const stops: (() => Promise<void>)[] = [];

/**
 * `npm start`: the whole AWS side on one machine. DynamoDB Local, the IoT control-plane emulator,
 * the credentials provider, serverless-offline running the handlers and the front door that answers
 * as HTTP API does, with the tables, policy and role alias created from serverless.yml's own
 * (resolved) definitions. Ctrl-C, SIGTERM or the death of npm stops everything.
 */
async function main(settings: SandboxSettings, options: StartOptions): Promise<void> {
  const started = Date.now();
  const { host, ports, region, accountId } = settings;
  await assertPortsFree([
    { port: ports.api, host, what: 'API', variable: 'SANDBOX_API_PORT' },
    { port: ports.lambda, host, what: 'Lambda invoke API', variable: 'SANDBOX_LAMBDA_PORT' },
    { port: ports.dynamodb, host: '0.0.0.0', what: 'DynamoDB Local', variable: 'SANDBOX_DYNAMODB_PORT' },
    { port: ports.iot, host, what: 'IoT emulator', variable: 'SANDBOX_IOT_PORT' },
    { port: ports.credentials, host, what: 'credentials provider', variable: 'SANDBOX_CREDENTIALS_PORT' },
  ]);
  mkdirSync(settings.dir, { recursive: true });
  const persisted = options.persist ? persistentPaths(settings.dir) : undefined;
  if (persisted) prepare(persisted);
  const iotEndpoints = sandboxIotEndpoints(settings);
  const params = deployParams(iotEndpoints, options.params);
  log('resolving serverless.yml (serverless print)');
  const config = await printConfig(settings.stage, region, params);
  const resources = config.resources.Resources;

  const ca = persisted ? await persistentCa(persisted) : await CertificateAuthority.create();
  const rootCaFile = join(settings.dir, 'root-ca.pem');
  writeFileSync(rootCaFile, ca.certificate.pem);
  const dynamodbEndpoint = `http://${host}:${ports.dynamodb}`;
  const iotEndpoint = `http://${host}:${ports.iot}`;

  // serverless-offline builds the handlers meanwhile: it needs only the (fixed) endpoints.
  log(`starting serverless-offline (Lambda invoke API on ${host}:${ports.lambda})`);
  const offline = startOffline({
    stage: settings.stage,
    region,
    host,
    // Its own HTTP server is internal (the front door answers the API port): 0 lets the OS pick a
    // port when it binds, so no port picked in advance can be taken meanwhile.
    httpPort: 0,
    lambdaPort: ports.lambda,
    buildDir: join(settings.dir, 'build'),
    params,
    env: {
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: sandboxCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: sandboxCredentials.secretAccessKey,
      // The standard SDK variables: the handlers run unchanged against the sandbox.
      AWS_ENDPOINT_URL_DYNAMODB: settings.functionsDynamodbEndpoint ?? dynamodbEndpoint,
      AWS_ENDPOINT_URL_IOT: iotEndpoint,
      ROOT_CA_FILE: rootCaFile,
    },
    onOutput: forwardOfflineLine,
  });
  stops.push(() => stopProcess(offline));
  const offlineAlive = () => {
    if (offline.exitCode !== null || offline.signalCode !== null)
      throw new Error(
        `serverless-offline exited (${offline.exitCode ?? offline.signalCode}); see [api] above`,
      );
  };

  log(
    `starting DynamoDB Local on ${host}:${ports.dynamodb}${persisted ? ` (data in ${persisted.dynamodb})` : ''}`,
  );
  const dynamo = await startDynamoDbLocal(ports.dynamodb, {
    sharedDb: true,
    ...(persisted ? { dbPath: persisted.dynamodb } : {}),
  });
  stops.push(dynamo.stop);
  const dynamoClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region,
    credentials: sandboxCredentials,
  });
  const { TableNames: existing = [] } = await dynamoClient.send(new ListTablesCommand({}));
  await createTables(
    dynamoClient,
    resources,
    Object.fromEntries(
      Object.entries({
        ClaimsTable: config.custom.tables.claims,
        DevicesTable: config.custom.tables.devices,
        HistoryTable: config.custom.tables.history,
      })
        .filter(([, name]) => !existing.includes(name))
        .map(([logicalId]) => [logicalId, undefined]),
    ),
  );

  const credentialsEndpoint = iotEndpoints.credentialProvider;
  const memoryRegistry = new IotRegistry({
    region,
    accountId,
    ca,
    endpoints: {
      'iot:CredentialProvider': iotEndpoints.credentialProvider,
      'iot:Data-ATS': iotEndpoints.data,
      'iot:Data': iotEndpoints.data,
    },
  });
  const registry = persisted ? persistentRegistry(memoryRegistry, persisted.registry) : memoryRegistry;
  const behaviour = new Behaviour(
    settings.iotBehaviour ? (JSON.parse(settings.iotBehaviour) as BehaviourConfig) : {},
  );
  const iot = await startIotEmulator(registry, behaviour, host, ports.iot);
  stops.push(iot.close);
  const credentials = await startCredentialsProvider(registry, ca, host, ports.credentials);
  stops.push(credentials.close);
  log(`IoT emulator on ${iot.url}, credentials provider on https://${credentials.endpoint}`);

  const iotClient = new IoTClient({ endpoint: iot.url, region, credentials: sandboxCredentials });
  const { roleAlias, policyName } = await createChain(config, iotClient, settings);
  // Through the admin store, as POST /claims writes claims: the DEMO batch item counts it.
  const demo = mintClaim({ batchId: 'DEMO', ttlSeconds: 24 * 3600 });
  const store = new DynamoDbAdminStore(dynamoClient, config.custom.tables);
  await store.openBatch('DEMO', new Date());
  await store.putClaims([demo.claim]);
  await store.countIssued('DEMO', demo.claim.expiresAt, 1);

  const admin = {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  const frontDoor = await startFrontDoor(
    {
      api: apiConfigOf(config),
      lambdaEndpoint: `http://${host}:${ports.lambda}`,
      region,
      accountId,
      credentials: [admin],
      log: (line) => process.stdout.write(`  [door] ${line}\n`),
    },
    host,
    ports.api,
  );
  stops.push(frontDoor.close); // stops first: no new requests while the rest goes down
  log(`front door (HTTP API) on ${frontDoor.url}; waiting for the handlers`);
  await waitForPort(host, ports.lambda, 120_000, offlineAlive);
  await waitUntilAnswering(
    [
      dynamoDbProbe(dynamoClient, Object.values(config.custom.tables)),
      iotProbe(iotClient),
      credentialsProbe(credentialsEndpoint, ca.certificate.pem),
      apiProbe(frontDoor.url),
    ],
    60_000,
    offlineAlive,
  );

  const info: SandboxInfo = {
    apiUrl: frontDoor.url,
    iotEndpoint: iot.url,
    dynamodbEndpoint: dynamo.endpoint,
    credentialsEndpoint,
    credentialsUrlTemplate: `https://${credentialsEndpoint}/role-aliases/{alias}/credentials`,
    roleAlias,
    policyName,
    rootCaFile: relative(process.cwd(), rootCaFile),
    demoClaimToken: demo.token,
    region,
    tables: config.custom.tables,
    adminAccessKeyId: admin.accessKeyId,
    adminSecretAccessKey: admin.secretAccessKey,
    persist: options.persist,
  };
  writeFileSync(join(settings.dir, 'sandbox.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  printReady(info, rootCaFile, (Date.now() - started) / 1000);
}

/**
 * What DescribeEndpoint answers in the sandbox, known before anything starts (the ports are fixed).
 * There is no MQTT broker in the sandbox; the data endpoint is reported for completeness.
 */
function sandboxIotEndpoints({ host, ports }: SandboxSettings) {
  return { credentialProvider: `${host}:${ports.credentials}`, data: `${host}:8883` };
}

/**
 * serverless.yml params for the sandbox: the AWS IoT endpoints, passed as README's Deploy tells a
 * deployer to, so that register never spends the DescribeEndpoint quota (a burst of cold starts
 * would); then the `--param` overrides.
 */
function deployParams(
  endpoints: ReturnType<typeof sandboxIotEndpoints>,
  overrides: Record<string, string>,
): Record<string, string> {
  return {
    iotCredentialsEndpoint: endpoints.credentialProvider,
    iotDataEndpoint: endpoints.data,
    ...overrides,
  };
}

async function printConfig(stage: string, region: string, params: Record<string, string>) {
  const { stdout } = await promisify(execFile)(
    'npx',
    [
      'serverless',
      'print',
      '--stage',
      stage,
      '--region',
      region,
      '--format',
      'json',
      ...Object.entries(params).map(([name, value]) => `--param=${name}=${value}`),
    ],
    { env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' }, maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as ServerlessConfig;
}

/**
 * The IoT policy and role alias, as CloudFormation would create them from serverless.yml. A
 * persistent sandbox already has them from an earlier run: they are kept as they are.
 */
async function createChain(
  config: ServerlessConfig,
  iot: IoTClient,
  settings: SandboxSettings,
): Promise<{ roleAlias: string; policyName: string }> {
  const resources = config.resources.Resources;
  const arn = (service: string, resource: string) =>
    `arn:aws:${service}:${settings.region}:${settings.accountId}:${resource}`;
  const roleAliasName = config.custom.roleAliasName;
  const context = {
    partition: 'aws',
    region: settings.region,
    accountId: settings.accountId,
    getAtt: (logicalId: string, attribute: string) => {
      if (logicalId === 'RoleAlias' && attribute === 'RoleAliasArn')
        return arn('iot', `rolealias/${roleAliasName}`);
      if (resources[logicalId]?.Type === 'AWS::IAM::Role' && attribute === 'Arn') {
        return `arn:aws:iam::${settings.accountId}:role/${config.service}-${settings.stage}-${logicalId}`;
      }
      throw new Error(`the sandbox cannot resolve Fn::GetAtt ${logicalId}.${attribute}`);
    },
    ref: (logicalId: string) => {
      throw new Error(`the sandbox cannot resolve Ref ${logicalId}`);
    },
  };
  const alias = resolveIntrinsics(resources.RoleAlias?.Properties, context) as Record<string, unknown>;
  await keepExisting(
    iot.send(
      new CreateRoleAliasCommand({
        roleAlias: alias.RoleAlias as string,
        roleArn: alias.RoleArn as string,
        credentialDurationSeconds: Number(alias.CredentialDurationSeconds),
      }),
    ),
  );
  const policy = resolveIntrinsics(resources.DevicePolicy?.Properties, context) as Record<string, unknown>;
  await keepExisting(
    iot.send(
      new CreatePolicyCommand({
        policyName: policy.PolicyName as string,
        policyDocument: JSON.stringify(policy.PolicyDocument),
      }),
    ),
  );
  return { roleAlias: alias.RoleAlias as string, policyName: policy.PolicyName as string };
}

async function keepExisting(creation: Promise<unknown>): Promise<void> {
  try {
    await creation;
  } catch (error) {
    if ((error as Error).name !== 'ResourceAlreadyExistsException') throw error;
  }
}

/** serverless-offline's lines, minus its route table and "Server ready" (its HTTP port is internal). */
function forwardOfflineLine(line: string): void {
  if (/^\s*[│┌└]/.test(line) || /Server ready:/.test(line)) return;
  process.stdout.write(`  [api] ${line}\n`);
}

function printReady(info: SandboxInfo, rootCaFile: string, seconds: number): void {
  const serial = 'SN-0001';
  const credentialsUrl = info.credentialsUrlTemplate.replace('{alias}', info.roleAlias);
  process.stdout.write(`
Sandbox ready in ${seconds.toFixed(1)} s  (details: ${relative(process.cwd(), join(rootCaFile, '..', 'sandbox.json'))})${info.persist ? '  [persistent]' : ''}

  API                   ${info.apiUrl}         POST /register; admin routes need SigV4 (npx fleet signs)
  IoT control plane     ${info.iotEndpoint}    (aws iot --endpoint-url ${info.iotEndpoint} ...)
  credentials provider  https://${info.credentialsEndpoint}
  DynamoDB Local        ${info.dynamodbEndpoint}
  demo claim token      ${info.demoClaimToken}   (single use)

Register a simulated device and fetch its credentials:

  npm run device -- --serial ${serial} --token ${info.demoClaimToken}

Or by hand, with openssl and curl (the token is single-use: use one or the other):

  openssl ecparam -name prime256v1 -genkey -noout -out device.key
  openssl req -new -key device.key -subj "/CN=${serial}" -out device.csr
  node -e 'process.stdout.write(JSON.stringify({claimToken: process.argv[1], serialNumber: process.argv[2], csr: require("fs").readFileSync("device.csr", "utf8")}))' ${info.demoClaimToken} ${serial} > register.json
  curl -s -H 'content-type: application/json' --data @register.json ${info.apiUrl}/register > registration.json
  node -e 'process.stdout.write(require("./registration.json").certificatePem)' > device.crt
  curl --cert device.crt --key device.key --cacert ${rootCaFile} -H "x-amzn-iot-thingname: ${serial}" ${credentialsUrl}

Ctrl-C stops everything.
`);
}

function log(message: string): void {
  process.stdout.write(`sandbox: ${message}\n`);
}

let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
  process.exit(code);
}

function startOptions(argv: string[]): StartOptions {
  const { values } = parseArgs({
    args: argv,
    options: { persist: { type: 'boolean', default: false }, param: { type: 'string', multiple: true } },
  });
  const params: Record<string, string> = {};
  for (const pair of values.param ?? []) {
    const [name, ...value] = pair.split('=');
    if (!name || value.length === 0) throw new Error(`--param takes name=value, got "${pair}"`);
    params[name] = value.join('=');
  }
  return { persist: values.persist ?? false, params };
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => void shutdown(0));
// `npm start` execs this process under npm: if npm is killed (even with -9), stop everything too.
whenOrphaned(() => {
  process.stderr.write('sandbox: npm start is gone; stopping\n');
  void shutdown(1);
});
Promise.resolve()
  .then(() => main(sandboxSettings(), startOptions(process.argv.slice(2))))
  .catch(async (error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    process.stderr.write(
      error instanceof PortInUseError ? `sandbox: ${reason}\n` : `sandbox: failed to start: ${reason}\n`,
    );
    await shutdown(1);
  });
