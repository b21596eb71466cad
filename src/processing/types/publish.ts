/**
 * `publish`: publishes the event (JSON) to `config.subject` through the bus (NATS JetStream, or
 * the in-process bus), with `Nats-Msg-Id` = `<event_id>:<processor_id>`, so a run repeated within
 * the stream's duplicate window is stored once. The subject must be captured by a JetStream stream;
 * until one does, publishing fails and is retried.
 *
 * Config: `{subject}`; `{event_type}`, `{event_source}`, `{event_category}` are replaced
 * (`events.out.{event_type}` → `events.out.user.created`).
 */
import { encodeText, type Bus } from '../../bus/bus.js';
import { matchesPattern } from '../../domain/subjects.js';
import { traceHeaders, traceOfMetadata } from '../../observability/trace-context.js';
import { deliveryKey, type ProcessorResult, type ProcessorType } from '../processor-type.js';
import { ConfigChecker, expandSubject, subjectProblem } from './checks.js';

/** Subjects the service consumes: publishing there would feed every event back in, forever. */
export const INGESTED_SUBJECTS = ['events.backend.>', 'events.frontend.>'] as const;

export function publishProcessorType(deps: { bus: Bus }): ProcessorType {
  return {
    description: 'publish the event as JSON to config.subject on the bus (NATS JetStream)',
    validate(config) {
      const check = new ConfigChecker(config, ['subject']);
      const subject = check.string('subject', { required: true, maxLength: 512 });
      if (subject !== undefined) {
        const problem = subjectProblem(subject);
        if (problem) check.problem('subject', problem);
        else {
          const sample = expandSubject(subject, {
            event_type: 'x',
            event_source: 'backend',
            event_category: 'system',
          });
          const loop = INGESTED_SUBJECTS.find((pattern) => matchesPattern(pattern, sample));
          if (loop) {
            check.problem(
              'subject',
              `must not be under ${loop}: the service ingests those subjects (a loop)`,
            );
          }
        }
      }
      return check.problems;
    },
    async run(event, config, context): Promise<ProcessorResult> {
      const subject = expandSubject(config.subject as string, event);
      await deps.bus.publish(subject, encodeText(context.eventJson()), {
        msgId: deliveryKey(event, context),
        headers: {
          'event-id': encodeURIComponent(event.event_id),
          'event-type': encodeURIComponent(event.event_type),
          // The trace the event was created in: the subscriber continues it.
          ...traceHeaders(traceOfMetadata(event.metadata)),
        },
      });
      return { type: 'success', message: `published to ${subject}` };
    },
  };
}
