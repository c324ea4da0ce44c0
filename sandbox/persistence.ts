import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  CertificateRecord,
  IotRegistry,
  PolicyRecord,
  RoleAliasRecord,
  ThingRecord,
} from './iot/registry.js';
import { CertificateAuthority } from './pki/ca.js';

/**
 * `npm start -- --persist`: what the sandbox keeps on disk, in one folder, so that a restart (even
 * after a kill -9) finds DynamoDB Local's tables, the IoT registry and the CA that signed its
 * certificates together.
 */
export interface PersistentPaths {
  dir: string;
  /** DynamoDB Local's -dbPath. */
  dynamodb: string;
  registry: string;
  caCertificate: string;
  caKey: string;
}

export function persistentPaths(sandboxDir: string): PersistentPaths {
  const dir = join(sandboxDir, 'persist');
  return {
    dir,
    dynamodb: join(dir, 'dynamodb'),
    registry: join(dir, 'iot-registry.json'),
    caCertificate: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
  };
}

export function prepare(paths: PersistentPaths): void {
  mkdirSync(paths.dynamodb, { recursive: true });
}

/** The CA saved by an earlier run, or a new one, saved. */
export async function persistentCa(paths: PersistentPaths): Promise<CertificateAuthority> {
  if (existsSync(paths.caCertificate) && existsSync(paths.caKey)) {
    return CertificateAuthority.restore({
      certificatePem: readFileSync(paths.caCertificate, 'utf8'),
      keyPem: readFileSync(paths.caKey, 'utf8'),
    });
  }
  const ca = await CertificateAuthority.create();
  const saved = ca.export();
  writeAtomically(paths.caKey, saved.keyPem, 0o600);
  writeAtomically(paths.caCertificate, saved.certificatePem);
  return ca;
}

/** Registry methods that change it; each is followed by a snapshot, written before the emulator answers. */
const MUTATION = /^(create|update|delete|attach|detach)/;

/**
 * Restores the registry from its snapshot (if any), and returns it wrapped so that every change is
 * written to disk before the emulator answers: what a caller was told happened survives a kill -9.
 * The snapshot is the registry's maps as JSON, replaced atomically (write, then rename).
 */
export function persistentRegistry(registry: IotRegistry, file: string): IotRegistry {
  if (existsSync(file)) restore(registry, JSON.parse(readFileSync(file, 'utf8')) as Snapshot);
  const save = () => writeAtomically(file, serialize(registry));
  return new Proxy(registry, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string' || !MUTATION.test(property))
        return value;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = value.apply(target, args);
        } catch (error) {
          save();
          throw error;
        }
        // Issuing a certificate is asynchronous (signing): save once it has settled, still before
        // the caller hears of it.
        if (result instanceof Promise) return result.finally(save);
        save();
        return result;
      };
    },
  });
}

/** A record as JSON keeps it: dates become ISO strings. */
type Stored<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] };

interface Snapshot {
  version: 1;
  certificates: Stored<CertificateRecord>[];
  things: ThingRecord[];
  policies: Stored<PolicyRecord>[];
  roleAliases: Stored<RoleAliasRecord>[];
  thingPrincipals: [string, string[]][];
  policyTargets: [string, string[]][];
}

/** The registry's maps as JSON (its Dates become ISO strings: the Stored shape). */
export function serialize(registry: IotRegistry): string {
  return JSON.stringify({
    version: 1,
    certificates: [...registry.certificates.values()],
    things: [...registry.things.values()],
    policies: [...registry.policies.values()],
    roleAliases: [...registry.roleAliases.values()],
    thingPrincipals: [...registry.thingPrincipals].map(([name, set]) => [name, [...set]]),
    policyTargets: [...registry.policyTargets].map(([name, set]) => [name, [...set]]),
  });
}

export function restore(registry: IotRegistry, saved: Snapshot): void {
  if (saved.version !== 1) throw new Error(`unknown IoT registry snapshot version ${String(saved.version)}`);
  const date = (value: string) => new Date(value);
  fill(
    registry.certificates,
    saved.certificates.map((c) => [
      c.certificateId,
      { ...c, creationDate: date(c.creationDate), lastModifiedDate: date(c.lastModifiedDate) },
    ]),
  );
  fill(
    registry.things,
    saved.things.map((t) => [t.thingName, t]),
  );
  fill(
    registry.policies,
    saved.policies.map((p) => [p.policyName, { ...p, creationDate: date(p.creationDate) }]),
  );
  fill(
    registry.roleAliases,
    saved.roleAliases.map((r) => [
      r.roleAlias,
      { ...r, creationDate: date(r.creationDate), lastModifiedDate: date(r.lastModifiedDate) },
    ]),
  );
  fill(
    registry.thingPrincipals,
    saved.thingPrincipals.map(([name, principals]) => [name, new Set(principals)]),
  );
  fill(
    registry.policyTargets,
    saved.policyTargets.map(([name, targets]) => [name, new Set(targets)]),
  );
}

function fill<K, V>(map: Map<K, V>, entries: [K, V][]): void {
  map.clear();
  for (const [key, value] of entries) map.set(key, value);
}

function writeAtomically(file: string, content: string, mode = 0o644): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, file);
}
