import { describe, expect, it } from 'vitest';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { describeError } from '../../shared/logger.js';

describe('describeError', () => {
  it('cuts a long message short', () => {
    const described = describeError(new Error('x'.repeat(5000)));

    expect(described.message?.length).toBeLessThan(600);
    expect(described.message).toMatch(/…\[truncated]$/);
  });

  it('redacts a PEM block whose end was cut off', () => {
    const { pem } = buildCsr();
    const cut = pem.slice(0, 120);

    expect(describeError(new Error(`csr: ${cut}`)).message).toBe('csr: [redacted CERTIFICATE REQUEST]');
  });

  it('keeps the code of an error that is not ours, with its message', () => {
    const error = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

    expect(describeError(error)).toMatchObject({
      name: 'Error',
      code: 'ECONNRESET',
      message: 'read ECONNRESET',
    });
  });
});
