import { describe, expect, it } from 'vitest';
import { generateClaimToken } from '../../shared/claims/token.js';
import type { AppError } from '../../shared/errors.js';
import { parseRegisterRequest } from '../../shared/registration/request.js';

const valid = { claimToken: generateClaimToken(), serialNumber: 'SN-000123', csr: 'x' };

function rejection(body: unknown): AppError {
  try {
    parseRegisterRequest(body);
  } catch (error) {
    return error as AppError;
  }
  throw new Error('expected a rejection');
}

describe('parseRegisterRequest', () => {
  it('accepts a body with token, serial, CSR and attributes', () => {
    const request = parseRegisterRequest({ ...valid, attributes: { model: 'X1', firmwareVersion: '1.4.2' } });

    expect(request).toMatchObject({ serialNumber: 'SN-000123', attributes: { model: 'X1' } });
  });

  it.each([
    ['a missing claim token', { serialNumber: 'SN-1' }],
    ['a numeric serial number', { ...valid, serialNumber: 123 }],
    ['an empty serial number', { ...valid, serialNumber: '' }],
    ['a serial number over 128 characters', { ...valid, serialNumber: 'A'.repeat(129) }],
    ['a CSR that is not a string', { ...valid, csr: ['pem'] }],
    ['a CSR over 8 KiB', { ...valid, csr: 'A'.repeat(8193) }],
    ['attributes that are not an object', { ...valid, attributes: 'model=X1' }],
    ['an attribute value that is not a string', { ...valid, attributes: { model: 1 } }],
    ['an attribute name with a space', { ...valid, attributes: { 'my model': 'X1' } }],
    [
      'more than 16 attributes',
      { ...valid, attributes: Object.fromEntries([...Array(17).keys()].map((i) => [`a${i}`, 'v'])) },
    ],
    ['an array body', [valid]],
    ['a null body', null],
  ])('rejects %s as INVALID_REQUEST with a pointer to the field', (_name, body) => {
    const error = rejection(body);

    expect(error.code).toBe('INVALID_REQUEST');
    expect(error.extensions?.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ pointer: expect.any(String) })]),
    );
  });

  it.each(['__proto__', 'constructor', 'prototype'])(
    'refuses the reserved attribute name %s as INVALID_REQUEST with a pointer to it',
    (name) => {
      // As the JSON parser hands it over: an own property, even for __proto__.
      const attributes: unknown = JSON.parse(`{"model":"X1",${JSON.stringify(name)}:"x"}`);

      const error = rejection({ ...valid, attributes });

      expect(error.code).toBe('INVALID_REQUEST');
      expect(error.extensions?.errors).toEqual([
        { pointer: `/attributes/${name}`, detail: expect.stringContaining('reserved') },
      ]);
    },
  );

  it.each([
    ['a slash (path traversal)', '../SN-1'],
    ['a space', 'SN 1'],
    ['unicode letters', 'SN-ü1'],
    ['a control character', 'SN-1\u0000'],
    ['a dot', 'SN.1'],
  ])('rejects a serial number with %s as INVALID_SERIAL_NUMBER', (_name, serialNumber) => {
    expect(rejection({ ...valid, serialNumber }).code).toBe('INVALID_SERIAL_NUMBER');
  });

  it.each([
    ['without the fpc_ prefix', valid.claimToken.slice(4)],
    ['one character short', valid.claimToken.slice(0, -1)],
    ['with a character outside base64url', `${valid.claimToken.slice(0, -1)}+`],
  ])('rejects a claim token %s as INVALID_CLAIM_TOKEN', (_name, claimToken) => {
    expect(rejection({ ...valid, claimToken }).code).toBe('INVALID_CLAIM_TOKEN');
  });
});
