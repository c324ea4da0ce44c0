import { readFileSync } from 'node:fs';
import { parse, type Tags } from 'yaml';

/** CloudFormation short-form tags (!Ref, !GetAtt, !Sub …) rendered as their long form. */
const INTRINSICS = [
  'Ref',
  'GetAtt',
  'Sub',
  'Join',
  'If',
  'Select',
  'Split',
  'Equals',
  'Not',
  'And',
  'Or',
  'FindInMap',
  'ImportValue',
  'Base64',
  'GetAZs',
  'Cidr',
];

const customTags: Tags = INTRINSICS.flatMap((name): Tags => {
  const key = name === 'Ref' ? 'Ref' : `Fn::${name}`;
  const long = (value: unknown) => ({ [key]: value });
  return [
    { tag: `!${name}`, resolve: (value: string) => long(name === 'GetAtt' ? value.split('.') : value) },
    { tag: `!${name}`, collection: 'seq', resolve: (node) => long(node.toJSON()) },
    { tag: `!${name}`, collection: 'map', resolve: (node) => long(node.toJSON()) },
  ];
});

export interface ServerlessDocument {
  resources?: { Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
}

/** Reads serverless.yml as data (variables are left unresolved; callers only read resource shapes). */
export function readServerlessYml(path: string): ServerlessDocument {
  return parse(readFileSync(path, 'utf8'), { customTags }) as ServerlessDocument;
}
