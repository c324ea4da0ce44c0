import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreatePolicyCommand, CreateRoleAliasCommand, IoTClient } from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mintClaim } from '../shared/claims/mint-claim.js';
import { startCredentialsProvider } from './credentials/server.js';
import { startDynamoDbLocal } from './dynamodb-local.js';
import { resolveIntrinsics } from './intrinsics.js';
import { Behaviour, type BehaviourConfig } from './iot/behaviour.js';
import { IotRegistry } from './iot/registry.js';
import { startIotEmulator } from './iot/server.js';
import { waitForPort } from './net.js';
import { CertificateAuthority } from './pki/ca.js';
import { type SandboxInfo, type SandboxSettings, sandboxSettings } from './sandbox-config.js';
import { createTables, type Resources } from './tables.js';

interface ServerlessConfig {
  service: string;
  provider: { environment: Record<string, string> };
  custom: { tables: { claims: string; devices: string }; roleAliasName: string };
  resources: { Resources: Resources };
}

const sandboxCredentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };
const stops: (() => Promise<void>)[] = [];

/**
 * `npm start`: the whole AWS side on one machine. DynamoDB Local, the IoT control-plane emulator,
 * the credentials provider and the API (serverless-offline), with the tables, policy and role alias
 * created from serverless.yml's own (resolved) definitions. Ctrl-C or SIGTERM stops everything.
 */
async function main(settings: SandboxSettings): Promise<void> {
  const started = Date.now();
  const { host, ports, region, accountId } = settings;
  mkdirSync(settings.dir, { recursive: true });
  log('resolving serverless.yml (serverless print)');
  const config = await printConfig(settings.stage, region);
  const resources = config.resources.Resources;

  log(`starting DynamoDB Local on ${host}:${ports.dynamodb}`);
  const dynamo = await startDynamoDbLocal(ports.dynamodb);
  stops.push(dynamo.stop);
  const dynamoClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region,
    credentials: sandboxCredentials,
  });
  await createTables(dynamoClient, resources, { ClaimsTable: undefined, DevicesTable: undefined });

  const ca = new CertificateAuthority();
  const rootCaFile = join(settings.dir, 'root-ca.pem');
  writeFileSync(rootCaFile, ca.certificate.pem);
  const credentialsEndpoint = `${host}:${ports.credentials}`;
  const registry = new IotRegistry({
    region,
    accountId,
    ca,
    // There is no MQTT broker in the sandbox; the data endpoint is reported for completeness.
    endpoints: {
      'iot:CredentialProvider': credentialsEndpoint,
      'iot:Data-ATS': `${host}:8883`,
      'iot:Data': `${host}:8883`,
    },
  });
  const behaviour = new Behaviour(
    settings.iotBehaviour ? (JSON.parse(settings.iotBehaviour) as BehaviourConfig) : {},
  );
  const iot = await startIotEmulator(registry, behaviour, host, ports.iot);
  stops.push(iot.close);
  const credentials = await startCredentialsProvider(registry, ca, host, ports.credentials);
  stops.push(credentials.close);
  log(`IoT emulator on ${iot.url}, credentials provider on https://${credentials.endpoint}`);

  const { roleAlias, policyName } = await createChain(
    config,
    new IoTClient({ endpoint: iot.url, region, credentials: sandboxCredentials }),
    settings,
  );
  const demo = mintClaim({ batchId: 'DEMO', ttlSeconds: 24 * 3600 });
  await DynamoDBDocumentClient.from(dynamoClient).send(
    new PutCommand({ TableName: config.custom.tables.claims, Item: demo.claim }),
  );

  log(`starting the API (serverless-offline) on ${host}:${ports.api}`);
  const offline = startOffline(settings, { dynamodb: dynamo.endpoint, iot: iot.url, rootCaFile });
  stops.push(() => stopGroup(offline));
  await waitForPort(host, ports.api, 120_000, () => {
    if (offline.exitCode !== null) throw new Error(`serverless-offline exited with code ${offline.exitCode}`);
  });

  const info: SandboxInfo = {
    apiUrl: `http://${host}:${ports.api}`,
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
  };
  writeFileSync(join(settings.dir, 'sandbox.json'), `${JSON.stringify(info, null, 2)}\n`);
  printReady(info, rootCaFile, (Date.now() - started) / 1000);
}

async function printConfig(stage: string, region: string): Promise<ServerlessConfig> {
  const { stdout } = await promisify(execFile)(
    'npx',
    ['serverless', 'print', '--stage', stage, '--region', region, '--format', 'json'],
    { env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' }, maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as ServerlessConfig;
}

/** The IoT policy and role alias, as CloudFormation would create them from serverless.yml. */
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
  await iot.send(
    new CreateRoleAliasCommand({
      roleAlias: alias.RoleAlias as string,
      roleArn: alias.RoleArn as string,
      credentialDurationSeconds: Number(alias.CredentialDurationSeconds),
    }),
  );
  const policy = resolveIntrinsics(resources.DevicePolicy?.Properties, context) as Record<string, unknown>;
  await iot.send(
    new CreatePolicyCommand({
      policyName: policy.PolicyName as string,
      policyDocument: JSON.stringify(policy.PolicyDocument),
    }),
  );
  return { roleAlias: alias.RoleAlias as string, policyName: policy.PolicyName as string };
}

function startOffline(
  settings: SandboxSettings,
  endpoints: { dynamodb: string; iot: string; rootCaFile: string },
): ChildProcess {
  const { host, ports } = settings;
  const child = spawn(
    'npx',
    [
      'serverless',
      'offline',
      'start',
      '--stage',
      settings.stage,
      '--region',
      settings.region,
      '--host',
      host,
      '--httpPort',
      String(ports.api),
      '--lambdaPort',
      String(ports.lambda),
      // Pass this process's environment (ROOT_CA_FILE among it), not only AWS_* variables.
      '--localEnvironment',
      // serverless-offline cannot evaluate AWS_IAM authorizers (it misreads them as JWT): admin
      // routes are open on 127.0.0.1 locally; IAM protects them in AWS (checked in test/infra).
      '--noAuth',
    ],
    {
      detached: true, // its own process group, so that stopping it stops its workers too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SLS_TELEMETRY_DISABLED: '1',
        AWS_REGION: settings.region,
        AWS_ACCESS_KEY_ID: sandboxCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: sandboxCredentials.secretAccessKey,
        // The standard SDK variables: the handlers run unchanged against the sandbox.
        AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
        AWS_ENDPOINT_URL_IOT: endpoints.iot,
        ROOT_CA_FILE: endpoints.rootCaFile,
        // serverless.yml's custom.esbuild.outputWorkFolder: a build folder of the sandbox's own,
        // which `serverless package` (it deletes .esbuild) cannot pull from under it.
        ESBUILD_WORK_FOLDER: relative(process.cwd(), join(settings.dir, 'build')),
      },
    },
  );
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n'))
      if (line.trim()) process.stdout.write(`  [api] ${line}\n`);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

function printReady(info: SandboxInfo, rootCaFile: string, seconds: number): void {
  const serial = 'SN-0001';
  const credentialsUrl = info.credentialsUrlTemplate.replace('{alias}', info.roleAlias);
  process.stdout.write(`
Sandbox ready in ${seconds.toFixed(1)} s  (details: ${relative(process.cwd(), join(rootCaFile, '..', 'sandbox.json'))})

  API                   ${info.apiUrl}         POST /register
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

process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));
main(sandboxSettings()).catch(async (error: unknown) => {
  process.stderr.write(
    `sandbox: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  await shutdown(1);
});
