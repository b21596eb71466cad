/**
 * Replay jobs for the API: start (or dry-run) a replay, read its progress, list, cancel, and the
 * processing results a reprocessing replay recorded. The work itself is the worker's (worker.ts).
 *
 * A replay covers exactly the selected events stored when it is asked for (store/replay.ts,
 * `positionBound`): a dry run and the job it announces count the same events, and events stored
 * afterwards are not part of it. The job and its `event.replay.started` message are written in one
 * transaction.
 */
import { ConflictError, NotFoundError } from '../domain/errors.js';
import { uuidv7 } from '../domain/ids.js';
import type { Db } from '../store/db.js';
import {
  cancelReplay,
  getReplay,
  insertReplay,
  listReplayResults,
  listReplays,
  positionBound,
  selectionIds,
  summarizeSelection,
  type NewReplay,
  type ReplayResultRow,
  type ReplayRow,
  type ReplayStatus,
} from '../store/replay.js';
import { completedMessage, startedMessage } from './messages.js';
import { DRY_RUN_IDS } from './schemas.js';
import { planReplay, selectionView, type ReplayRequest } from './selection.js';

export interface DryRunAnswer {
  dry_run: true;
  events_count: number;
  events: string[];
}

export interface StartedAnswer {
  status: 'replay_started';
  message: string;
  replay_id: string;
  events_count: number;
  dry_run: false;
  subject: string;
}

/** A job as the API shows it. */
export type ReplayView = Omit<
  ReplayRow,
  'selection' | 'last_position' | 'cursor_position' | 'lease_owner' | 'lease_until'
> & { selection: Record<string, unknown> };

export interface ReplayService {
  start(request: ReplayRequest): Promise<DryRunAnswer | StartedAnswer>;
  get(replayId: string): Promise<ReplayView>;
  list(options: {
    status?: ReplayStatus;
    limit: number;
    offset: number;
  }): Promise<{ items: ReplayView[]; total: number }>;
  /** Cancels a queued or running job (409 when it has ended already). */
  cancel(replayId: string): Promise<ReplayView>;
  results(
    replayId: string,
    options: { status?: string; limit: number; offset: number },
  ): Promise<{ results: ReplayResultRow[]; total: number }>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function view(job: ReplayRow): ReplayView {
  return {
    replay_id: job.replay_id,
    status: job.status,
    selection: selectionView(job.selection),
    target_service: job.target_service,
    subject: job.subject,
    reprocess: job.reprocess,
    total: job.total,
    replayed: job.replayed,
    failed: job.failed,
    error: job.error,
    created_at: job.created_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
    updated_at: job.updated_at,
  };
}

const notFound = (replayId: string) => new NotFoundError(`Replay not found: ${replayId}`);

export function createReplayService(deps: { db: Db; now: () => Date }): ReplayService {
  const { db, now } = deps;

  async function find(replayId: string): Promise<ReplayRow> {
    const job = UUID.test(replayId) ? await getReplay(db, replayId) : null;
    if (!job) throw notFound(replayId);
    return job;
  }

  return {
    async start(request) {
      const plan = planReplay(request);
      const bound = await positionBound(db);
      const summary = await summarizeSelection(db, plan.selection, bound);
      if (plan.dryRun) {
        const events = summary.count === 0 ? [] : await selectionIds(db, plan.selection, bound, DRY_RUN_IDS);
        return { dry_run: true, events_count: summary.count, events };
      }
      const job: NewReplay = {
        replay_id: uuidv7(),
        selection: plan.selection,
        target_service: plan.targetService,
        subject: plan.subject,
        reprocess: plan.reprocess,
        total: summary.count,
        last_position: summary.last,
        cursor_position: Math.max(0, summary.first - 1),
      };
      await insertReplay(db, job, startedMessage(job, now()));
      return {
        status: 'replay_started',
        message: 'Event replay has been initiated',
        replay_id: job.replay_id,
        events_count: summary.count,
        dry_run: false,
        subject: plan.subject,
      };
    },

    get: async (replayId) => view(await find(replayId)),

    async list(options) {
      const { items, total } = await listReplays(db, options);
      return { items: items.map(view), total };
    },

    async cancel(replayId) {
      if (!UUID.test(replayId)) throw notFound(replayId);
      const outcome = await cancelReplay(db, replayId, (job) => completedMessage(job, now()));
      if (outcome.type === 'not_found') throw notFound(replayId);
      if (outcome.type === 'finished') {
        throw new ConflictError(
          `Replay ${replayId} is ${outcome.job.status} already: only a queued or running replay can be cancelled`,
        );
      }
      return view(outcome.job);
    },

    async results(replayId, options) {
      await find(replayId);
      return listReplayResults(db, replayId, options);
    },
  };
}
