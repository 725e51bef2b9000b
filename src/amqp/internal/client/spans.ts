/**
 * Tracing: one span per synchronous request or close, named after the class and method as the spec names them. The
 * names and options are computed once and shared, so a span costs no string building or object per request.
 */
import type * as Methods from "../../Methods.js"

const spanNames = new Map<string, string>()

/** `QueueDeclare` → `amqp.queue.declare`: the class and method as the spec names them. */
export const spanName = (tag: Methods.Tag): string => {
  let name = spanNames.get(tag)
  if (name === undefined) {
    const [klass = tag, ...method] = (tag.match(/[A-Z][a-z]*/g) ?? []).map((word) => word.toLowerCase())
    name = `amqp.${klass}.${method.join("-")}`
    spanNames.set(tag, name)
  }
  return name
}

const spanOptionsByChannel: Array<{ readonly attributes: Record<string, unknown>; readonly captureStackTrace: false }> = []

/** Shared per channel id; no stack trace (it is the costly part of a span, and the request is ours). */
export const spanOptions = (channel: number) =>
  spanOptionsByChannel[channel] ??= {
    attributes: { "messaging.system": "rabbitmq", "messaging.rabbitmq.channel": channel },
    captureStackTrace: false
  }
