/** The parts of `serverless print` the front door reads: HTTP API routes, limits, stage throttling. */
export interface PrintedService {
  functions: Record<
    string,
    {
      name: string;
      reservedConcurrency?: number;
      events?: { httpApi?: { method: string; path: string; authorizer?: { type?: string } } }[];
    }
  >;
  resources?: {
    extensions?: {
      HttpApiStage?: {
        Properties?: {
          DefaultRouteSettings?: RouteSettings;
          /** By route key ("POST /register"). */
          RouteSettings?: Record<string, RouteSettings>;
        };
      };
    };
  };
}

/** AWS::ApiGatewayV2::Stage RouteSettings, the throttling part. */
interface RouteSettings {
  ThrottlingRateLimit?: number;
  ThrottlingBurstLimit?: number;
}

/** A token bucket's figures: requests per second, and bucket size. */
export interface Throttle {
  rateLimit: number;
  burstLimit: number;
}

export interface ApiRoute {
  /** "POST /register", as HTTP API names routes. */
  routeKey: string;
  method: string;
  path: string;
  /** The function's deployed name, which the Lambda Invoke API takes. */
  functionName: string;
  /** `authorizer: { type: aws_iam }`: the request must be signed with SigV4. */
  iam: boolean;
  reservedConcurrency: number | undefined;
  match(path: string): Record<string, string> | undefined;
}

export interface ApiConfig {
  routes: ApiRoute[];
  /** The stage's default route throttling (DefaultRouteSettings), for every route without its own. */
  throttle: Throttle | undefined;
  /** Route-level throttling (RouteSettings) by route key: it overrides the default for that route. */
  routeThrottles: Record<string, Throttle>;
}

/** What the deployed HTTP API would be, from serverless.yml as `serverless print` resolves it. */
export function apiConfigOf(service: PrintedService): ApiConfig {
  const routes = Object.values(service.functions).flatMap((fn) =>
    (fn.events ?? []).flatMap(({ httpApi }) =>
      httpApi
        ? [
            route(
              httpApi.method.toUpperCase(),
              httpApi.path,
              fn.name,
              httpApi.authorizer?.type?.toLowerCase() === 'aws_iam',
              fn.reservedConcurrency,
            ),
          ]
        : [],
    ),
  );
  const stage = service.resources?.extensions?.HttpApiStage?.Properties;
  const throttle = throttleOf(stage?.DefaultRouteSettings);
  return {
    // HTTP API prefers the most specific route: fewer path variables first, greedy ones last.
    routes: routes.sort((a, b) => specificity(a.path) - specificity(b.path)),
    throttle,
    routeThrottles: routeThrottlesOf(stage?.RouteSettings ?? {}, routes, throttle),
  };
}

/** The routes whose RouteSettings entry sets a throttling limit, with their own bucket's figures. */
function routeThrottlesOf(
  settingsByRouteKey: Record<string, RouteSettings>,
  routes: ApiRoute[],
  stageDefault: Throttle | undefined,
): Record<string, Throttle> {
  const throttles: Record<string, Throttle> = {};
  for (const [routeKey, settings] of Object.entries(settingsByRouteKey)) {
    // AWS refuses such a stage too: "Unable to find Route by key … within the provided RouteSettings".
    if (!routes.some((candidate) => candidate.routeKey === routeKey))
      throw new Error(`the stage's RouteSettings name "${routeKey}", which is no route of this API`);
    if (settings.ThrottlingRateLimit === undefined && settings.ThrottlingBurstLimit === undefined) continue;
    const own = throttleOf(settings, stageDefault);
    if (own) throttles[routeKey] = own;
  }
  return throttles;
}

/**
 * A bucket from route settings. AWS does not say whether a limit a route's entry leaves out falls
 * back to the stage default; here it does (serverless.yml sets both for its routes).
 */
function throttleOf(settings: RouteSettings | undefined, fallback?: Throttle): Throttle | undefined {
  const rateLimit = settings?.ThrottlingRateLimit ?? fallback?.rateLimit;
  const burstLimit = settings?.ThrottlingBurstLimit ?? fallback?.burstLimit;
  return rateLimit === undefined || burstLimit === undefined
    ? undefined
    : { rateLimit: Number(rateLimit), burstLimit: Number(burstLimit) };
}

/** The route HTTP API would pick for a request, with its path parameters. */
export function findRoute(
  config: ApiConfig,
  method: string,
  path: string,
): { route: ApiRoute; pathParameters: Record<string, string> } | undefined {
  for (const route of config.routes) {
    if (route.method !== 'ANY' && route.method !== method) continue;
    const pathParameters = route.match(path);
    if (pathParameters) return { route, pathParameters };
  }
  return undefined;
}

function route(
  method: string,
  path: string,
  functionName: string,
  iam: boolean,
  reservedConcurrency: number | undefined,
): ApiRoute {
  // "/devices/{serialNumber}" -> one segment; "{proxy+}" -> the rest of the path.
  const pattern = new RegExp(
    `^${path
      .split('/')
      .map((segment) => {
        const variable = /^\{(\w+)(\+?)\}$/.exec(segment);
        if (!variable) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        return variable[2] ? `(?<${variable[1]}>.+)` : `(?<${variable[1]}>[^/]+)`;
      })
      .join('/')}$`,
  );
  return {
    routeKey: `${method} ${path}`,
    method,
    path,
    functionName,
    iam,
    reservedConcurrency: reservedConcurrency === undefined ? undefined : Number(reservedConcurrency),
    match(requestPath) {
      const found = pattern.exec(requestPath);
      if (!found) return undefined;
      return Object.fromEntries(
        Object.entries(found.groups ?? {}).map(([name, value]) => [name, safeDecode(value)]),
      );
    },
  };
}

function specificity(path: string): number {
  return (path.match(/\{\w+\}/g)?.length ?? 0) + (path.includes('+}') ? 100 : 0);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
