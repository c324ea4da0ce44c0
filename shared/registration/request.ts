import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { isClaimTokenFormat } from '../claims/token.js';
import { MAX_CSR_PEM_LENGTH } from '../csr/parse-csr.js';
import { InvalidClaimTokenError, InvalidRequestError, InvalidSerialNumberError } from '../errors.js';

/** AWS IoT thing names: [a-zA-Z0-9:_-]+, at most 128 characters (with any prefix). */
export const SERIAL_NUMBER_PATTERN = /^[A-Za-z0-9_:-]+$/;
export const MAX_THING_NAME_LENGTH = 128;
const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_ATTRIBUTES = 16;
/**
 * Refused rather than stored: attributes are merged with object spread and marshalled for DynamoDB,
 * where an own `constructor` breaks the marshaller and `__proto__` is dropped (zod skips it; a spread
 * would set the prototype). `prototype` goes with them.
 */
const RESERVED_ATTRIBUTE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

// zod/mini keeps the register bundle small: only the checks used here, English messages only.
z.config(en());

/**
 * Attributes, name to string value: the one schema for a device's (POST /register) and a claim's
 * (POST /claims). Reserved names are looked for in the input itself, before the record drops
 * `__proto__`.
 */
export const attributesSchema = z.pipe(
  z.unknown().check(
    z.superRefine((input, ctx) => {
      if (typeof input !== 'object' || input === null) return;
      for (const name of Object.keys(input)) {
        if (!RESERVED_ATTRIBUTE_NAMES.has(name)) continue;
        ctx.addIssue({
          code: 'custom',
          message: `"${name}" is a reserved name; attribute names may not be __proto__, constructor or prototype`,
          input: name,
          path: [name],
        });
      }
    }),
  ),
  z.record(z.string().check(z.regex(ATTRIBUTE_NAME)), z.string().check(z.maxLength(256))),
);

/** POST /register body. The schema gives both the runtime check and the TypeScript type. */
export const registerRequestSchema = z.object({
  claimToken: z.string().check(z.minLength(1), z.maxLength(128)),
  serialNumber: z.string().check(z.minLength(1), z.maxLength(MAX_THING_NAME_LENGTH)),
  csr: z.optional(z.string().check(z.minLength(1), z.maxLength(MAX_CSR_PEM_LENGTH))),
  attributes: z.optional(
    attributesSchema.check(
      z.refine(
        (value) => Object.keys(value).length <= MAX_ATTRIBUTES,
        `at most ${MAX_ATTRIBUTES} attributes`,
      ),
    ),
  ),
});

export type RegisterRequest = z.infer<typeof registerRequestSchema>;

/** Validates at the edge; each failure is a 400 with a specific code. */
export function parseRegisterRequest(body: unknown): RegisterRequest {
  const parsed = registerRequestSchema.safeParse(body);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => ({
      pointer: `/${issue.path.join('/')}`,
      detail: issue.message,
    }));
    throw new InvalidRequestError('the body does not match the schema', { extensions: { errors } });
  }
  const request = parsed.data;
  if (!SERIAL_NUMBER_PATTERN.test(request.serialNumber)) {
    throw new InvalidSerialNumberError('serialNumber may contain only letters, digits, "_", ":" and "-"');
  }
  if (!isClaimTokenFormat(request.claimToken)) {
    throw new InvalidClaimTokenError('claimToken must be "fpc_" followed by 43 base64url characters');
  }
  return request;
}
