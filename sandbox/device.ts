/**
 * The device side of first boot, end to end, and of life after it: the reference client for firmware
 * authors.
 *
 *   npm run device -- --serial SN-1 [--token fpc_…] [--api-url http://127.0.0.1:3000]
 *
 * 1. make a key pair and a CSR (the private key never leaves the device);
 * 2. POST /register with the claim token, serial number and CSR;
 * 3. exchange the certificate for temporary AWS credentials at the credentials provider, over
 *    mutual TLS, trusting the rootCaPem the registration returned.
 *
 *   npm run device -- --rotate --serial SN-1 [--no-confirm]   a new key and certificate (device-rotation.ts)
 *   npm run device -- --confirm --serial SN-1                 confirm one left unconfirmed
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { fail, fetchCredentials, parseJson, readSandbox, usage } from './device-io.js';
import { confirm, rotate } from './device-rotation.js';
import { buildCsr } from './pki/csr.js';
import { sandboxSettings } from './sandbox-config.js';

interface Registration {
  thingName: string;
  certificateId: string;
  certificatePem: string;
  credentialsProvider: { url: string; roleAlias: string };
  rootCaPem: string;
}

interface Options {
  serial: string;
  token?: string;
  apiUrl?: string;
  rotate?: boolean;
  /** `--confirm` alone: confirm a pending rotation; `--no-confirm` with --rotate: leave it pending. */
  confirm?: boolean;
}

function parseOptions(argv: string[]): Options {
  const program = new Command('npm run device --')
    .description(
      "A device's first boot against the sandbox: a key pair and CSR, POST /register with a claim token, " +
        'then the certificate exchanged for AWS credentials over mutual TLS. Files go to .sandbox/devices/<serial>. ' +
        'With --rotate or --confirm: a certificate rotation of a registered device instead (docs/lifecycle.md).',
    )
    .requiredOption('--serial <serial>', "the device's serial number (required)")
    .option('--token <token>', "a claim token (default: the sandbox's demo token, which works once)")
    .option('--api-url <url>', "the API (default: the sandbox's, from .sandbox/sandbox.json)")
    .option(
      '--rotate',
      'rotate instead: check GET /rotation, a new key and CSR, POST /rotation signed with the current key, ' +
        'the new certificate tried for credentials, then confirmed (files: next.key, next.crt until then)',
    )
    // --confirm first: defined after it, --no-confirm leaves the default unset (a first boot).
    .option(
      '--confirm',
      'confirm a rotation left unconfirmed (next.key, next.crt): POST /rotation/confirm signed with the new ' +
        'key, next.* moved to device.key and device.crt, then old (403) and new (200) certificates checked',
    )
    .option(
      '--no-confirm',
      'with --rotate: stop before confirming; both certificates work until the grace ends',
    )
    .helpOption('-h, --help', 'show help')
    .addHelpText(
      'after',
      '\nMore tokens: npx fleet claims create --batch demo --count 1 --output csv' +
        '\nAsk a device to rotate: npx fleet devices rotate <serial> (the device sees it at GET /rotation)' +
        '\nExit codes: 0 done; 1 refused or failed (a device: line says why); 2 bad arguments.',
    )
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`device: ${text.replace(/^error: /, '')}`) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.code === 'commander.helpDisplayed' ? 0 : 2);
    throw error;
  }
  return program.opts<Options>();
}

/** How to make another claim token: the demo token works once, and every token has its limits. */
const ANOTHER_TOKEN =
  'make another with: npx fleet claims create --batch demo --count 1 --output csv\n' +
  '  then: npm run device -- --serial <serial> --token <the token column>';

async function main(): Promise<void> {
  const values = parseOptions(process.argv.slice(2));
  const settings = sandboxSettings();
  const sandbox = readSandbox(settings.dir);
  const serialNumber = values.serial;
  if (values.rotate || values.confirm !== undefined) {
    if (values.token !== undefined) usage('--token is for a first boot, not with --rotate or --confirm');
    if (!values.rotate && values.confirm === false) usage('--no-confirm goes with --rotate');
    const context = {
      serialNumber,
      apiUrl: values.apiUrl ?? sandbox?.apiUrl ?? usage('--api-url is required (no sandbox found)'),
      folder: join(settings.dir, 'devices', serialNumber),
    };
    return values.rotate ? rotate(context, { confirm: values.confirm !== false }) : confirm(context);
  }
  const claimToken =
    values.token ?? sandbox?.demoClaimToken ?? fail('--token is required (no sandbox found)');
  const apiUrl = values.apiUrl ?? sandbox?.apiUrl ?? fail('--api-url is required (no sandbox found)');

  // 1. Key pair and CSR.
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const csr = buildCsr({ keys, commonName: serialNumber });

  // 2. Register.
  const response = await fetch(`${apiUrl}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      claimToken,
      serialNumber,
      csr: csr.pem,
      attributes: { model: 'simulator', firmwareVersion: '1.0.0' },
    }),
  });
  const text = await response.text();
  const body = parseJson(text) as Registration & { code?: string; detail?: string };
  if (!response.ok) {
    const refusal = `registration refused: ${response.status} ${body.code ?? ''} ${body.detail ?? text.slice(0, 200)}`;
    if (body.code === 'CLAIM_TOKEN_USED_UP' && values.token === undefined) {
      fail(
        `${refusal}\ndevice: the sandbox's demo claim token works once and is already used; ${ANOTHER_TOKEN}`,
      );
    }
    const spent = ['CLAIM_TOKEN_USED_UP', 'CLAIM_TOKEN_REVOKED', 'CLAIM_TOKEN_EXPIRED'];
    fail(spent.includes(body.code ?? '') ? `${refusal}\ndevice: ${ANOTHER_TOKEN}` : refusal);
  }
  const folder = join(settings.dir, 'devices', serialNumber);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'device.key'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  writeFileSync(join(folder, 'device.crt'), body.certificatePem);
  writeFileSync(join(folder, 'root-ca.pem'), body.rootCaPem);
  console.log(
    `registered    ${body.thingName} (HTTP ${response.status}), certificate ${body.certificateId.slice(0, 16)}…`,
  );
  console.log(`saved         ${folder}/device.key, device.crt, root-ca.pem`);

  // 3. Certificate -> temporary AWS credentials.
  const credentials = await fetchCredentials({
    url: body.credentialsProvider.url,
    thingName: body.thingName,
    certificatePem: body.certificatePem,
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    rootCaPem: body.rootCaPem,
  });
  console.log(`credentials   ${credentials.status} from ${body.credentialsProvider.url}`);
  if (credentials.status !== 200) fail(`credentials refused: ${credentials.text}`);
  const { accessKeyId, expiration } = (
    JSON.parse(credentials.text) as { credentials: Record<string, string> }
  ).credentials;
  console.log(
    `              accessKeyId ${accessKeyId}, expires ${expiration} (role alias ${body.credentialsProvider.roleAlias})`,
  );
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
