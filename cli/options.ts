import { attributesSchema } from '../shared/registration/request.js';
import { UsageError } from './errors.js';

/** A whole number within limits, for commander's argParser: anything else is a usage error (exit 2). */
export function wholeNumber(option: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const number = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(number) || number < min || number > max) {
      throw new UsageError(`${option} must be a whole number from ${min} to ${max}; got "${value}"`);
    }
    return number;
  };
}

/** A string matching `pattern`, described in words when it does not. */
export function matching(option: string, pattern: RegExp, rule: string): (value: string) => string {
  return (value) => {
    if (!pattern.test(value)) throw new UsageError(`${option} must be ${rule}; got "${value}"`);
    return value;
  };
}

/** Repeatable `name=value`, collected into one object and checked by the API's attribute rules. */
export function attribute(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new UsageError(`--attributes must be name=value; got "${value}"`);
  const name = value.slice(0, at);
  if (Object.hasOwn(previous, name)) throw new UsageError(`--attributes gives "${name}" twice`);
  const attributes = { ...previous };
  Object.defineProperty(attributes, name, { value: value.slice(at + 1), enumerable: true, writable: true });
  const parsed = attributesSchema.safeParse(attributes);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const rule =
      issue?.code === 'invalid_key'
        ? 'a name is 1 to 64 letters, digits, "_", "." or "-"'
        : (issue?.message ?? 'not allowed');
    throw new UsageError(`--attributes "${name}": ${rule}`);
  }
  return attributes;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
