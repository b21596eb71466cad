/** Small schema builders shared by route schemas (JSON Schema via TypeBox, OpenAPI 3.1). */
import { Type, type TSchema } from 'typebox';

/** A string that may also be null: `{type: ['string', 'null']}` (fast to validate and serialize). */
export const NullableString = (
  options: { maxLength?: number; minLength?: number; format?: string; description?: string } = {},
) => Type.Unsafe<string | null>({ type: ['string', 'null'], ...options });

export const NullableInteger = (options: { description?: string } = {}) =>
  Type.Unsafe<number | null>({ type: ['integer', 'null'], ...options });

export const NullableDateTime = (options: { description?: string } = {}) =>
  Type.Unsafe<Date | string | null>({ type: ['string', 'null'], format: 'date-time', ...options });

export const DateTime = (options: { description?: string } = {}) =>
  Type.Unsafe<string>({ type: 'string', format: 'date-time', ...options });

/** A JSON object with any content. */
export const JsonObject = (options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, ...options });

export const NullableJsonObject = (options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, unknown> | null>({
    type: ['object', 'null'],
    additionalProperties: true,
    ...options,
  });

export const StringEnum = <T extends string>(
  values: readonly T[],
  options: { description?: string; default?: T } = {},
) => Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });

export const ErrorSchema = Type.Object(
  {
    detail: Type.String({ description: 'What went wrong, for people' }),
    code: Type.String({ description: 'Stable machine-readable code' }),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), {
        description: 'Every invalid field, for validation failures',
      }),
    ),
  },
  { title: 'Error', additionalProperties: true },
);

/** Standard error responses, keyed by status code, for route schemas. */
export function errorResponses(...codes: number[]): Record<number, TSchema> {
  return Object.fromEntries(codes.map((code) => [code, ErrorSchema]));
}
