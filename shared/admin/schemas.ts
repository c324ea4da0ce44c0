import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { InvalidRequestError } from '../errors.js';
import { attributesSchema, SERIAL_NUMBER_PATTERN } from '../registration/request.js';
import { DEVICE_STATUSES } from './response-schemas.js';

z.config(en());

/** Safe in a thing attribute value and a DynamoDB key. */
export const BATCH_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_CLAIMS_PER_REQUEST = 1000;
/** Limits of POST /claims, which the `fleet` CLI also checks before it sends anything. */
export const CLAIM_LIMITS = {
  ttlSeconds: { min: 60, max: 366 * 24 * 3600 },
  maxUses: { min: 1, max: 1_000_000 },
  serialNumberLength: 128,
} as const;
export const THING_NAME_PREFIX = /^[A-Za-z0-9_:-]{0,64}$/;

const serial = z
  .string()
  .check(z.minLength(1), z.maxLength(CLAIM_LIMITS.serialNumberLength), z.regex(SERIAL_NUMBER_PATTERN));

export const createClaimsSchema = z.object({
  batchId: z.string().check(z.regex(BATCH_ID)),
  count: z.optional(z.int().check(z.minimum(1), z.maximum(MAX_CLAIMS_PER_REQUEST))),
  ttlSeconds: z.int().check(z.minimum(CLAIM_LIMITS.ttlSeconds.min), z.maximum(CLAIM_LIMITS.ttlSeconds.max)),
  serialNumbers: z.optional(z.array(serial).check(z.minLength(1), z.maxLength(MAX_CLAIMS_PER_REQUEST))),
  maxUses: z.optional(
    z.int().check(z.minimum(CLAIM_LIMITS.maxUses.min), z.maximum(CLAIM_LIMITS.maxUses.max)),
  ),
  allowServerKeygen: z.optional(z.boolean()),
  thingNamePrefix: z.optional(z.string().check(z.regex(THING_NAME_PREFIX))),
  attributes: z.optional(attributesSchema),
});
export type CreateClaimsRequest = z.infer<typeof createClaimsSchema>;

export const revokeClaimsSchema = z.union([
  z.object({ claimId: z.string().check(z.minLength(1), z.maxLength(64)) }),
  z.object({ batchId: z.string().check(z.regex(BATCH_ID)) }),
]);
export type RevokeClaimsRequest = z.infer<typeof revokeClaimsSchema>;

export const listQuerySchema = z.object({
  batchId: z.optional(z.string().check(z.regex(BATCH_ID))),
  status: z.optional(z.enum(DEVICE_STATUSES)),
  /** `overdue`: only devices whose requested rotation is overdue. */
  rotation: z.optional(z.enum(['overdue'])),
  limit: z.optional(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(1000))),
  cursor: z.optional(z.string().check(z.maxLength(2048))),
});
export type ListQuery = z.infer<typeof listQuerySchema>;

export const historyQuerySchema = z.object({
  limit: z.optional(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(1000))),
  cursor: z.optional(z.string().check(z.maxLength(2048))),
});

export const serialParamSchema = serial;
export const batchIdParamSchema = z.string().check(z.regex(BATCH_ID));

/** Parses at the edge; a failure is a 400 INVALID_REQUEST with a pointer per problem. */
export function parseWith<T>(schema: z.ZodMiniType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((issue) => ({
    pointer: `/${issue.path.join('/')}`,
    detail: issue.message,
  }));
  throw new InvalidRequestError('the request does not match the schema', { extensions: { errors } });
}
