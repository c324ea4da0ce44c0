/**
 * A minimal, bounds-checked DER reader: just enough ASN.1 to split a PKCS#10 request into the
 * bytes that were signed, the algorithm, the public key and the signature. Every malformed input
 * throws DerError; nothing here trusts a length it has not checked against the buffer.
 */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  CONTEXT_0: 0xa0,
} as const;

export interface DerNode {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte. */
  end: number;
}

const MAX_LENGTH_BYTES = 4; // lengths above 2^32 cannot occur in a CSR we would accept

export function readNode(buf: Uint8Array, offset: number, limit = buf.length): DerNode {
  if (offset + 2 > limit) throw new DerError('truncated header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in CSRs');
  let cursor = offset + 1;
  const first = buf[cursor++] as number;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite length is not DER');
    if (count > MAX_LENGTH_BYTES) throw new DerError('length too large');
    if (cursor + count > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (buf[cursor++] as number);
    if (length < 0x80 || (count > 1 && buf[cursor - count] === 0)) throw new DerError('non-minimal length');
  }
  const end = cursor + length;
  if (end > limit) throw new DerError('content runs past its container');
  return { tag, start: offset, contentStart: cursor, end };
}

export function expectNode(buf: Uint8Array, offset: number, tag: number, limit?: number): DerNode {
  const node = readNode(buf, offset, limit);
  if (node.tag !== tag)
    throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

export function childrenOf(buf: Uint8Array, parent: DerNode): DerNode[] {
  const nodes: DerNode[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
    const node = readNode(buf, offset, parent.end);
    nodes.push(node);
    offset = node.end;
  }
  return nodes;
}

export function decodeOid(buf: Uint8Array, node: DerNode): string {
  if (node.tag !== TAG.OID || node.end === node.contentStart) throw new DerError('not an OID');
  const parts: number[] = [];
  let value = 0;
  for (let i = node.contentStart; i < node.end; i++) {
    const byte = buf[i] as number;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    if ((byte & 0x80) === 0) {
      if (parts.length === 0)
        parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  if ((buf[node.end - 1] as number) & 0x80) throw new DerError('truncated OID');
  return parts.join('.');
}
