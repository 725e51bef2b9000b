import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

/** Effect's built-in tracer: what every fiber has until a layer installs another. It exports spans nowhere. */
const builtIn: Tracer.Tracer = Effect.runSync(Effect.tracer)

/**
 * `Effect.withSpan` for the per-job spans, made only when a tracer that exports them is installed (an
 * OpenTelemetry layer, say). Under the built-in tracer a span per request and per job would go nowhere and cost a
 * fifth of a job's CPU.
 */
export const withSpan = (name: string, options: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === builtIn ? self : Effect.withSpan(self, name, options))
