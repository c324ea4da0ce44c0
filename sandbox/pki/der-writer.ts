/** DER encoding, just what the sandbox needs to write CSRs and X.509 certificates. */

export function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export const sequence = (...contents: Buffer[]) => der(0x30, ...contents);
export const set = (...contents: Buffer[]) => der(0x31, ...contents);
export const nullValue = () => der(0x05);
export const octetString = (value: Buffer) => der(0x04, value);
export const bitString = (value: Buffer) => der(0x03, Buffer.from([0]), value);
export const utf8String = (value: string) => der(0x0c, Buffer.from(value, 'utf8'));
export const booleanTrue = () => der(0x01, Buffer.from([0xff]));
/** A context-specific constructed tag, [n] EXPLICIT. */
export const explicit = (n: number, ...contents: Buffer[]) => der(0xa0 + n, ...contents);

/** A non-negative INTEGER from big-endian bytes (a leading zero is added when the top bit is set). */
export function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return der(0x02, (trimmed[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) {
      chunk.unshift((value & 0x7f) | 0x80);
    }
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5). */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return date.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(`${iso.slice(2)}Z`, 'ascii'))
    : der(0x18, Buffer.from(`${iso}Z`, 'ascii'));
}

/** A distinguished name from attribute OIDs to values, in order. */
export function name(attributes: [string, string][]): Buffer {
  return sequence(...attributes.map(([type, value]) => set(sequence(oid(type), utf8String(value)))));
}

export const NAME = { commonName: '2.5.4.3', organization: '2.5.4.10', country: '2.5.4.6' } as const;

export function toPem(derBytes: Buffer, label: string): string {
  const lines = derBytes.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
