import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * Checks the security model in the template `serverless package` produced (npm test packages
 * first), not in prose: the chain, least privilege, throttling, and data protection. What depends on
 * other deploy-time parameters is checked in serverless.yml resolved with them (`serverless print`).
 */
const TEMPLATE = '.serverless/cloudformation-template-update-stack.json';

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
  DeletionPolicy?: string;
  DependsOn?: string | string[];
}
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: { Service?: string };
  Condition?: unknown;
}
interface Template {
  Resources: Record<string, Resource>;
  Conditions?: Record<string, unknown>;
}

let template: Template;
let resources: Record<string, Resource>;

beforeAll(() => {
  if (!existsSync(TEMPLATE)) throw new Error(`${TEMPLATE} is missing: run "npm run package" first`);
  template = JSON.parse(readFileSync(TEMPLATE, 'utf8')) as Template;
  resources = template.Resources;
});

/** serverless.yml resolved with these deploy-time parameters (and the defaults for the others). */
function resolvedWith(params: Record<string, string>): Template & {
  functions: Record<string, { environment?: Record<string, string> }>;
  /** Every deploy-time parameter's value. */
  params: Record<string, unknown>;
} {
  const output = execFileSync(
    'node_modules/.bin/serverless',
    [
      'print',
      '--format',
      'json',
      ...Object.entries(params).map(([name, value]) => `--param=${name}=${value}`),
    ],
    { encoding: 'utf8', env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' } },
  );
  const config = JSON.parse(output) as {
    functions: Record<string, { environment?: Record<string, string> }>;
    resources: Template;
    params: { default: Record<string, unknown> };
  };
  return { ...config.resources, functions: config.functions, params: config.params.default };
}

/** Renders intrinsic functions to readable strings: Fn::Join joined, Ref and GetAtt as <Name>. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(render).join(',');
  const object = value as Record<string, unknown>;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(separator);
  }
  if ('Fn::GetAtt' in object) return `<${(object['Fn::GetAtt'] as string[]).join('.')}>`;
  if ('Ref' in object) return `<${object.Ref as string}>`;
  if ('Fn::Sub' in object) return object['Fn::Sub'] as string;
  return JSON.stringify(value);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A policy's Statement entry: a statement, or `Fn::If [condition, statement, AWS::NoValue]`. */
type StatementEntry = Statement | { 'Fn::If': [string, unknown, unknown] };

function entriesOf(role: Resource | undefined): StatementEntry[] {
  const policies = role?.Properties.Policies as { PolicyDocument: { Statement: StatementEntry[] } }[];
  return policies.flatMap((policy) => policy.PolicyDocument.Statement);
}

function isNoValue(value: unknown): boolean {
  return (value as { Ref?: string } | undefined)?.Ref === 'AWS::NoValue';
}

/** Evaluates a CloudFormation condition whose parameters serverless has already resolved to literals. */
function holds(condition: unknown, conditions: Record<string, unknown>): boolean {
  const object = condition as Record<string, unknown[]> & { Condition?: string };
  if (object.Condition) return holds(conditions[object.Condition], conditions);
  if ('Fn::Equals' in object) {
    const [left, right] = object['Fn::Equals'];
    return JSON.stringify(left) === JSON.stringify(right);
  }
  if ('Fn::Not' in object) return !holds(object['Fn::Not'][0], conditions);
  if ('Fn::Or' in object) return object['Fn::Or'].some((item) => holds(item, conditions));
  if ('Fn::And' in object) return object['Fn::And'].every((item) => holds(item, conditions));
  throw new Error(`cannot evaluate the condition ${JSON.stringify(condition)}`);
}

/** The statements a role grants once CloudFormation has evaluated the template's conditions. */
function statementsOf(roleId: string, from: Template = template): Statement[] {
  const conditions = from.Conditions ?? {};
  return entriesOf(from.Resources[roleId]).flatMap((entry) => {
    if (!('Fn::If' in entry)) return [entry];
    const [name, whenTrue, whenFalse] = entry['Fn::If'];
    const chosen = holds({ Condition: name }, conditions) ? whenTrue : whenFalse;
    return isNoValue(chosen) ? [] : [chosen as Statement];
  });
}

/** Every statement a role could grant, whichever way its conditions go. */
function everyStatementOf(role: Resource): Statement[] {
  return entriesOf(role).flatMap((entry) =>
    'Fn::If' in entry
      ? entry['Fn::If']
          .slice(1)
          .filter((branch) => !isNoValue(branch))
          .map((branch) => branch as Statement)
      : [entry],
  );
}

function actions(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

function resource(id: string): Resource {
  const found = resources[id];
  if (!found) throw new Error(`the template declares no ${id}`);
  return found;
}

/** An AWS IoT ARN as the template writes it: `Fn::Sub` of the partition, region and account. */
function iotArn(resourcePart: string): string {
  return `arn:$${'{'}AWS::Partition}:iot:$${'{'}AWS::Region}:$${'{'}AWS::AccountId}:${resourcePart}`;
}

/** IAM policy variables, written so that neither JavaScript nor a linter reads them as templates. */
const thingNameVariable = `$${'{'}credentials-iot:ThingName}`;
const connectionThingVariable = `$${'{'}iot:Connection.Thing.ThingName}`;

const roles = () => Object.entries(resources).filter(([, resource]) => resource.Type === 'AWS::IAM::Role');

/**
 * The IoT actions this stack grants that the Service Authorization Reference for AWS IoT lists with no
 * resource type: IAM evaluates them against "*" only.
 */
const UNSCOPABLE_IOT_ACTIONS = [
  'iot:AttachThingPrincipal',
  'iot:CreateCertificateFromCsr',
  'iot:DescribeEndpoint',
  'iot:DetachThingPrincipal',
  'iot:ListCertificates',
  'iot:ListPrincipalThings',
];

describe('the packaged template', () => {
  it('declares the whole credentials chain: policy -> role alias -> role trusted by the credentials provider', () => {
    const policy = resource('DevicePolicy').Properties.PolicyDocument as { Statement: Statement[] };
    const assume = policy.Statement.find((statement) => statement.Action === 'iot:AssumeRoleWithCertificate');
    expect(render(assume?.Resource)).toBe('<RoleAlias.RoleAliasArn>');
    expect(render(resource('RoleAlias').Properties.RoleArn)).toBe('<DeviceRole.Arn>');
    const trust = (resource('DeviceRole').Properties.AssumeRolePolicyDocument as { Statement: Statement[] })
      .Statement;
    expect(trust).toMatchObject([
      { Effect: 'Allow', Principal: { Service: 'credentials.iot.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
  });

  it("lets the credentials provider assume the device role only for this account's role alias", () => {
    const [trust, ...others] = (
      resource('DeviceRole').Properties.AssumeRolePolicyDocument as { Statement: Statement[] }
    ).Statement;
    const condition = (trust?.Condition ?? {}) as Record<string, Record<string, unknown>>;

    expect(others).toEqual([]);
    expect(render(condition.StringEquals?.['aws:SourceAccount'])).toBe('<AWS::AccountId>');
    // Written out, not Fn::GetAtt RoleAlias.RoleAliasArn: the role alias already depends on this role.
    expect(render(condition.ArnEquals?.['aws:SourceArn'])).toBe(
      iotArn(`rolealias/${String(resource('RoleAlias').Properties.RoleAlias)}`),
    );
  });

  it('keeps the role alias credential duration within what AWS allows (900-43200 s)', () => {
    const duration = Number(resource('RoleAlias').Properties.CredentialDurationSeconds);

    expect(duration).toBeGreaterThanOrEqual(900);
    expect(duration).toBeLessThanOrEqual(43200);
  });

  it('lets a device connect only as its own thing', () => {
    const policy = resource('DevicePolicy').Properties.PolicyDocument as { Statement: Statement[] };
    const connect = policy.Statement.find((statement) => statement.Action === 'iot:Connect');

    expect(render(connect?.Resource)).toMatch(
      new RegExp(`:client/${escapeRegExp(connectionThingVariable)}$`),
    );
  });

  it("scopes the device role to the caller's own thing with the credentials-iot:ThingName variable", () => {
    const statements = statementsOf('DeviceRole');
    const s3 = statements.find((statement) => statement.Sid === 'OwnS3Prefix');
    const table = statements.find((statement) => statement.Sid === 'OwnDynamoDbPartition');

    expect(render(s3?.Resource)).toBe(`<DeviceDataBucket.Arn>/things/${thingNameVariable}/*`);
    const condition = (table?.Condition ?? {}) as Record<string, Record<string, unknown>>;
    expect(render(condition['ForAllValues:StringEquals']?.['dynamodb:LeadingKeys'])).toBe(thingNameVariable);
    expect(statements.every((statement) => render(statement.Resource) !== '*')).toBe(true);
  });

  it("keeps every role's whole grant in its inline statements: no managed policies, NotAction or NotResource", () => {
    const policyTypes = ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::RolePolicy'];

    expect(Object.values(resources).filter((r) => policyTypes.includes(r.Type))).toEqual([]);
    for (const [, role] of roles()) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      for (const statement of everyStatementOf(role)) {
        expect(Object.keys(statement)).not.toContain('NotAction');
        expect(Object.keys(statement)).not.toContain('NotResource');
      }
    }
  });

  it('grants no wildcard actions in any role', () => {
    for (const [, role] of roles())
      for (const statement of everyStatementOf(role))
        expect(actions(statement).filter((action) => action.includes('*'))).toEqual([]);
  });

  it('uses Resource "*" only for the IoT actions that support no resource-level permissions', () => {
    const unscoped = statementsOf('RegisterRole')
      .filter((statement) => render(statement.Resource) === '*')
      .flatMap(actions);

    expect(unscoped.sort()).toEqual([
      'iot:AttachThingPrincipal',
      'iot:CreateCertificateFromCsr',
      'iot:DescribeEndpoint',
      'iot:DetachThingPrincipal',
    ]);
  });

  it('does not let register have AWS IoT generate keys (server-side keys are made in the function)', () => {
    const granted = everyStatementOf(resource('RegisterRole')).flatMap(actions);

    expect(granted).toContain('iot:CreateCertificateFromCsr');
    expect(granted).not.toContain('iot:CreateKeysAndCertificate');
  });

  it('grants the IoT actions without resource-level permissions on "*", where an ARN would never match', () => {
    for (const [, role] of roles())
      for (const statement of everyStatementOf(role))
        if (actions(statement).some((action) => UNSCOPABLE_IOT_ACTIONS.includes(action)))
          expect(render(statement.Resource)).toBe('*');
  });

  it('uses Resource "*" in no role for anything but the IoT actions without resource-level permissions', () => {
    for (const [, role] of roles())
      for (const statement of everyStatementOf(role))
        if (render(statement.Resource) === '*')
          expect(actions(statement).filter((action) => !UNSCOPABLE_IOT_ACTIONS.includes(action))).toEqual([]);
  });

  it('names certificates, the only resource IAM checks, for attaching and detaching IoT policies', () => {
    for (const [, role] of roles())
      for (const statement of everyStatementOf(role))
        if (actions(statement).some((action) => /^iot:(Attach|Detach)Policy$/.test(action)))
          expect(render(statement.Resource)).toBe(iotArn('cert/*'));
  });

  it('runs register under its own role, with reserved concurrency, on nodejs24.x', () => {
    const register = resource('RegisterLambdaFunction').Properties;

    expect(render(register.Role)).toBe('<RegisterRole.Arn>');
    expect(register.ReservedConcurrentExecutions).toBeGreaterThan(0);
    expect(register.Runtime).toBe('nodejs24.x');
    expect((register.Environment as { Variables: Record<string, string> }).Variables.MAX_BODY_BYTES).toMatch(
      /^\d+$/,
    );
  });

  it('runs the reconciler on a schedule, alone, under its own role', () => {
    const reconcile = resource('ReconcileLambdaFunction').Properties;

    expect(render(reconcile.Role)).toBe('<ReconcileRole.Arn>');
    expect(reconcile.ReservedConcurrentExecutions).toBe(1);
    expect(resource('ReconcileEventsRuleSchedule1').Properties.ScheduleExpression).toMatch(/^rate\(/);
  });

  it.each(['RegisterRole', 'ReconcileRole', 'DecommissionRole', 'AdminClaimsRole'])(
    "lets %s update the claims table's batch items, which its writes count in",
    (role) => {
      const onClaims = everyStatementOf(resource(role)).filter(
        (statement) =>
          actions(statement).includes('dynamodb:UpdateItem') &&
          render(statement.Resource).includes('<ClaimsTable.Arn>'),
      );

      expect(onClaims).not.toEqual([]);
    },
  );

  it('lets register make every AWS IoT call its saga makes (resumes and rollbacks included), and nothing more', () => {
    const granted: Record<string, string[]> = {};
    for (const statement of everyStatementOf(resource('RegisterRole')))
      for (const action of actions(statement).filter((name) => name.startsWith('iot:')))
        granted[action] = [...(granted[action] ?? []), ...render(statement.Resource).split(',')].sort();
    const certificates = [iotArn('cert/*')];
    const things = [iotArn('thing/*')];

    expect(granted).toEqual({
      'iot:CreateCertificateFromCsr': ['*'],
      'iot:DescribeEndpoint': ['*'],
      'iot:DescribeCertificate': certificates,
      'iot:UpdateCertificate': certificates,
      'iot:DeleteCertificate': certificates,
      'iot:CreateThing': things,
      'iot:DescribeThing': things,
      'iot:DeleteThing': things,
      'iot:AttachThingPrincipal': ['*'],
      'iot:DetachThingPrincipal': ['*'],
      'iot:AttachPolicy': certificates,
      'iot:DetachPolicy': certificates,
    });
  });

  it('lets the reconciler roll back stale registrations and sweep certificates, and nothing more', () => {
    const granted: Record<string, string[]> = {};
    for (const statement of everyStatementOf(resource('ReconcileRole')))
      for (const action of actions(statement))
        granted[action] = [...(granted[action] ?? []), ...render(statement.Resource).split(',')].sort();
    const devices = '<DevicesTable.Arn>';
    const index = (name: string) => `$${'{'}DevicesTable.Arn}/index/${name}`;
    const certificates = [iotArn('cert/*')];
    const things = [iotArn('thing/*')];

    expect(granted).toEqual({
      'logs:CreateLogStream': [expect.stringMatching(/:log-group:\/aws\/lambda\/[\w-]+-reconcile:\*$/)],
      'logs:PutLogEvents': [expect.stringMatching(/:log-group:\/aws\/lambda\/[\w-]+-reconcile:\*$/)],
      'dynamodb:Query': [index('byCertificate'), index('byRotation'), index('byStatus')],
      'dynamodb:GetItem': [devices],
      'dynamodb:UpdateItem': ['<ClaimsTable.Arn>', devices],
      'dynamodb:PutItem': ['<HistoryTable.Arn>'],
      'iot:ListCertificates': ['*'],
      'iot:ListPrincipalThings': ['*'],
      'iot:DescribeCertificate': certificates,
      'iot:UpdateCertificate': certificates,
      'iot:DeleteCertificate': certificates,
      'iot:DetachThingPrincipal': ['*'],
      'iot:DetachPolicy': certificates,
      'iot:DescribeThing': things,
      'iot:DeleteThing': things,
      'iot:ListThingPrincipals': things,
    });
  });

  it('passes the deploy-time AWS IoT endpoints to register, empty by default', () => {
    const variables = (resource('RegisterLambdaFunction').Properties.Environment as { Variables: object })
      .Variables;

    expect(variables).toMatchObject({ IOT_CREDENTIALS_ENDPOINT: '', IOT_DATA_ENDPOINT: '' });
  });

  it("gives register a timeout under HTTP API's 30 s integration limit", () => {
    expect(resource('RegisterLambdaFunction').Properties.Timeout).toBeLessThan(30);
  });

  it('puts AWS_IAM authorization on every admin route and none on the device routes', () => {
    const routes = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => [
        r.Properties.RouteKey as string,
        (r.Properties.AuthorizationType as string | undefined) ?? 'NONE',
      ]);

    expect(Object.fromEntries(routes)).toEqual({
      'POST /register': 'NONE',
      'GET /rotation': 'NONE',
      'POST /rotation': 'NONE',
      'POST /rotation/confirm': 'NONE',
      'POST /claims': 'AWS_IAM',
      'GET /claims': 'AWS_IAM',
      'POST /claims/revoke': 'AWS_IAM',
      'GET /devices/{serialNumber}': 'AWS_IAM',
      'GET /devices': 'AWS_IAM',
      'POST /devices/{serialNumber}/decommission': 'AWS_IAM',
      'GET /batches': 'AWS_IAM',
      'GET /batches/{batchId}': 'AWS_IAM',
      'POST /devices/{serialNumber}/rotate': 'AWS_IAM',
      'POST /batches/{batchId}/rotate': 'AWS_IAM',
      'POST /devices/{serialNumber}/reset': 'AWS_IAM',
      'GET /devices/{serialNumber}/history': 'AWS_IAM',
    });
  });

  it('lets the rotation routes issue and retire certificates and spend nonces, but never create or delete things', () => {
    const granted: Record<string, string[]> = {};
    for (const statement of everyStatementOf(resource('RotateRole')))
      for (const action of actions(statement))
        granted[action] = [...(granted[action] ?? []), ...render(statement.Resource).split(',')].sort();
    const certificates = [iotArn('cert/*')];
    const onClaims = statementsOf('RotateRole').filter((statement) =>
      render(statement.Resource).includes('ClaimsTable'),
    );

    expect(granted).toEqual({
      'logs:CreateLogStream': [expect.stringMatching(/:log-group:\/aws\/lambda\/[\w-]+-rotation\*:\*$/)],
      'logs:PutLogEvents': [expect.stringMatching(/:log-group:\/aws\/lambda\/[\w-]+-rotation\*:\*$/)],
      'dynamodb:GetItem': ['<ClaimsTable.Arn>', '<DevicesTable.Arn>'],
      'dynamodb:UpdateItem': ['<DevicesTable.Arn>'],
      'dynamodb:PutItem': ['<ClaimsTable.Arn>', '<HistoryTable.Arn>'],
      'iot:CreateCertificateFromCsr': ['*'],
      'iot:DescribeEndpoint': ['*'],
      'iot:DescribeCertificate': certificates,
      'iot:UpdateCertificate': certificates,
      'iot:DeleteCertificate': certificates,
      'iot:AttachPolicy': certificates,
      'iot:DetachPolicy': certificates,
      'iot:AttachThingPrincipal': ['*'],
      'iot:DetachThingPrincipal': ['*'],
    });
    expect(onClaims.map((statement) => statement.Condition)).toEqual([
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['batch#*', 'nonce#*'] } },
    ]);
  });

  it('lets the lifecycle admin role retire certificates but never issue one or touch things', () => {
    const granted = statementsOf('LifecycleAdminRole').flatMap(actions);

    expect(granted.filter((action) => action.startsWith('iot:')).sort()).toEqual([
      'iot:DeleteCertificate',
      'iot:DetachPolicy',
      'iot:DetachThingPrincipal',
      'iot:UpdateCertificate',
    ]);
  });

  it('throttles POST /rotation on its own, at a share of the AWS IoT quota register also uses', () => {
    const stage = resource('HttpApiStage').Properties as {
      RouteSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }>;
    };

    expect(stage.RouteSettings['POST /rotation']).toEqual({
      ThrottlingRateLimit: 5,
      ThrottlingBurstLimit: 5,
    });
  });

  it('lets the admin claims role write claims and reserve thing names, but not touch device records or AWS IoT', () => {
    const granted = statementsOf('AdminClaimsRole').flatMap(actions);
    const onDevices = statementsOf('AdminClaimsRole').filter((statement) =>
      render(statement.Resource).includes('DevicesTable'),
    );

    expect(granted.filter((action) => action.startsWith('iot:'))).toEqual([]);
    expect(onDevices.flatMap(actions)).toEqual(['dynamodb:UpdateItem']);
    expect(onDevices.map((statement) => statement.Condition)).toEqual([
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['thing#*'] } },
    ]);
  });

  it('throttles the HTTP API stage', () => {
    expect(resource('HttpApiStage').Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: expect.any(Number),
      ThrottlingBurstLimit: expect.any(Number),
    });
  });

  it('names only existing routes in the stage route settings, and creates those routes before the stage', () => {
    const routeIds = Object.fromEntries(
      Object.entries(resources)
        .filter(([, r]) => r.Type === 'AWS::ApiGatewayV2::Route')
        .map(([id, r]) => [r.Properties.RouteKey as string, id]),
    );
    const stage = resource('HttpApiStage');
    const dependsOn = [stage.DependsOn ?? []].flat();

    // A stage naming a route it cannot find yet fails: "Unable to find Route by key … within the
    // provided RouteSettings".
    for (const routeKey of Object.keys(stage.Properties.RouteSettings as object)) {
      expect(routeIds[routeKey]).toBeDefined();
      expect(dependsOn).toContain(routeIds[routeKey]);
    }
  });

  it('writes an HTTP API access log to a log group with a retention', () => {
    const stage = resource('HttpApiStage');
    const settings = stage.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };

    expect(render(settings.DestinationArn)).toBe('<HttpApiLogGroup.Arn>');
    expect(resource('HttpApiLogGroup').Properties.RetentionInDays).toBeGreaterThan(0);
  });

  it('logs who called which route and how it ended, as JSON, and nothing a request carries', () => {
    const { Format } = resource('HttpApiStage').Properties.AccessLogSettings as { Format: string };
    const fields = JSON.parse(Format) as Record<string, string>;

    expect(fields).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      routeKey: '$context.routeKey',
      status: '$context.status',
      responseLength: '$context.responseLength',
      integrationErrorMessage: '$context.integrationErrorMessage',
    });
    // The claim token travels in the body; headers and the query string are the client's too.
    for (const variable of Object.values(fields))
      expect(variable).not.toMatch(/header|body|querystring|path|userAgent|clientCert|input/i);
  });

  it.each(['ClaimsTable', 'DevicesTable', 'HistoryTable', 'DeviceDataTable'])(
    'makes %s on-demand, encrypted, point-in-time recoverable, deletion-protected and retained',
    (id) => {
      const table = resource(id);

      expect(table?.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
      });
      expect(table?.DeletionPolicy).toBe('Retain');
    },
  );

  it('expires claims with DynamoDB TTL and indexes devices by batch, status, certificate and rotation', () => {
    expect(resource('ClaimsTable').Properties.TimeToLiveSpecification).toEqual({
      AttributeName: 'purgeAt',
      Enabled: true,
    });
    const indexes = (
      resource('DevicesTable').Properties.GlobalSecondaryIndexes as { IndexName: string }[]
    ).map((i) => i.IndexName);
    expect(indexes).toEqual(['byBatch', 'byStatus', 'byCertificate', 'byRotation']);
  });
});

// Each `serverless print` takes a few seconds, more on a busy machine.
describe('serverless.yml resolved with other deploy-time parameters', { timeout: 60_000 }, () => {
  const credentialsEndpoint = 'abc123.credentials.iot.eu-west-1.amazonaws.com';
  const dataEndpoint = 'abc123-ats.iot.eu-west-1.amazonaws.com';

  it('lets register call iot:DescribeEndpoint only while an AWS IoT endpoint is left to look up', () => {
    const describes = (from: Template) =>
      statementsOf('RegisterRole', from).flatMap(actions).includes('iot:DescribeEndpoint');

    expect(describes(template)).toBe(true);
    expect(describes(resolvedWith({ iotCredentialsEndpoint: credentialsEndpoint }))).toBe(true);
    expect(
      describes(resolvedWith({ iotCredentialsEndpoint: credentialsEndpoint, iotDataEndpoint: dataEndpoint })),
    ).toBe(false);
  });

  it('lets register create, describe and delete only the things its thing name pattern allows', () => {
    const thingsGrantedBy = (from: Template) =>
      statementsOf('RegisterRole', from)
        .filter((statement) => actions(statement).some((action) => /^iot:(Create|Delete)Thing$/.test(action)))
        .map((statement) => [
          actions(statement).sort(),
          render(statement.Resource).replace(/^.*:thing\//, ''),
        ]);

    // No prefix configured: every thing, since a claim's prefix can be anything.
    const grant = ['iot:CreateThing', 'iot:DeleteThing', 'iot:DescribeThing'];
    expect(thingsGrantedBy(template)).toEqual([[grant, '*']]);
    expect(thingsGrantedBy(resolvedWith({ thingNamePrefix: 'SN-' }))).toEqual([[grant, 'SN-*']]);
    expect(thingsGrantedBy(resolvedWith({ thingNamePrefix: 'SN-', thingNamePattern: 'fleet-*' }))).toEqual([
      [grant, 'fleet-*'],
    ]);
  });

  it('gives register the AWS IoT endpoints configured at deploy time', () => {
    const { functions } = resolvedWith({
      iotCredentialsEndpoint: credentialsEndpoint,
      iotDataEndpoint: dataEndpoint,
    });

    expect(functions.register?.environment).toMatchObject({
      IOT_CREDENTIALS_ENDPOINT: credentialsEndpoint,
      IOT_DATA_ENDPOINT: dataEndpoint,
    });
  });
});

/**
 * Admission for POST /register (docs/reliability.md, "Admission"): serverless.yml's params cannot do
 * arithmetic, so the relations between the AWS IoT quota, the register route's throttling and its
 * reserved concurrency are checked here, and changing one of them without the others fails.
 */
describe('admission for POST /register, derived from the AWS IoT quota', { timeout: 60_000 }, () => {
  /** The longest registration the reserved concurrency is sized for, in seconds (docs/reliability.md). */
  const LONGEST_REGISTRATION_SECONDS = 10;
  /** Headroom for HTTP API's best-effort throttling: one more second of admissions. */
  const HEADROOM_SECONDS = 1;
  let params: Record<string, unknown>;
  let route: { rate: number; burst: number };
  let reserved: number;
  let timeout: number;

  beforeAll(() => {
    params = resolvedWith({}).params;
    const settings = (resource('HttpApiStage').Properties.RouteSettings ?? {}) as Record<
      string,
      { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }
    >;
    const register = settings['POST /register'];
    route = { rate: Number(register?.ThrottlingRateLimit), burst: Number(register?.ThrottlingBurstLimit) };
    const fn = resource('RegisterLambdaFunction').Properties;
    reserved = Number(fn.ReservedConcurrentExecutions);
    timeout = Number(fn.Timeout);
  }, 60_000);

  it("throttles POST /register with its own route settings from the params, and the other routes with the stage's", () => {
    const stage = resource('HttpApiStage').Properties;

    expect(stage.RouteSettings).toEqual({
      'POST /register': {
        ThrottlingRateLimit: params.registerRateLimit,
        ThrottlingBurstLimit: params.registerBurstLimit,
      },
      'POST /rotation': {
        ThrottlingRateLimit: params.rotationRateLimit,
        ThrottlingBurstLimit: params.rotationBurstLimit,
      },
      'GET /rotation': {
        ThrottlingRateLimit: params.rotationCheckRateLimit,
        ThrottlingBurstLimit: params.rotationCheckBurstLimit,
      },
    });
    expect(stage.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: params.apiRateLimit,
      ThrottlingBurstLimit: params.apiBurstLimit,
    });
    expect(reserved).toBe(params.registerReservedConcurrency);
  });

  it('lets registrations in at the slowest AWS IoT quota on their path: faster is throttled inside the saga, slower wastes the quota', () => {
    expect(route.rate).toBe(Number(params.iotRegistrationsPerSecond));
  });

  it('lets no more registrations in at once than AWS IoT takes at once (its bucket holds about a second of its rate)', () => {
    expect(route.burst).toBeGreaterThanOrEqual(1);
    expect(route.burst).toBeLessThanOrEqual(Number(params.iotRegistrationsPerSecond));
  });

  it('reserves register the concurrency for all the door lets in during the longest budgeted registration, with headroom', () => {
    const admitted = route.burst + route.rate * LONGEST_REGISTRATION_SECONDS;
    const headroom = route.rate * HEADROOM_SECONDS;

    expect(reserved).toBeGreaterThanOrEqual(admitted + headroom);
  });

  it('reserves no more concurrency than the door could fill before the function times out', () => {
    expect(reserved).toBeLessThanOrEqual(route.burst + route.rate * (timeout + HEADROOM_SECONDS));
  });
});
