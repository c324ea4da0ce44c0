import { readFileSync } from 'node:fs';

/**
 * Configuration, read once per container at module load: a missing variable fails the cold start,
 * not the hundredth request. Local runs differ from AWS only by these values and AWS_ENDPOINT_URL_*.
 */
export interface RegisterConfig {
  devicesTable: string;
  claimsTable: string;
  historyTable: string;
  policyName: string;
  roleAlias: string;
  rootCaPem: string;
  defaultThingNamePrefix: string;
  maxBodyBytes: number;
  credentialsEndpoint?: string;
  dataEndpoint?: string;
}

type Env = Record<string, string | undefined>;

export function loadRegisterConfig(env: Env = process.env): RegisterConfig {
  return {
    devicesTable: required(env, 'DEVICES_TABLE'),
    claimsTable: required(env, 'CLAIMS_TABLE'),
    historyTable: required(env, 'HISTORY_TABLE'),
    policyName: required(env, 'IOT_POLICY_NAME'),
    roleAlias: required(env, 'IOT_ROLE_ALIAS'),
    rootCaPem: rootCa(env),
    defaultThingNamePrefix: env.THING_NAME_PREFIX ?? '',
    maxBodyBytes: positiveInt(env, 'MAX_BODY_BYTES', 16_384),
    ...optional(env, 'IOT_CREDENTIALS_ENDPOINT', 'credentialsEndpoint'),
    ...optional(env, 'IOT_DATA_ENDPOINT', 'dataEndpoint'),
  };
}

export interface RotationConfig extends RegisterConfig {
  /** ROTATION_GRACE_SECONDS: how long both certificates work without the device's confirmation. */
  graceSeconds: number;
  /** ROTATION_OVERDUE_AFTER_SECONDS: an operator's request to rotate open this long is overdue. */
  overdueAfterSeconds: number;
}

export function loadRotationConfig(env: Env = process.env): RotationConfig {
  return { ...loadRegisterConfig(env), ...rotationTimes(env) };
}

function rotationTimes(env: Env): { graceSeconds: number; overdueAfterSeconds: number } {
  return {
    graceSeconds: positiveInt(env, 'ROTATION_GRACE_SECONDS', 7 * 86_400),
    overdueAfterSeconds: positiveInt(env, 'ROTATION_OVERDUE_AFTER_SECONDS', 7 * 86_400),
  };
}

export interface ReconcileConfig {
  devicesTable: string;
  claimsTable: string;
  historyTable: string;
  policyName: string;
  staleAfterSeconds: number;
  maxDevicesPerRun: number;
}

export function loadReconcileConfig(env: Env = process.env): ReconcileConfig {
  return {
    ...loadAdminConfig(env),
    staleAfterSeconds: positiveInt(env, 'RECONCILE_STALE_AFTER_SECONDS', 300),
    maxDevicesPerRun: positiveInt(env, 'RECONCILE_MAX_DEVICES', 200),
  };
}

export interface AdminConfig {
  devicesTable: string;
  claimsTable: string;
  historyTable: string;
  policyName: string;
  /** The register function's THING_NAME_PREFIX: claim batches are checked against it. */
  defaultThingNamePrefix: string;
  /** THING_NAME_PATTERN: the thing names the register role may create (IAM wildcards `*` and `?`). */
  thingNamePattern: string;
  graceSeconds: number;
  overdueAfterSeconds: number;
}

export function loadAdminConfig(env: Env = process.env): AdminConfig {
  return {
    devicesTable: required(env, 'DEVICES_TABLE'),
    claimsTable: required(env, 'CLAIMS_TABLE'),
    historyTable: required(env, 'HISTORY_TABLE'),
    policyName: required(env, 'IOT_POLICY_NAME'),
    defaultThingNamePrefix: env.THING_NAME_PREFIX ?? '',
    thingNamePattern: env.THING_NAME_PATTERN || '*',
    ...rotationTimes(env),
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`environment variable ${name} is required`);
  return value;
}

function optional<K extends string>(env: Env, name: string, key: K): Partial<Record<K, string>> {
  const value = env[name];
  return value ? ({ [key]: value } as Record<K, string>) : {};
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new ConfigError(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** The CA a device trusts for the credentials endpoint: ROOT_CA_PEM, ROOT_CA_FILE, or Amazon Root CA 1. */
function rootCa(env: Env): string {
  if (env.ROOT_CA_PEM) return env.ROOT_CA_PEM;
  if (env.ROOT_CA_FILE) return readFileSync(env.ROOT_CA_FILE, 'utf8');
  return AMAZON_ROOT_CA_1;
}

/** Amazon Root CA 1 (public; SHA-256 fingerprint 8E:CD:E6:88:...:19:6E), the CA behind AWS IoT's ATS endpoints. */
export const AMAZON_ROOT_CA_1 = `-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgITBmyfz5m/jAo54vB4ikPmljZbyjANBgkqhkiG9w0BAQsF
ADA5MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6
b24gUm9vdCBDQSAxMB4XDTE1MDUyNjAwMDAwMFoXDTM4MDExNzAwMDAwMFowOTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJv
b3QgQ0EgMTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALJ4gHHKeNXj
ca9HgFB0fW7Y14h29Jlo91ghYPl0hAEvrAIthtOgQ3pOsqTQNroBvo3bSMgHFzZM
9O6II8c+6zf1tRn4SWiw3te5djgdYZ6k/oI2peVKVuRF4fn9tBb6dNqcmzU5L/qw
IFAGbHrQgLKm+a/sRxmPUDgH3KKHOVj4utWp+UhnMJbulHheb4mjUcAwhmahRWa6
VOujw5H5SNz/0egwLX0tdHA114gk957EWW67c4cX8jJGKLhD+rcdqsq08p8kDi1L
93FcXmn/6pUCyziKrlA4b9v7LWIbxcceVOF34GfID5yHI9Y/QCB/IIDEgEw+OyQm
jgSubJrIqg0CAwEAAaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMC
AYYwHQYDVR0OBBYEFIQYzIU07LwMlJQuCFmcx7IQTgoIMA0GCSqGSIb3DQEBCwUA
A4IBAQCY8jdaQZChGsV2USggNiMOruYou6r4lK5IpDB/G/wkjUu0yKGX9rbxenDI
U5PMCCjjmCXPI6T53iHTfIUJrU6adTrCC2qJeHZERxhlbI1Bjjt/msv0tadQ1wUs
N+gDS63pYaACbvXy8MWy7Vu33PqUXHeeE6V/Uq2V8viTO96LXFvKWlJbYK8U90vv
o/ufQJVtMVT8QtPHRh8jrdkPSHCa2XV4cdFyQzR1bldZwgJcJmApzyMZFo6IQ6XU
5MsI+yMRQ+hDKXJioaldXgjUkK642M4UwtBV8ob2xJNDd2ZhwLnoQdeXeGADbkpy
rqXRfboQnoZsG4q5WTP468SQvvG5
-----END CERTIFICATE-----
`;
