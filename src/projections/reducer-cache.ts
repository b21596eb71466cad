/**
 * Compiled reducers of declared projections, by definition id. A definition never changes (a new
 * one with the same name has a new id), so an entry never goes stale; the cache is only bounded.
 */
import { compileReducer, type HandlerSpec, type Reducer, type State } from './reducer-dsl.js';

export interface ReducerSource {
  definition_id: string;
  handlers: HandlerSpec[];
  initial_state: State;
}

export type ReducerCache = (definition: ReducerSource) => Reducer;

export function createReducerCache(maxEntries = 256): ReducerCache {
  const cache = new Map<string, Reducer>();
  return (definition) => {
    let reducer = cache.get(definition.definition_id);
    if (!reducer) {
      reducer = compileReducer(definition.handlers, definition.initial_state);
      if (cache.size >= maxEntries) cache.clear();
      cache.set(definition.definition_id, reducer);
    }
    return reducer;
  };
}
