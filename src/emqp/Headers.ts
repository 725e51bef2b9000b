/**
 * The headers frame of REQUEST, SCHEDULE and UNSCHEDULE: comma-separated items, no spaces, `""` when none.
 *
 * Items are matched exactly (the reference matches substrings, which only differs for names nobody sends).
 * Numeric values are non-negative decimal integers: the reference parses them with an unguarded `int()`, so
 * anything else would crash a Python job manager and is refused here as `Malformed`. Items this module does not
 * know are kept, in order, as `extensions`: they cross 0.3.13 peers unharmed.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { EmqpError } from "./EmqpError.js"

const knownFlags = new Set(["reply-requested", "guarantee", "nohaste"])
const knownValued = new Set(["retry-count", "timeout", "run_count"])

const Count = Schema.Int.pipe(Schema.between(0, Number.MAX_SAFE_INTEGER))

const isExtension = (item: string): boolean => {
  if (item.length === 0 || item.includes(",") || knownFlags.has(item)) return false
  const colon = item.indexOf(":")
  return colon < 0 || !knownValued.has(item.slice(0, colon))
}

/**
 * An item of the headers frame that eMQP does not define, such as `x-trace:abc`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Extension = Schema.String.pipe(
  Schema.filter(isExtension, { message: () => "a header item without commas that is not a known eMQP header" })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Headers = Schema.Struct({
  /** Ask for the job's result: the worker sends a 6-frame REPLY, which an effect-wire broker forwards. */
  replyRequested: Schema.Boolean,
  /** Re-dispatch the job if its worker dies before replying. */
  guarantee: Schema.Boolean,
  /** How many times a failed or lost job is retried; 0 = never. */
  retryCount: Count,
  /** The job's execution timeout in seconds; 0 = the worker's default (300 s in the reference). */
  timeout: Count,
  /** SCHEDULE only: do not run the job at schedule time, wait for the first interval. */
  nohaste: Schema.Boolean,
  /** SCHEDULE only: how many times an interval job runs; 0 = forever. */
  runCount: Count,
  extensions: Schema.Array(Extension)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Headers extends Schema.Schema.Type<typeof Headers> {}

/**
 * No headers: the empty frame.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: Headers = {
  replyRequested: false,
  guarantee: false,
  retryCount: 0,
  timeout: 0,
  nohaste: false,
  runCount: 0,
  extensions: []
}

/**
 * Headers with the given items set and the rest at their defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (headers: Partial<Headers>): Headers => ({ ...empty, ...headers })

const malformed = (text: string, detail: string) =>
  new EmqpError({ reason: "Malformed", detail: `headers ${JSON.stringify(text)}: ${detail}` })

const integer = /^[0-9]{1,16}$/

/**
 * Parses a headers frame.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (text: string): Either.Either<Headers, EmqpError> => {
  if (text.length === 0) return Either.right(empty)
  let replyRequested = false
  let guarantee = false
  let nohaste = false
  let retryCount = 0
  let timeout = 0
  let runCount = 0
  const extensions: Array<string> = []
  for (const item of text.split(",")) {
    switch (item) {
      case "":
        continue
      case "reply-requested":
        replyRequested = true
        continue
      case "guarantee":
        guarantee = true
        continue
      case "nohaste":
        nohaste = true
        continue
    }
    const colon = item.indexOf(":")
    const name = colon < 0 ? item : item.slice(0, colon)
    if (!knownValued.has(name)) {
      extensions.push(item)
      continue
    }
    const value = colon < 0 ? "" : item.slice(colon + 1)
    if (!integer.test(value) || !Number.isSafeInteger(Number(value))) return Either.left(malformed(text, `${name} needs a non-negative integer`))
    const n = Number(value)
    if (name === "retry-count") retryCount = n
    else if (name === "timeout") timeout = n
    else runCount = n
  }
  return Either.right({ replyRequested, guarantee, retryCount, timeout, nohaste, runCount, extensions })
}

/**
 * Formats headers in the reference client's order: `reply-requested`, `guarantee`, `retry-count:N`,
 * `timeout:N` (numbers only when above 0), then `nohaste`, `run_count:N` and the extensions.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (headers: Headers): string => {
  const items: Array<string> = []
  if (headers.replyRequested) items.push("reply-requested")
  if (headers.guarantee) items.push("guarantee")
  if (headers.retryCount > 0) items.push(`retry-count:${headers.retryCount}`)
  if (headers.timeout > 0) items.push(`timeout:${headers.timeout}`)
  if (headers.nohaste) items.push("nohaste")
  if (headers.runCount > 0) items.push(`run_count:${headers.runCount}`)
  for (const item of headers.extensions) items.push(item)
  return items.join(",")
}

/**
 * The headers frame's text as `Headers`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HeadersFromString: Schema.Schema<Headers, string> = Schema.transformOrFail(Schema.String, Headers, {
  strict: true,
  decode: (text, _, ast) =>
    Either.mapLeft(parse(text), (error) => new ParseResult.Type(ast, text, error.message)),
  encode: (headers) => ParseResult.succeed(format(headers))
})
