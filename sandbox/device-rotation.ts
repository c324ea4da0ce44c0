/**
 * The device side of certificate rotation, in two phases (docs/lifecycle.md):
 *
 *   1. rotate:  GET /rotation (was a rotation asked for?), a new key and CSR, POST /rotation with a proof
 *               signed by the CURRENT key: the API answers a new certificate; old and new both work
 *               until the rotation is confirmed or its grace period ends;
 *   2. confirm: with the new certificate proven to get credentials, POST /rotation/confirm with a proof
 *               signed by the NEW key; the old certificate is retired.
 *
 * The device's files (.sandbox/devices/<serial>/) are what firmware keeps in flash:
 *   device.key, device.crt  the credentials in use; replaced only after the confirmation is answered;
 *   next.key                the new key, saved BEFORE it is sent in a CSR, so a lost answer is retried
 *                           with the same key (the API then answers the same certificate);
 *   next.crt, next.json     the new certificate and what the rotation answered (thing name, where the
 *                           credentials provider is), until confirmed.
 * Every file is written to a temporary name, flushed and renamed: a power cut leaves the old file or
 * the new, and the device always keeps a key that works.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Answer,
  type CredentialsTarget,
  fail,
  fetchCredentials,
  moveAtomically,
  refusal,
  saveAtomically,
  sendWithRetries,
} from './device-io.js';
import { certificateId, deviceProof, type ProofAction } from './device-proof.js';
import { buildCsr } from './pki/csr.js';

export interface DeviceContext {
  serialNumber: string;
  apiUrl: string;
  /** .sandbox/devices/<serial> */
  folder: string;
}

/** What POST /rotation answers (201, or 200 when asked again for the same new key). */
interface Rotation {
  serialNumber: string;
  thingName: string;
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  previousCertificateId: string;
  graceUntil: string;
  credentialsProvider: { endpoint: string; roleAlias: string; url: string };
  iotDataEndpoint: string;
  rootCaPem: string;
}

/** What GET /rotation answers. */
interface RotationCheck {
  serialNumber: string;
  thingName: string;
  certificateId: string;
  rotationRequested: boolean;
  requestedAt?: string;
  pending?: { certificateId: string; graceUntil: string };
}

/** What next.json keeps between the two phases: the rotation's answer without its PEMs. */
type PendingRotation = Omit<Rotation, 'certificatePem' | 'rootCaPem'>;

/** A certificate and its private key, as read from the device's files. */
interface Credentials {
  certificatePem: string;
  keyPem: string;
  privateKey: KeyObject;
}

/** What firmware should do about each refusal, after the one-line error. */
const HINTS: Record<string, string> = {
  DEVICE_PROOF_INVALID:
    "the API does not take this certificate as the device's (retired by a reset, a decommissioning or " +
    'another rotation?): npx fleet devices history <serial>',
  DEVICE_PROOF_EXPIRED:
    "this machine's clock is more than 300 s off the API's: set it, then sign a new proof",
  DEVICE_PROOF_REPLAYED: 'a proof was sent twice: sign a new one (new nonce) for every request',
  DEVICE_NOT_ACTIVE: 'the device is not ACTIVE (reset or decommissioned?): npx fleet devices get <serial>',
  PUBLIC_KEY_IN_USE: 'the new key is already registered: delete next.key and rotate again with a new one',
};

const pad = (label: string) => label.padEnd(13);
const line = (label: string, text: string) => console.log(`${pad(label)} ${text}`);
const short = (id: string) => `${id.slice(0, 16)}…`;

/** Phase 1, then (unless `confirm` is false) phase 2. */
export async function rotate(context: DeviceContext, options: { confirm: boolean }): Promise<void> {
  const files = paths(context.folder);
  if (existsSync(files.nextCrt)) {
    fail(
      `a new certificate already waits for confirmation (${files.nextCrt}): ` +
        `npm run device -- --confirm --serial ${context.serialNumber}, ` +
        'or delete next.key, next.crt and next.json to rotate again',
    );
  }
  const current = readCredentials(files.key, files.crt);

  // 1. Was a rotation asked for? (Firmware polls this, say daily; --rotate rotates either way.)
  const check = await checkRotation(context, current);
  line(
    'rotation',
    check.rotationRequested
      ? `requested at ${check.requestedAt ?? '(not said)'} for ${check.thingName}`
      : `not requested for ${check.thingName}; rotating anyway (--rotate)`,
  );
  if (check.pending) {
    line(
      '',
      `a new certificate ${short(check.pending.certificateId)} waits until ${check.pending.graceUntil}`,
    );
  }

  // 2. The new key, kept before it leaves in a CSR: a retry after a lost answer sends the same key.
  const resumed = existsSync(files.nextKey);
  if (!resumed) {
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    saveAtomically(files.nextKey, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  }
  const nextKeyPem = readFileSync(files.nextKey, 'utf8');
  const nextKey = createPrivateKey(nextKeyPem);
  const csr = buildCsr({
    keys: { privateKey: nextKey, publicKey: createPublicKey(nextKey) },
    commonName: context.serialNumber,
  });
  line(
    'new key',
    `${files.nextKey} (EC P-256${resumed ? ', kept from an unanswered rotation' : ''}), CSR made`,
  );

  // 3. POST /rotation, the proof signed with the CURRENT key.
  const answer = await sendWithRetries('rotation', async () =>
    postProof(`${context.apiUrl}/rotation`, await proof('rotate', context, current, csr.pem)),
  );
  if (answer.status !== 200 && answer.status !== 201) refuse('rotation', answer, context);
  const rotation = answer.body as unknown as Rotation;
  // next.crt last: its presence says that everything the confirmation needs is on disk.
  const { certificatePem: _pem, rootCaPem, ...pending } = rotation;
  saveAtomically(files.nextJson, `${JSON.stringify(pending satisfies PendingRotation, null, 2)}\n`);
  saveAtomically(files.rootCa, rootCaPem);
  saveAtomically(files.nextCrt, rotation.certificatePem);
  line(
    'rotated',
    `${rotation.thingName} (HTTP ${answer.status}), certificate ${short(rotation.certificateId)} ` +
      `replaces ${short(rotation.previousCertificateId)}, grace until ${rotation.graceUntil}`,
  );
  line('saved', `${files.nextKey}, next.crt, next.json`);

  // 4. The new certificate must get credentials before anything is confirmed.
  const next = { certificatePem: rotation.certificatePem, keyPem: nextKeyPem, privateKey: nextKey };
  const target = (credentials: Credentials): CredentialsTarget => ({
    url: rotation.credentialsProvider.url,
    thingName: rotation.thingName,
    certificatePem: credentials.certificatePem,
    keyPem: credentials.keyPem,
    rootCaPem,
  });
  const withNew = await fetchCredentials(target(next));
  line('credentials', `${withNew.status} with the new certificate from ${rotation.credentialsProvider.url}`);
  if (withNew.status !== 200) {
    fail(
      `credentials refused with the new certificate: ${withNew.text.slice(0, 200)}; not confirming: ` +
        'the old certificate stays in use',
    );
  }
  const withOld = await fetchCredentials(target(current));
  line(
    'credentials',
    `${withOld.status} with the old certificate (both work until confirmed or the grace ends)`,
  );

  if (!options.confirm) {
    line(
      'pending',
      `both certificates work until ${rotation.graceUntil}; confirm with: ` +
        `npm run device -- --confirm --serial ${context.serialNumber}`,
    );
    return;
  }
  await confirm(context);
}

/** Phase 2: confirm the new certificate, then make it the one in use, then check both. */
export async function confirm(context: DeviceContext): Promise<void> {
  const files = paths(context.folder);
  if (!existsSync(files.nextKey) && existsSync(files.nextCrt)) {
    // Cut off between the two moves: device.key is already the new key.
    moveAtomically(files.nextCrt, files.crt);
    rmSync(files.nextJson, { force: true });
    line('saved', `${files.crt} (finished moving next.crt, cut off last time)`);
    return;
  }
  if (!existsSync(files.nextKey) || !existsSync(files.nextCrt) || !existsSync(files.nextJson)) {
    fail(
      `no rotation waits for confirmation in ${context.folder} (no next.key, next.crt and next.json): ` +
        `start one with npm run device -- --rotate --serial ${context.serialNumber}`,
    );
  }
  const pending = JSON.parse(readFileSync(files.nextJson, 'utf8')) as PendingRotation;
  const next = readCredentials(files.nextKey, files.nextCrt);
  const old = readCredentials(files.key, files.crt);
  const newId = certificateId(next.certificatePem);

  // 1. POST /rotation/confirm, the proof signed with the NEW key and naming the NEW certificate.
  const answer = await sendWithRetries('confirmation', async () =>
    postProof(`${context.apiUrl}/rotation/confirm`, await proof('confirm', context, next)),
  );
  if (answer.status === 200) {
    const { retiredCertificateId } = answer.body as { retiredCertificateId?: string };
    line(
      'confirmed',
      `certificate ${short(newId)} is current (HTTP 200)` +
        (retiredCertificateId ? `, ${short(retiredCertificateId)} retired` : ''),
    );
  } else if (answer.body.code === 'NO_ROTATION_PENDING' && (await isCurrent(context, next, newId))) {
    // The grace period ended first, which makes the new certificate current as a confirmation would.
    line('confirmed', `certificate ${short(newId)} is already current (nothing was pending)`);
  } else {
    refuse('confirmation', answer, context);
  }

  // 2. Only now the old key may go: the new files are complete on disk; each rename is atomic.
  moveAtomically(files.nextKey, files.key);
  moveAtomically(files.nextCrt, files.crt);
  rmSync(files.nextJson, { force: true });
  line('saved', `${files.key}, device.crt (the new key and certificate)`);

  // 3. The old certificate is retired, the new one works.
  const target = (credentials: Credentials): CredentialsTarget => ({
    url: pending.credentialsProvider.url,
    thingName: pending.thingName,
    certificatePem: credentials.certificatePem,
    keyPem: credentials.keyPem,
    rootCaPem: readFileSync(files.rootCa, 'utf8'),
  });
  const withOld = await untilRefused(target(old));
  line('credentials', `${withOld.status} with the old certificate`);
  if (withOld.status !== 403) fail(`the old certificate still gets ${withOld.status} after the confirmation`);
  const withNew = await fetchCredentials(target(next));
  line('credentials', `${withNew.status} with the new certificate from ${pending.credentialsProvider.url}`);
  if (withNew.status !== 200)
    fail(`credentials refused with the new certificate: ${withNew.text.slice(0, 200)}`);
}

async function checkRotation(context: DeviceContext, credentials: Credentials): Promise<RotationCheck> {
  const answer = await sendWithRetries('rotation check', async () => checkRequest(context, credentials));
  if (answer.status !== 200) refuse('rotation check', answer, context);
  return answer.body as unknown as RotationCheck;
}

/** Whether the API takes `credentials` as the device's current certificate (a check it answers 200). */
async function isCurrent(context: DeviceContext, credentials: Credentials, id: string): Promise<boolean> {
  const answer = await sendWithRetries('rotation check', async () => checkRequest(context, credentials));
  return answer.status === 200 && (answer.body as unknown as RotationCheck).certificateId === id;
}

async function checkRequest(context: DeviceContext, credentials: Credentials): Promise<Request> {
  return new Request(`${context.apiUrl}/rotation`, {
    headers: { authorization: `Device-Proof ${await proof('check', context, credentials)}` },
  });
}

function postProof(url: string, jws: string): Request {
  return new Request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ proof: jws }),
  });
}

function proof(action: ProofAction, context: DeviceContext, credentials: Credentials, csr?: string) {
  return deviceProof({
    action,
    serialNumber: context.serialNumber,
    certificatePem: credentials.certificatePem,
    privateKey: credentials.privateKey,
    ...(csr !== undefined ? { csr } : {}),
  });
}

/** Retirement takes effect at once in the sandbox; a few tries allow for a slower credentials provider. */
async function untilRefused(target: CredentialsTarget): Promise<{ status: number; text: string }> {
  for (let attempt = 1; ; attempt++) {
    const result = await fetchCredentials(target);
    if (result.status !== 200 || attempt === 5) return result;
    await sleep(1000);
  }
}

function refuse(what: string, answer: Answer, context: DeviceContext): never {
  const hint = HINTS[String(answer.body.code)]?.replace('<serial>', context.serialNumber);
  fail(hint ? `${refusal(what, answer)}\ndevice: ${hint}` : refusal(what, answer));
}

function readCredentials(keyFile: string, certificateFile: string): Credentials {
  if (!existsSync(keyFile) || !existsSync(certificateFile)) {
    fail(`no ${keyFile} and ${certificateFile}: register first (npm run device -- --serial <serial>)`);
  }
  const keyPem = readFileSync(keyFile, 'utf8');
  return {
    keyPem,
    privateKey: createPrivateKey(keyPem),
    certificatePem: readFileSync(certificateFile, 'utf8'),
  };
}

function paths(folder: string) {
  return {
    key: join(folder, 'device.key'),
    crt: join(folder, 'device.crt'),
    rootCa: join(folder, 'root-ca.pem'),
    nextKey: join(folder, 'next.key'),
    nextCrt: join(folder, 'next.crt'),
    nextJson: join(folder, 'next.json'),
  };
}
