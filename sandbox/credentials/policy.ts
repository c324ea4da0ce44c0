/**
 * AWS IoT policy evaluation, as much as the credentials provider needs: Allow/Deny statements,
 * Action and Resource strings or lists with `*` and `?` wildcards, and policy variables such as
 * ${iot:Connection.Thing.ThingName}. An explicit Deny wins. Statements with a Condition are not
 * evaluated: an Allow with one grants nothing and a Deny with one denies, so the sandbox never
 * grants more than AWS would.
 */
interface Statement {
  Effect?: string;
  Action?: string | string[];
  Resource?: string | string[];
  Condition?: unknown;
}

export function isAllowed(
  documents: string[],
  action: string,
  resource: string,
  variables: Record<string, string> = {},
): boolean {
  let allowed = false;
  for (const document of documents) {
    for (const statement of statementsOf(document)) {
      if (!matchesAny(statement.Action, action, true)) continue;
      if (!matchesAny(substitute(statement.Resource, variables), resource, false)) continue;
      if (statement.Effect === 'Deny') return false;
      if (statement.Effect === 'Allow' && statement.Condition === undefined) allowed = true;
    }
  }
  return allowed;
}

function statementsOf(document: string): Statement[] {
  try {
    const parsed = JSON.parse(document) as { Statement?: Statement | Statement[] };
    const statement = parsed.Statement;
    return Array.isArray(statement) ? statement : statement ? [statement] : [];
  } catch {
    return [];
  }
}

function substitute(patterns: string | string[] | undefined, variables: Record<string, string>): string[] {
  const list = patterns === undefined ? [] : Array.isArray(patterns) ? patterns : [patterns];
  // A pattern whose variable is not available matches nothing, as in AWS IoT.
  return list.flatMap((pattern) => {
    let missing = false;
    const value = pattern.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      const found = variables[name];
      if (found === undefined) missing = true;
      return found ?? '';
    });
    return missing ? [] : [value];
  });
}

function matchesAny(
  patterns: string | string[] | undefined,
  value: string,
  caseInsensitive: boolean,
): boolean {
  const list = patterns === undefined ? [] : Array.isArray(patterns) ? patterns : [patterns];
  return list.some((pattern) => wildcard(pattern, caseInsensitive).test(value));
}

function wildcard(pattern: string, caseInsensitive: boolean): RegExp {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, caseInsensitive ? 'i' : '');
}
