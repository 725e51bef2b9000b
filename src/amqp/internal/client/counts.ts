/**
 * Per-message counts, added to the metrics once per read: a tagged counter update looks its series up in the
 * registry every time, too much to pay for each message. The reader counts deliveries, confirms count as they
 * settle, and the reader flushes all of them after each read.
 */
import * as Exit from "effect/Exit"
import { type ClientError, PublishNacked, PublishReturned } from "../../ClientError.js"
import * as ClientMetrics from "../../ClientMetrics.js"
import type { Outcome } from "./confirms.js"

/** Counted since the last flush. */
export const counts = { confirmed: 0, refused: 0, delivered: 0 }

/** Adds the counts, and `frames` read, to the metrics. */
export const flushCounts = (frames: number): void => {
  ClientMetrics.framesIn.unsafeUpdate(frames, [])
  if (counts.delivered > 0) ClientMetrics.delivered.unsafeUpdate(counts.delivered, [])
  if (counts.confirmed > 0) ClientMetrics.confirmed.unsafeUpdate(counts.confirmed, [])
  if (counts.refused > 0) ClientMetrics.refused.unsafeUpdate(counts.refused, [])
  counts.delivered = 0
  counts.confirmed = 0
  counts.refused = 0
}

/** What a confirmed publish completes with, counted as confirmed or refused. */
export const settleExit = (channel: number, outcome: Outcome): Exit.Exit<void, ClientError> => {
  switch (outcome._tag) {
    case "Acked":
      counts.confirmed++
      return Exit.void
    case "Nacked":
      counts.refused++
      return Exit.fail(new PublishNacked({ channel, deliveryTag: outcome.deliveryTag }))
    case "Returned":
      counts.refused++
      return Exit.fail(
        new PublishReturned({
          channel,
          replyCode: outcome.returned.replyCode,
          replyText: outcome.returned.replyText,
          exchange: outcome.returned.exchange,
          routingKey: outcome.returned.routingKey
        })
      )
  }
}
