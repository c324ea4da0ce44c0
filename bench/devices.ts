import { buildCsr } from '../sandbox/pki/csr.js';

/** A device at first boot: its serial number, its claim token and a CSR for a key of its own. */
export interface Device {
  serialNumber: string;
  token: string;
  csr: string;
}

/** One EC P-256 key and CSR per token (one public key registers one device). */
export function makeDevices(serialPrefix: string, tokens: string[]): Device[] {
  return tokens.map((token, i) => {
    const serialNumber = `${serialPrefix}-${String(i + 1).padStart(6, '0')}`;
    return { serialNumber, token, csr: buildCsr({ commonName: serialNumber }).pem };
  });
}

/** What the API answered a registration, as a device sees it. */
export interface Answer {
  status: number;
  /** The problem+json `code`, or HTTP API's own `message` (its 429, 500, 503 carry no code). */
  code: string;
  retryAfterSeconds: number | undefined;
  ms: number;
}

/** POST /register, as sandbox/device.ts (the reference client) sends it. */
export async function register(apiUrl: string, device: Device, timeoutMs = 40_000): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(`${apiUrl}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ claimToken: device.token, serialNumber: device.serialNumber, csr: device.csr }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN);
  return {
    status: response.status,
    code: response.ok ? '' : codeOf(text),
    retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined,
    ms,
  };
}

function codeOf(text: string): string {
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    return String(body.code ?? body.message ?? '');
  } catch {
    return text.slice(0, 40);
  }
}
