import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as z from 'zod/mini';
import { UsageError } from './errors.js';

/** Where the admin API is, how to sign for it, and where that came from (for error messages). */
export interface ApiTarget {
  url: string;
  region: string;
  /** The sandbox's admin credentials; the standard AWS credential chain when absent. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** `--api-url`, `FLEET_API_URL` or the sandbox.json file the URL was read from. */
  source: string;
}

export interface DiscoveryInput {
  apiUrl?: string;
  region?: string;
  env: Record<string, string | undefined>;
  cwd: string;
}

const sandboxFileSchema = z.object({
  apiUrl: z.string(),
  region: z.string(),
  adminAccessKeyId: z.optional(z.string()),
  adminSecretAccessKey: z.optional(z.string()),
});

export const NO_API_MESSAGE =
  'no API to talk to: give --api-url URL, set FLEET_API_URL, or run inside a folder that holds ' +
  '.sandbox/sandbox.json (npm start writes it)';

/**
 * Finds the admin API: `--api-url`, then `FLEET_API_URL`, then the sandbox's sandbox.json (in
 * `SANDBOX_DIR` when that is set, as for `npm start`, else the nearest `.sandbox/sandbox.json` walking up
 * from the working directory). Never a default: nothing found is an error that says what to do.
 */
export function findApi(input: DiscoveryInput): ApiTarget {
  if (input.apiUrl) return deployedStage(input.apiUrl, '--api-url', input);
  const fromEnvironment = input.env.FLEET_API_URL;
  if (fromEnvironment) return deployedStage(fromEnvironment, 'FLEET_API_URL', input);
  const sandboxDir = input.env.SANDBOX_DIR;
  if (sandboxDir) {
    const file = join(resolve(input.cwd, sandboxDir), 'sandbox.json');
    if (!existsSync(file)) {
      throw new UsageError(
        `SANDBOX_DIR is ${sandboxDir} but it holds no sandbox.json; start the sandbox (npm start) or unset SANDBOX_DIR`,
        false,
      );
    }
    return sandbox(file);
  }
  const file = nearestSandboxFile(input.cwd);
  if (!file) throw new UsageError(NO_API_MESSAGE, false);
  return sandbox(file);
}

/** The nearest `.sandbox/sandbox.json` in `from` or a folder above it. */
export function nearestSandboxFile(from: string): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const file = join(dir, '.sandbox', 'sandbox.json');
    if (existsSync(file)) return file;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** A deployed stage (or anything else named by URL): signed from the standard AWS credential chain. */
function deployedStage(url: string, source: string, input: DiscoveryInput): ApiTarget {
  checkUrl(url, source);
  const fromUrl = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1];
  const region = input.region ?? fromUrl ?? input.env.AWS_REGION ?? input.env.AWS_DEFAULT_REGION;
  if (!region)
    throw new UsageError(`give --region (it cannot be read from ${source} ${url}) or set AWS_REGION`);
  return { url, region, source };
}

function sandbox(file: string): ApiTarget {
  let info: z.infer<typeof sandboxFileSchema>;
  try {
    const parsed = sandboxFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success) throw new Error('it lacks apiUrl or region');
    info = parsed.data;
  } catch (error) {
    throw new UsageError(`cannot use ${file}: ${(error as Error).message}`, false);
  }
  checkUrl(info.apiUrl, file);
  // The sandbox's front door checks SigV4 on the admin routes as AWS does, against its own credentials.
  return {
    url: info.apiUrl,
    region: info.region,
    source: file,
    ...(info.adminAccessKeyId && info.adminSecretAccessKey
      ? { credentials: { accessKeyId: info.adminAccessKeyId, secretAccessKey: info.adminSecretAccessKey } }
      : {}),
  };
}

function checkUrl(url: string, source: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${source} is not a URL: "${url}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new UsageError(`${source} must be an http(s) URL, got "${url}"`);
}
