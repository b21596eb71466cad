/**
 * Request validation with Ajv: bodies strictly (no type coercion, unknown fields refused, every
 * error reported), query strings and path parameters with coercion of their text values. Ajv
 * errors become `{path, message}` pairs that name the field.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldProblem } from '../domain/errors.js';

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const common: Options = { allErrors: true, strict: false, useDefaults: true, removeAdditional: false };

function makeAjv(coerceTypes: Options['coerceTypes']): Ajv {
  const ajv = new Ajv({ ...common, coerceTypes });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'example' });
  return ajv;
}

const bodyAjv = makeAjv(false);
const textAjv = makeAjv('array');

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema);

/** Compiles a body schema for validating pieces of a request by hand (per-item batch checks). */
export function compileBodySchema(schema: object): ValidateFunction {
  return bodyAjv.compile(schema);
}

/** Compiles a query-string schema (text values coerced) for validating it by hand. */
export function compileQuerySchema(schema: object): ValidateFunction {
  return textAjv.compile(schema);
}

const PART_NAMES: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/** `/events/3/event_type` under `body` → `body.events[3].event_type`. */
export function toPath(prefix: string, instancePath: string): string {
  let path = prefix;
  for (const raw of instancePath.split('/').slice(1)) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(token) ? `[${token}]` : `.${token}`;
  }
  return path;
}

function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'type':
      return `must be ${String(params.type).replace(',', ' or ')}`;
    case 'format':
      return params.format === 'date-time'
        ? 'must be an RFC 3339 date-time, e.g. 2025-01-31T12:00:00Z'
        : `must be a valid ${String(params.format)}`;
    default:
      return error.message ?? 'is invalid';
  }
}

/** Turns Ajv errors into one problem per field, with readable messages. */
export function toFieldProblems(errors: ErrorObject[], part: string, prefix?: string): FieldProblem[] {
  const base = prefix ?? PART_NAMES[part] ?? part;
  const problems: FieldProblem[] = [];
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const alternatives = new Map<string, string[]>();
  for (const error of errors) {
    const params = error.params as Record<string, unknown>;
    if (error.keyword === 'required') {
      problems.push({
        path: toPath(base, `${error.instancePath}/${String(params.missingProperty)}`),
        message: 'is required',
      });
    } else if (error.keyword === 'additionalProperties') {
      problems.push({
        path: toPath(base, `${error.instancePath}/${String(params.additionalProperty)}`),
        message: 'is not an allowed field',
      });
    } else if (error.keyword === 'anyOf') {
      continue;
    } else if (anyOfPaths.has(error.instancePath) && /\/anyOf\/\d+\/[^/]+$/.test(error.schemaPath)) {
      const list = alternatives.get(error.instancePath) ?? [];
      list.push(describe(error));
      alternatives.set(error.instancePath, list);
    } else {
      problems.push({ path: toPath(base, error.instancePath), message: describe(error) });
    }
  }
  for (const [instancePath, messages] of alternatives) {
    problems.push({ path: toPath(base, instancePath), message: messages.join(', or ') });
  }
  return problems;
}
