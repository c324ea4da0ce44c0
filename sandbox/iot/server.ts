import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen } from '../net.js';
import type { Behaviour, BehaviourConfig } from './behaviour.js';
import { CallLog } from './call-log.js';
import { IotError } from './iot-error.js';
import type { CertificateRecord, IotRegistry } from './registry.js';

interface Call {
  params: Record<string, string>;
  query: URLSearchParams;
  principal: string | undefined;
  body: Record<string, unknown>;
}

type Operation = (call: Call) => unknown;

interface Route {
  method: string;
  pattern: RegExp;
  name: string;
  run: Operation;
}

const seconds = (date: Date) => date.getTime() / 1000;

/**
 * AWS IoT's control-plane REST API, as @aws-sdk/client-iot and `aws iot --endpoint-url` speak it:
 * the routes, query and header bindings and response shapes of the SDK's own service model.
 * Requests are not SigV4-verified.
 */
export function iotRoutes(registry: IotRegistry, behaviour: Behaviour): Route[] {
  const route = (method: string, path: string, name: string, run: Operation): Route => ({
    method,
    // "/things/{thingName}" -> ^/things/(?<thingName>[^/]+)$
    pattern: new RegExp(`^${path.replace(/\{(\w+)\}/g, '(?<$1>[^/]+)')}$`),
    name,
    run,
  });
  const description = (c: CertificateRecord) => ({
    certificateArn: c.certificateArn,
    certificateId: c.certificateId,
    status: c.status,
    certificatePem: c.certificatePem,
    ownedBy: registry.options.accountId,
    creationDate: seconds(c.creationDate),
    lastModifiedDate: seconds(c.lastModifiedDate),
    customerVersion: 1,
    generationId: c.generationId,
    validity: { notBefore: seconds(c.creationDate), notAfter: seconds(new Date('2049-12-31T23:59:59Z')) },
    certificateMode: 'DEFAULT',
  });
  const flag = (query: URLSearchParams, name: string) => query.get(name) === 'true';

  return [
    route('POST', '/certificates', 'CreateCertificateFromCsr', async ({ query, body }) => {
      const c = await registry.createCertificateFromCsr(
        body.certificateSigningRequest as string,
        flag(query, 'setAsActive'),
      );
      return {
        certificateArn: c.certificateArn,
        certificateId: c.certificateId,
        certificatePem: c.certificatePem,
      };
    }),
    route('POST', '/keys-and-certificate', 'CreateKeysAndCertificate', async ({ query }) => {
      const { record: c, keyPair } = await registry.createKeysAndCertificate(flag(query, 'setAsActive'));
      return {
        certificateArn: c.certificateArn,
        certificateId: c.certificateId,
        certificatePem: c.certificatePem,
        keyPair,
      };
    }),
    route('GET', '/certificates/{certificateId}', 'DescribeCertificate', ({ params }) => ({
      certificateDescription: description(registry.certificate(params.certificateId as string)),
    })),
    route('PUT', '/certificates/{certificateId}', 'UpdateCertificate', ({ params, query }) => {
      registry.updateCertificate(params.certificateId as string, query.get('newStatus') ?? undefined);
    }),
    route('DELETE', '/certificates/{certificateId}', 'DeleteCertificate', ({ params, query }) => {
      registry.deleteCertificate(params.certificateId as string, flag(query, 'forceDelete'));
    }),
    route('GET', '/certificates', 'ListCertificates', ({ query }) => {
      const all = [...registry.certificates.values()].sort(
        (a, b) => a.creationDate.getTime() - b.creationDate.getTime(),
      );
      const ordered = flag(query, 'isAscendingOrder') ? all : all.reverse();
      const { page, next } = paginate(ordered, query.get('marker'), query.get('pageSize'), 25, 250);
      return {
        certificates: page.map((c) => ({
          certificateArn: c.certificateArn,
          certificateId: c.certificateId,
          status: c.status,
          certificateMode: 'DEFAULT',
          creationDate: seconds(c.creationDate),
        })),
        ...(next ? { nextMarker: next } : {}),
      };
    }),
    route('POST', '/things/{thingName}', 'CreateThing', ({ params, body }) => {
      const payload = body.attributePayload as { attributes?: Record<string, string> } | undefined;
      const t = registry.createThing(params.thingName as string, payload?.attributes);
      return { thingName: t.thingName, thingArn: t.thingArn, thingId: t.thingId };
    }),
    route('GET', '/things/{thingName}', 'DescribeThing', ({ params }) => {
      const t = registry.thing(params.thingName as string);
      return { defaultClientId: t.thingName, ...t };
    }),
    route('DELETE', '/things/{thingName}', 'DeleteThing', ({ params, query }) => {
      const version = query.get('expectedVersion');
      registry.deleteThing(params.thingName as string, version === null ? undefined : Number(version));
    }),
    route('GET', '/things', 'ListThings', ({ query }) => {
      const name = query.get('attributeName');
      const value = query.get('attributeValue');
      const matching = [...registry.things.values()].filter(
        (t) => !name || (value === null ? name in t.attributes : t.attributes[name] === value),
      );
      const { page, next } = paginate(matching, query.get('nextToken'), query.get('maxResults'), 50, 250);
      return {
        things: page.map((t) => ({
          thingName: t.thingName,
          thingArn: t.thingArn,
          attributes: t.attributes,
          version: t.version,
        })),
        ...(next ? { nextToken: next } : {}),
      };
    }),
    route('PUT', '/things/{thingName}/principals', 'AttachThingPrincipal', ({ params, principal }) => {
      registry.attachThingPrincipal(params.thingName as string, principal);
    }),
    route('DELETE', '/things/{thingName}/principals', 'DetachThingPrincipal', ({ params, principal }) => {
      registry.detachThingPrincipal(
        params.thingName as string,
        principal,
        behaviour.propagationMs('DetachThingPrincipal'),
      );
    }),
    route('GET', '/things/{thingName}/principals', 'ListThingPrincipals', ({ params, query }) => {
      const { page, next } = paginate(
        registry.principalsOf(params.thingName as string),
        query.get('nextToken'),
        query.get('maxResults'),
        25,
        250,
      );
      return { principals: page, ...(next ? { nextToken: next } : {}) };
    }),
    route('GET', '/principals/things', 'ListPrincipalThings', ({ principal, query }) => {
      if (!principal) throw new IotError('InvalidRequestException', 'principal is required');
      const { page, next } = paginate(
        registry.thingsOf(principal),
        query.get('nextToken'),
        query.get('maxResults'),
        25,
        250,
      );
      return { things: page, ...(next ? { nextToken: next } : {}) };
    }),
    route('POST', '/policies/{policyName}', 'CreatePolicy', ({ params, body }) => {
      const p = registry.createPolicy(params.policyName as string, body.policyDocument as string | undefined);
      return {
        policyName: p.policyName,
        policyArn: p.policyArn,
        policyDocument: p.policyDocument,
        policyVersionId: '1',
      };
    }),
    route('GET', '/policies/{policyName}', 'GetPolicy', ({ params }) => {
      const p = registry.policy(params.policyName as string);
      return {
        policyName: p.policyName,
        policyArn: p.policyArn,
        policyDocument: p.policyDocument,
        defaultVersionId: '1',
        creationDate: seconds(p.creationDate),
        lastModifiedDate: seconds(p.creationDate),
        generationId: p.generationId,
      };
    }),
    route('PUT', '/target-policies/{policyName}', 'AttachPolicy', ({ params, body }) => {
      registry.attachPolicy(params.policyName as string, body.target as string | undefined);
    }),
    route('POST', '/target-policies/{policyName}', 'DetachPolicy', ({ params, body }) => {
      registry.detachPolicy(
        params.policyName as string,
        body.target as string | undefined,
        behaviour.propagationMs('DetachPolicy'),
      );
    }),
    route('POST', '/attached-policies/{target}', 'ListAttachedPolicies', ({ params, query }) => {
      const policies = registry.policiesOf(params.target as string);
      const { page, next } = paginate(policies, query.get('marker'), query.get('pageSize'), 25, 250);
      return {
        policies: page.map((p) => ({ policyName: p.policyName, policyArn: p.policyArn })),
        ...(next ? { nextMarker: next } : {}),
      };
    }),
    route('POST', '/role-aliases/{roleAlias}', 'CreateRoleAlias', ({ params, body }) => {
      const duration = body.credentialDurationSeconds as number | undefined;
      const r = registry.createRoleAlias(
        params.roleAlias as string,
        body.roleArn as string | undefined,
        duration,
      );
      return { roleAlias: r.roleAlias, roleAliasArn: r.roleAliasArn };
    }),
    route('GET', '/role-aliases/{roleAlias}', 'DescribeRoleAlias', ({ params }) => {
      const r = registry.roleAlias(params.roleAlias as string);
      return {
        roleAliasDescription: {
          ...r,
          creationDate: seconds(r.creationDate),
          lastModifiedDate: seconds(r.lastModifiedDate),
        },
      };
    }),
    route('GET', '/endpoint', 'DescribeEndpoint', ({ query }) => ({
      endpointAddress: registry.endpoint(query.get('endpointType') ?? undefined),
    })),
    route('GET', '/policies', 'ListPolicies', ({ query }) => {
      // isAscendingOrder: ascending creation order (AWS's default is descending).
      const all = [...registry.policies.values()].sort(
        (a, b) => a.creationDate.getTime() - b.creationDate.getTime(),
      );
      const ordered = flag(query, 'isAscendingOrder') ? all : all.reverse();
      const { page, next } = paginate(ordered, query.get('marker'), query.get('pageSize'), 25, 250);
      return {
        policies: page.map((p) => ({ policyName: p.policyName, policyArn: p.policyArn })),
        ...(next ? { nextMarker: next } : {}),
      };
    }),
    route('GET', '/role-aliases', 'ListRoleAliases', ({ query }) => {
      // isAscendingOrder: ascending alphabetical order.
      const all = [...registry.roleAliases.keys()].sort();
      const ordered = flag(query, 'isAscendingOrder') ? all : all.reverse();
      const { page, next } = paginate(ordered, query.get('marker'), query.get('pageSize'), 25, 250);
      return { roleAliases: page, ...(next ? { nextMarker: next } : {}) };
    }),
    route('POST', '/policy-targets/{policyName}', 'ListTargetsForPolicy', ({ params, query }) => {
      const policy = registry.policy(params.policyName as string);
      const targets = [...(registry.policyTargets.get(policy.policyName) ?? [])];
      const { page, next } = paginate(targets, query.get('marker'), query.get('pageSize'), 25, 250);
      return { targets: page, ...(next ? { nextMarker: next } : {}) };
    }),
  ];
}

/** Opaque cursor over a list: the offset, base64url-encoded. */
function paginate<T>(items: T[], token: string | null, size: string | null, fallback: number, max: number) {
  const limit = size === null ? fallback : Number(size);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new IotError('InvalidRequestException', `page size must be between 1 and ${max}`);
  }
  const offset = token === null ? 0 : Number(Buffer.from(token, 'base64url').toString('utf8'));
  if (!Number.isInteger(offset) || offset < 0)
    throw new IotError('InvalidRequestException', 'invalid pagination token');
  const end = offset + limit;
  return {
    page: items.slice(offset, end),
    next: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
}

export interface RunningIot {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the emulator on host:port (port 0 picks a free one). `/_sandbox/behaviour` reads or sets
 * behaviour; `GET /_sandbox/calls[?since=<epoch ms>]` reads the calls answered per operation and
 * outcome, the registry's lifetime counts, and with `since` the calls that arrived from then on.
 */
export async function startIotEmulator(
  registry: IotRegistry,
  behaviour: Behaviour,
  host: string,
  port: number,
): Promise<RunningIot> {
  const routes = iotRoutes(registry, behaviour);
  const sandbox = { registry, behaviour, calls: new CallLog() };
  const server = createServer((request, response) => {
    handle(request, response, routes, sandbox).catch((error: unknown) => {
      reply(response, 500, { message: 'emulator error' }, 'InternalFailureException');
      process.stderr.write(`iot emulator: ${(error as Error).stack ?? String(error)}\n`);
    });
  });
  const bound = await listen(server, host, port);
  return { server, url: `http://${host}:${bound.port}`, close: bound.close };
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  routes: Route[],
  { registry, behaviour, calls }: { registry: IotRegistry; behaviour: Behaviour; calls: CallLog },
) {
  const startedAt = Date.now();
  const url = new URL(request.url ?? '/', 'http://localhost');
  const raw = await readBody(request);
  if (url.pathname === '/_sandbox/behaviour') {
    if (request.method === 'PUT') behaviour.set(JSON.parse(raw || '{}') as BehaviourConfig);
    return reply(response, 200, behaviour.get());
  }
  if (url.pathname === '/_sandbox/calls' && request.method === 'GET') {
    const since = url.searchParams.get('since');
    return reply(response, 200, {
      ...calls.snapshot(since === null ? undefined : Number(since)),
      registry: registry.lifetime,
    });
  }
  const route = routes.find((r) => r.method === request.method && r.pattern.test(url.pathname));
  if (!route)
    return reply(
      response,
      404,
      { message: `No route for ${request.method} ${url.pathname}` },
      'UnknownOperationException',
    );
  try {
    const params = Object.fromEntries(
      Object.entries(route.pattern.exec(url.pathname)?.groups ?? {}).map(([k, v]) => [
        k,
        decodeURIComponent(v),
      ]),
    );
    let body: Record<string, unknown> = {};
    if (raw) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new IotError('InvalidRequestException', 'The request body is not valid JSON');
      }
    }
    const principal = request.headers['x-amzn-principal'];
    const lostAnswer = await behaviour.before(route.name);
    const result = await route.run({
      params,
      query: url.searchParams,
      principal: typeof principal === 'string' ? principal : undefined,
      body,
    });
    await behaviour.answerAt(route.name, startedAt);
    if (lostAnswer) await lostAnswer();
    reply(response, 200, result ?? {});
    calls.record({ operation: route.name, startedAt, outcome: 'ok' });
  } catch (error) {
    if (!(error instanceof IotError)) throw error;
    reply(response, error.status, { message: error.message }, error.type);
    calls.record({ operation: route.name, startedAt, outcome: error.type });
  }
}

function reply(response: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amzn-requestid': crypto.randomUUID(),
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  response.writeHead(status, headers).end(JSON.stringify(body));
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
