/** Enough of CloudFormation's intrinsic functions to instantiate serverless.yml's resources locally. */
export interface IntrinsicContext {
  partition: string;
  region: string;
  accountId: string;
  /** Fn::GetAtt [logicalId, attribute] */
  getAtt(logicalId: string, attribute: string): string;
  /** Ref logicalId (pseudo parameters are handled here) */
  ref(logicalId: string): string;
}

export function resolveIntrinsics(value: unknown, context: IntrinsicContext): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, context));
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 1) {
    const [key] = keys as [string];
    const argument = object[key];
    switch (key) {
      case 'Ref':
        return pseudo(argument as string, context) ?? context.ref(argument as string);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
        return context.getAtt(logicalId as string, attribute as string);
      }
      case 'Fn::Join': {
        const [separator, parts] = argument as [string, unknown[]];
        return parts.map((part) => String(resolveIntrinsics(part, context))).join(separator);
      }
      case 'Fn::Sub': {
        const template = Array.isArray(argument) ? (argument[0] as string) : (argument as string);
        return template.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
          const [logicalId, attribute] = name.split('.');
          return attribute
            ? context.getAtt(logicalId as string, attribute)
            : (pseudo(name, context) ?? context.ref(name));
        });
      }
    }
  }
  return Object.fromEntries(
    Object.entries(object).map(([key, item]) => [key, resolveIntrinsics(item, context)]),
  );
}

function pseudo(name: string, context: IntrinsicContext): string | undefined {
  if (name === 'AWS::Partition') return context.partition;
  if (name === 'AWS::Region') return context.region;
  if (name === 'AWS::AccountId') return context.accountId;
  return undefined;
}
