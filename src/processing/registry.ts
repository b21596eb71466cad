/**
 * The processor registry: create, read, update, delete, toggle. Every create and update checks the
 * type, the filters and the type's config (a bad one is a 422 naming each field) before anything is
 * written; the SQL is in store/processing.ts.
 */
import { uuidv7 } from '../domain/ids.js';
import { NotFoundError, ValidationError, type FieldProblem } from '../domain/errors.js';
import type { Db } from '../store/db.js';
import {
  deleteProcessor,
  getProcessor,
  insertProcessor,
  listProcessors,
  toggleProcessor,
  updateProcessor,
  type ProcessorFields,
  type ProcessorRow,
} from '../store/processing.js';
import { filterProblems, type ProcessorFilters } from './filters.js';
import type { ProcessorTypeSet } from './types/index.js';

export interface ProcessorInput {
  processor_name: string;
  processor_type: string;
  enabled?: boolean;
  priority?: number;
  filters?: ProcessorFilters;
  config?: Record<string, unknown>;
}

export interface ProcessorRegistry {
  create(input: ProcessorInput): Promise<ProcessorRow>;
  list(): Promise<ProcessorRow[]>;
  get(id: string): Promise<ProcessorRow>;
  update(id: string, input: ProcessorInput): Promise<ProcessorRow>;
  remove(id: string): Promise<void>;
  /** Sets `enabled`, or flips it when undefined. */
  toggle(id: string, enabled: boolean | undefined): Promise<ProcessorRow>;
}

export interface RegistryDeps {
  db: Db;
  types: Pick<ProcessorTypeSet, 'get' | 'names'>;
  allowPrivateNetworks: boolean;
}

const notFound = (id: string) => new NotFoundError(`Processor not found: ${id}`);

export function createProcessorRegistry(deps: RegistryDeps): ProcessorRegistry {
  /** Every problem of the input, or the fields to store. */
  async function validated(input: ProcessorInput): Promise<ProcessorFields> {
    const problems: FieldProblem[] = [];
    const filters = input.filters ?? {};
    const config = input.config ?? {};
    if (input.processor_name.trim() === '') {
      problems.push({ path: 'body.processor_name', message: 'must not be blank' });
    }
    problems.push(...filterProblems(filters));
    const type = deps.types.get(input.processor_type);
    if (!type) {
      problems.push({
        path: 'body.processor_type',
        message: `must be one of: ${deps.types.names().join(', ')}`,
      });
    } else {
      let configProblems: FieldProblem[];
      try {
        configProblems = await type.validate(config, { allowPrivateNetworks: deps.allowPrivateNetworks });
      } catch (error) {
        configProblems = [{ path: '', message: `could not be checked: ${(error as Error).message}` }];
      }
      problems.push(
        ...configProblems.map((p) => ({
          path: p.path === '' ? 'body.config' : `body.config.${p.path}`,
          message: p.message,
        })),
      );
    }
    if (problems.length > 0) throw new ValidationError(problems);
    return {
      processor_name: input.processor_name,
      processor_type: input.processor_type,
      enabled: input.enabled ?? true,
      priority: input.priority ?? 0,
      filters: filters as Record<string, unknown>,
      config,
    };
  }

  return {
    async create(input) {
      return insertProcessor(deps.db, uuidv7(), await validated(input));
    },
    list: () => listProcessors(deps.db),
    async get(id) {
      const row = await getProcessor(deps.db, id);
      if (!row) throw notFound(id);
      return row;
    },
    async update(id, input) {
      // An unknown id is a 404 even when the body is also invalid.
      if (!(await getProcessor(deps.db, id))) throw notFound(id);
      const row = await updateProcessor(deps.db, id, await validated(input));
      if (!row) throw notFound(id);
      return row;
    },
    async remove(id) {
      if (!(await deleteProcessor(deps.db, id))) throw notFound(id);
    },
    async toggle(id, enabled) {
      const row = await toggleProcessor(deps.db, id, enabled ?? null);
      if (!row) throw notFound(id);
      return row;
    },
  };
}
