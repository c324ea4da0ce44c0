import { IotError, type IotErrorType, isIotErrorType } from './iot-error.js';

/** A fault: fail the nth call (1-based), or every call with a probability, `times` times at most. */
export interface FaultRule {
  error: IotErrorType | 'Timeout';
  nth?: number;
  fraction?: number;
  times?: number;
  /** For 'Timeout': how long the request is held before a 503 (longer than the client will wait). */
  holdMs?: number;
  /** The call lands (the operation is carried out) and only its answer is the error: a lost response. */
  landed?: boolean;
}

export interface OperationBehaviour {
  /** Held this long before the call is carried out. */
  latencyMs?: number;
  /**
   * Answered this long after the call arrived, carried out meanwhile (or when done, if later): a call
   * that takes this long in all, as AWS's latency includes its own work. For `npm run bench`.
   */
  answerAfterMs?: number;
  ratePerSecond?: number;
  burst?: number;
  fault?: FaultRule;
  /**
   * For DetachThingPrincipal and DetachPolicy: how long the detachment takes to reach the deletes, as
   * AWS IoT's does (DeleteThing and DeleteCertificate still see it attached meanwhile).
   */
  propagationMs?: number;
}

/** Detachments propagate this long unless configured: small, so every test run goes through it. */
export const DEFAULT_PROPAGATION_MS = 300;

/** Per operation name, or '*' for every operation. */
export type BehaviourConfig = Record<string, OperationBehaviour>;

/**
 * Requests per second per operation, approximating AWS IoT Core's default registry API quotas
 * (see the "AWS IoT Core endpoints and quotas" page; check your account's values). Burst = rate.
 */
export const DEFAULT_RATES: Record<string, number> = {
  AttachPolicy: 15,
  AttachThingPrincipal: 15,
  CreateCertificateFromCsr: 15,
  CreateKeysAndCertificate: 10,
  CreatePolicy: 10,
  CreateRoleAlias: 10,
  CreateThing: 15,
  DeleteCertificate: 10,
  DeleteThing: 15,
  DescribeCertificate: 10,
  DescribeEndpoint: 10,
  DescribeRoleAlias: 10,
  DescribeThing: 350,
  DetachPolicy: 15,
  DetachThingPrincipal: 15,
  GetPolicy: 15,
  ListAttachedPolicies: 15,
  ListCertificates: 10,
  ListPrincipalThings: 10,
  ListThingPrincipals: 10,
  ListThings: 10,
  UpdateCertificate: 10,
};

/** The quota of an operation when no behaviour sets one: DEFAULT_RATES, else 10 per second. */
export function defaultRate(operation: string): number {
  return DEFAULT_RATES[operation] ?? 10;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Applies the configured latency, quota and faults before an operation runs. */
export class Behaviour {
  private config: BehaviourConfig = {};
  private readonly buckets = new Map<string, Bucket>();
  private readonly calls = new Map<string, number>();
  private readonly faultsFired = new Map<string, number>();

  constructor(
    config: BehaviourConfig = {},
    private readonly now: () => number = Date.now,
  ) {
    this.set(config);
  }

  set(config: BehaviourConfig): void {
    validate(config);
    this.config = config;
    this.buckets.clear();
    this.calls.clear();
    this.faultsFired.clear();
  }

  get(): BehaviourConfig {
    return this.config;
  }

  /**
   * Applies latency, quota and faults before `operation` runs. Returns the error to answer with
   * after running it, for a fault whose call lands but whose answer is lost.
   */
  async before(operation: string): Promise<(() => Promise<never>) | undefined> {
    const rule = { ...this.config['*'], ...this.config[operation] };
    const call = (this.calls.get(operation) ?? 0) + 1;
    this.calls.set(operation, call);
    if (rule.latencyMs) await sleep(rule.latencyMs);
    this.takeToken(operation, rule);
    if (!rule.fault || !this.fires(operation, rule.fault, call)) return undefined;
    const { fault } = rule;
    const answer = async (): Promise<never> => {
      if (fault.error === 'Timeout') {
        await sleep(fault.holdMs ?? 30_000);
        throw new IotError('ServiceUnavailableException', `${operation} timed out (injected)`);
      }
      throw new IotError(fault.error, `${operation} failed (injected fault)`);
    };
    if (fault.landed) return answer;
    return answer();
  }

  /** Resolves when a call to `operation` that arrived at `arrivedAt` (epoch ms) may be answered. */
  answerAt(operation: string, arrivedAt: number): Promise<void> {
    const ms = { ...this.config['*'], ...this.config[operation] }.answerAfterMs ?? 0;
    const wait = arrivedAt + ms - Date.now();
    return wait > 0 ? sleep(wait) : Promise.resolve();
  }

  /** How long a detachment made by `operation` takes to propagate. */
  propagationMs(operation: string): number {
    return this.config[operation]?.propagationMs ?? this.config['*']?.propagationMs ?? DEFAULT_PROPAGATION_MS;
  }

  private takeToken(operation: string, rule: OperationBehaviour): void {
    const rate = rule.ratePerSecond ?? defaultRate(operation);
    if (rate <= 0 || !Number.isFinite(rate)) return;
    const burst = rule.burst ?? rate;
    const now = this.now();
    const bucket = this.buckets.get(operation) ?? { tokens: burst, updatedAt: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * rate);
    bucket.updatedAt = now;
    this.buckets.set(operation, bucket);
    if (bucket.tokens < 1) throw new IotError('ThrottlingException', 'Rate exceeded');
    bucket.tokens -= 1;
  }

  private fires(operation: string, fault: FaultRule, call: number): boolean {
    const fired = this.faultsFired.get(operation) ?? 0;
    if (fault.times !== undefined && fired >= fault.times) return false;
    const hit = fault.nth !== undefined ? call === fault.nth : Math.random() < (fault.fraction ?? 1);
    if (hit) this.faultsFired.set(operation, fired + 1);
    return hit;
  }
}

function validate(config: BehaviourConfig): void {
  for (const [operation, rule] of Object.entries(config)) {
    const error = rule.fault?.error;
    if (error !== undefined && error !== 'Timeout' && !isIotErrorType(error)) {
      throw new Error(`behaviour for ${operation}: unknown error type ${error}`);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
