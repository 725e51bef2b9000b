/**
 * Every eMQP/1.0 command as a value, and the codec between commands and multipart messages.
 *
 * A message is an array of frames as a DEALER sees it: `["", "eMQP/1.0", COMMAND, MSGID, ...body]` (a ROUTER
 * sees the peer's routing id in front; `decode` takes an offset for that). The layouts are those EventMQ 0.3.13
 * puts on the wire, which differ from the published tables: `KBYE` (the published `KBAI` is accepted as an
 * alias), a 6-frame worker `REPLY` (here `Result`), 9-frame `SCHEDULE`/`UNSCHEDULE`, a 6-frame `PUBLISH`, JSON
 * queue lists in `INFORM`, comma-separated headers. The published 7-frame `SCHEDULE`/`UNSCHEDULE`/`PUBLISH` are
 * accepted too. Anything else is an `EmqpError`: `Malformed`, `UnknownCommand` or `UnsupportedVersion`.
 *
 * `NACK` is an effect-wire extension: the broker's explicit refusal of a request. 0.3.13 peers ignore commands
 * they do not know, so it is safe to send to them.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { EmqpError } from "./EmqpError.js"
import * as Headers from "./Headers.js"
import * as Utf8 from "./internal/utf8.js"

/**
 * The protocol version frame.
 *
 * @since 0.1.0
 * @category constants
 */
export const PROTOCOL_VERSION = "eMQP/1.0"

// ---------------------------------------------------------------------------------------------------------------
// values
// ---------------------------------------------------------------------------------------------------------------

/**
 * A worker's queue and its weight: higher weights are served first.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Queue = Schema.Struct({ weight: Schema.Int, name: Schema.String })

/**
 * @since 0.1.0
 * @category models
 */
export interface Queue extends Schema.Schema.Type<typeof Queue> {}

/**
 * `INFORM`: a worker (with its queues, in priority order) or a scheduler (no queues) announces itself. An empty
 * queue list is sent as `""`, which tells the broker to use its default queues.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Inform = Schema.TaggedStruct("Inform", {
  msgid: Schema.String,
  queues: Schema.Array(Queue),
  peerType: Schema.Literal("worker", "scheduler")
})

/**
 * `ACK`: the broker accepted an `INFORM` (or an admin `DISCONNECT`); `acked` is that message's id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ack = Schema.TaggedStruct("Ack", { msgid: Schema.String, acked: Schema.String })

/**
 * `READY`: a worker has one more free job slot.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ready = Schema.TaggedStruct("Ready", { msgid: Schema.String })

/**
 * `REQUEST`: a job for a queue. The broker forwards it to a worker keeping `msgid`, which is the job's id
 * everywhere.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Request = Schema.TaggedStruct("Request", {
  msgid: Schema.String,
  queue: Schema.String,
  headers: Headers.Headers,
  payload: Schema.String
})

/**
 * The 5-frame `REPLY`: the broker's dispatch acknowledgement to a client (`body` = the request's msgid) or an
 * admin answer (`body` = JSON).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reply = Schema.TaggedStruct("Reply", { msgid: Schema.String, body: Schema.String })

/**
 * The 6-frame `REPLY`: a job's result (`{"value": …}` JSON) for the request `requestId`. Sent by workers when
 * the request has `reply-requested`; an effect-wire broker forwards it to the client.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Result = Schema.TaggedStruct("Result", {
  msgid: Schema.String,
  result: Schema.String,
  requestId: Schema.String
})

/**
 * `HEARTBEAT` with the sender's Unix time as text (nobody parses it).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Heartbeat = Schema.TaggedStruct("Heartbeat", { msgid: Schema.String, timestamp: Schema.String })

/**
 * `DISCONNECT`: shut down (admin → broker).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Disconnect = Schema.TaggedStruct("Disconnect", { msgid: Schema.String })

/**
 * `KBYE` (published spec: `KBAI`): the sender is leaving.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Kbye = Schema.TaggedStruct("Kbye", { msgid: Schema.String })

const scheduleFields = {
  msgid: Schema.String,
  queue: Schema.String,
  headers: Headers.Headers,
  /** Seconds between runs; `-1` for a cron job (and in `UNSCHEDULE`). */
  interval: Schema.Int.pipe(Schema.between(-1, Number.MAX_SAFE_INTEGER)),
  payload: Schema.String,
  /** A 5-field cron expression; `""` for an interval job. */
  cron: Schema.String
}

/**
 * `SCHEDULE` (9 frames): run a job every `interval` seconds or on a cron expression.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Schedule = Schema.TaggedStruct("Schedule", scheduleFields)

/**
 * `UNSCHEDULE` (9 frames): remove the scheduled job with this payload (schedulers key jobs by payload).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Unschedule = Schema.TaggedStruct("Unschedule", scheduleFields)

/**
 * `PUBLISH` (6 frames): a message for a topic, to the pub/sub relay.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Publish = Schema.TaggedStruct("Publish", {
  msgid: Schema.String,
  topic: Schema.String,
  message: Schema.String
})

/**
 * Admin `STATUS`; the unmerged 0.4 spec adds a sub-command frame (`show_managers`, `show_schedulers`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Status = Schema.TaggedStruct("Status", { msgid: Schema.String, subCommand: Schema.String })

/**
 * Admin `ROUTER_SHOW_WORKERS`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ShowWorkers = Schema.TaggedStruct("ShowWorkers", { msgid: Schema.String })

/**
 * Admin `ROUTER_SHOW_SCHEDULERS`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ShowSchedulers = Schema.TaggedStruct("ShowSchedulers", { msgid: Schema.String })

/**
 * `HELLO`: sent by the reference admin CLI on connect; brokers ignore it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Hello = Schema.TaggedStruct("Hello", { msgid: Schema.String })

/**
 * `NACK` (effect-wire extension, 7 frames): the broker refused or gave up on the request `requestId`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Nack = Schema.TaggedStruct("Nack", {
  msgid: Schema.String,
  requestId: Schema.String,
  code: Schema.Literal("queue-full", "no-scheduler", "worker-lost", "timeout", "shutdown"),
  detail: Schema.String
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Command = Schema.Union(
  Inform,
  Ack,
  Ready,
  Request,
  Reply,
  Result,
  Heartbeat,
  Disconnect,
  Kbye,
  Schedule,
  Unschedule,
  Publish,
  Status,
  ShowWorkers,
  ShowSchedulers,
  Hello,
  Nack
)

/**
 * @since 0.1.0
 * @category models
 */
export type Command = Schema.Schema.Type<typeof Command>

/** @since 0.1.0 @category models */
export type Inform = typeof Inform.Type
/** @since 0.1.0 @category models */
export type Ack = typeof Ack.Type
/** @since 0.1.0 @category models */
export type Ready = typeof Ready.Type
/** @since 0.1.0 @category models */
export type Request = typeof Request.Type
/** @since 0.1.0 @category models */
export type Reply = typeof Reply.Type
/** @since 0.1.0 @category models */
export type Result = typeof Result.Type
/** @since 0.1.0 @category models */
export type Heartbeat = typeof Heartbeat.Type
/** @since 0.1.0 @category models */
export type Disconnect = typeof Disconnect.Type
/** @since 0.1.0 @category models */
export type Kbye = typeof Kbye.Type
/** @since 0.1.0 @category models */
export type Schedule = typeof Schedule.Type
/** @since 0.1.0 @category models */
export type Unschedule = typeof Unschedule.Type
/** @since 0.1.0 @category models */
export type Publish = typeof Publish.Type
/** @since 0.1.0 @category models */
export type Status = typeof Status.Type
/** @since 0.1.0 @category models */
export type ShowWorkers = typeof ShowWorkers.Type
/** @since 0.1.0 @category models */
export type ShowSchedulers = typeof ShowSchedulers.Type
/** @since 0.1.0 @category models */
export type Hello = typeof Hello.Type
/** @since 0.1.0 @category models */
export type Nack = typeof Nack.Type

/**
 * The refusal codes of `NACK`.
 *
 * @since 0.1.0
 * @category models
 */
export type NackCode = Nack["code"]

/**
 * The command name on the wire for each tag.
 *
 * @since 0.1.0
 * @category constants
 */
export const wireName: { readonly [K in Command["_tag"]]: string } = {
  Inform: "INFORM",
  Ack: "ACK",
  Ready: "READY",
  Request: "REQUEST",
  Reply: "REPLY",
  Result: "REPLY",
  Heartbeat: "HEARTBEAT",
  Disconnect: "DISCONNECT",
  Kbye: "KBYE",
  Schedule: "SCHEDULE",
  Unschedule: "UNSCHEDULE",
  Publish: "PUBLISH",
  Status: "STATUS",
  ShowWorkers: "ROUTER_SHOW_WORKERS",
  ShowSchedulers: "ROUTER_SHOW_SCHEDULERS",
  Hello: "HELLO",
  Nack: "NACK"
}

// ---------------------------------------------------------------------------------------------------------------
// message ids
// ---------------------------------------------------------------------------------------------------------------

/**
 * A fresh message id: a uuid4 string, the same 36-character form as the reference's `str(uuid.uuid4())`.
 *
 * @since 0.1.0
 * @category message ids
 */
export const makeMessageId: Effect.Effect<string> = Effect.sync(() => randomUUID())

/**
 * The same as `makeMessageId`, as a plain function for code that is already inside an effect.
 *
 * @since 0.1.0
 * @category message ids
 */
export const unsafeMessageId = (): string => randomUUID()

// ---------------------------------------------------------------------------------------------------------------
// encoding
// ---------------------------------------------------------------------------------------------------------------

const EMPTY = new Uint8Array(0)
const VERSION = Utf8.encode(PROTOCOL_VERSION)
const names: Record<string, Uint8Array> = {}
for (const name of new Set(Object.values(wireName))) names[name] = Utf8.encode(name)

const formatQueues = (queues: ReadonlyArray<Queue>): string =>
  // Python's json.dumps layout, byte for byte with the reference job manager.
  queues.length === 0 ? "" : `[${queues.map((q) => `[${q.weight}, ${JSON.stringify(q.name)}]`).join(", ")}]`

const body = (command: Command): ReadonlyArray<string> => {
  switch (command._tag) {
    case "Inform":
      return [formatQueues(command.queues), command.peerType]
    case "Ack":
      return [command.acked]
    case "Request":
      return [command.queue, Headers.format(command.headers), command.payload]
    case "Reply":
      return [command.body]
    case "Result":
      return [command.result, command.requestId]
    case "Heartbeat":
      return [command.timestamp]
    case "Schedule":
    case "Unschedule":
      return [
        command.queue,
        Headers.format(command.headers),
        String(command.interval),
        command.payload,
        command.cron
      ]
    case "Publish":
      return [command.topic, command.message]
    case "Status":
      return command.subCommand === "" ? [] : [command.subCommand]
    case "Nack":
      return [command.requestId, command.code, command.detail]
    case "Ready":
    case "Disconnect":
    case "Kbye":
    case "ShowWorkers":
    case "ShowSchedulers":
    case "Hello":
      return []
  }
}

/**
 * Which layout commands are encoded in. Decoding accepts both.
 *
 * - `"reference"` (default): what EventMQ 0.3.13 puts on the wire — KBYE, 9-frame SCHEDULE/UNSCHEDULE with
 *   interval and cron, 6-frame PUBLISH.
 * - `"spec"`: the published protocol tables — KBAI, 7-frame SCHEDULE/UNSCHEDULE (no interval and cron frames,
 *   so a schedule is sent without its timing), 7-frame PUBLISH with an empty headers frame. REPLY with a job's
 *   result keeps its 6 frames (the tables have no layout that names the request).
 *
 * @since 0.1.0
 * @category models
 */
export type Profile = "reference" | "spec"

/**
 * The frames of a command, as a DEALER sends them, in the given profile (default `"reference"`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (command: Command, profile: Profile = "reference"): Array<Uint8Array> => {
  const spec = profile === "spec" ? specLayout(command) : undefined
  const fields = spec?.fields ?? body(command)
  const frames = [EMPTY, VERSION, spec?.name ?? names[wireName[command._tag]]!]
  // The msgid and the short body frames share one allocation (most eMQP fields are short ASCII).
  Utf8.encodeAll([command.msgid, ...fields], frames)
  return frames
}

const KBAI = Utf8.encode("KBAI")

/** Where the published tables differ from 0.3.13: the name and body frames to send instead. */
const specLayout = (
  command: Command
): { readonly name?: Uint8Array | undefined; readonly fields?: ReadonlyArray<string> | undefined } | undefined => {
  switch (command._tag) {
    case "Kbye":
      return { name: KBAI }
    case "Schedule":
    case "Unschedule":
      return { fields: [command.queue, Headers.format(command.headers), command.payload] }
    case "Publish":
      return { fields: [command.topic, "", command.message] }
    default:
      return undefined
  }
}

// ---------------------------------------------------------------------------------------------------------------
// decoding
// ---------------------------------------------------------------------------------------------------------------

const QueuesJson = Schema.parseJson(Schema.Array(Schema.Tuple(Schema.Int, Schema.String)))
const decodeQueuesJson = Schema.decodeUnknownEither(QueuesJson)

const malformed = (command: string, msgid: string | undefined, detail: string, frames?: number) =>
  new EmqpError({
    reason: "Malformed",
    command,
    msgid,
    code: frames === undefined ? undefined : `frames=${frames}`,
    detail
  })

const known = new Set(Object.values(wireName).concat(["KBAI"]))

/**
 * Decodes a message whose envelope starts at `offset` (1 on a ROUTER, after the routing id).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (
  frames: ReadonlyArray<Uint8Array>,
  offset = 0
): Either.Either<Command, EmqpError> => {
  const count = frames.length - offset
  if (count < 4) {
    return Either.left(malformed("?", undefined, "an eMQP message has at least 4 frames", Math.max(count, 0)))
  }
  if (frames[offset]!.length !== 0) return Either.left(malformed("?", undefined, "frame 0 must be empty"))
  const version = Utf8.decode(frames[offset + 1]!)
  if (version !== PROTOCOL_VERSION) {
    return Either.left(
      new EmqpError({
        reason: "UnsupportedVersion",
        detail: `protocol version ${JSON.stringify(version ?? "<not UTF-8>")}, expected ${PROTOCOL_VERSION}`
      })
    )
  }
  let name = Utf8.decode(frames[offset + 2]!)
  if (name === undefined) return Either.left(malformed("?", undefined, "command is not UTF-8"))
  if (!known.has(name)) {
    const upper = name.toUpperCase()
    if (!known.has(upper)) return Either.left(new EmqpError({ reason: "UnknownCommand", command: name }))
    name = upper
  }
  const msgid = Utf8.decode(frames[offset + 3]!)
  if (msgid === undefined) return Either.left(malformed(name, undefined, "message id is not UTF-8"))
  const n = count - 4
  const fields: Array<string> = new Array(n)
  for (let i = 0; i < n; i++) {
    const text = Utf8.decode(frames[offset + 4 + i]!)
    if (text === undefined) return Either.left(malformed(name, msgid, `body frame ${i + 4} is not UTF-8`))
    fields[i] = text
  }
  return decodeBody(name, msgid, fields)
}

const bodyCount = (name: string, msgid: string, fields: ReadonlyArray<string>, ...allowed: Array<number>) =>
  allowed.includes(fields.length + 4)
    ? undefined
    : Either.left(
      malformed(name, msgid, `${name} has ${allowed.join(" or ")} frames, got ${fields.length + 4}`, fields.length + 4)
    )

const interval = /^-?[0-9]{1,16}$/

const decodeBody = (
  name: string,
  msgid: string,
  f: ReadonlyArray<string>
): Either.Either<Command, EmqpError> => {
  switch (name) {
    case "READY":
      return bodyCount(name, msgid, f, 4) ?? Either.right({ _tag: "Ready", msgid })
    case "HEARTBEAT":
      return bodyCount(name, msgid, f, 5) ?? Either.right({ _tag: "Heartbeat", msgid, timestamp: f[0]! })
    case "REQUEST": {
      const wrong = bodyCount(name, msgid, f, 7)
      if (wrong) return wrong
      const headers = Headers.parse(f[1]!)
      if (Either.isLeft(headers)) return Either.left(malformed(name, msgid, headers.left.detail ?? "headers"))
      return Either.right({ _tag: "Request", msgid, queue: f[0]!, headers: headers.right, payload: f[2]! })
    }
    case "REPLY":
      return bodyCount(name, msgid, f, 5, 6) ?? Either.right(
        f.length === 1
          ? { _tag: "Reply", msgid, body: f[0]! }
          : { _tag: "Result", msgid, result: f[0]!, requestId: f[1]! }
      )
    case "INFORM": {
      const wrong = bodyCount(name, msgid, f, 6)
      if (wrong) return wrong
      const peerType = f[1]!
      if (peerType !== "worker" && peerType !== "scheduler") {
        return Either.left(malformed(name, msgid, `peer type ${JSON.stringify(peerType)} is not worker or scheduler`))
      }
      if (f[0] === "") return Either.right({ _tag: "Inform", msgid, queues: [], peerType })
      const parsed = decodeQueuesJson(f[0])
      if (Either.isLeft(parsed)) {
        return Either.left(malformed(name, msgid, "queues must be a JSON array of [weight, name] pairs"))
      }
      const queues = parsed.right.map(([weight, queue]) => ({ weight, name: queue }))
      return Either.right({ _tag: "Inform", msgid, queues, peerType })
    }
    case "ACK":
      return bodyCount(name, msgid, f, 5) ?? Either.right({ _tag: "Ack", msgid, acked: f[0]! })
    case "DISCONNECT":
      return bodyCount(name, msgid, f, 4) ?? Either.right({ _tag: "Disconnect", msgid })
    case "KBYE":
    case "KBAI":
      return bodyCount(name, msgid, f, 4) ?? Either.right({ _tag: "Kbye", msgid })
    case "SCHEDULE":
    case "UNSCHEDULE": {
      const wrong = bodyCount(name, msgid, f, 7, 9)
      if (wrong) return wrong
      const headers = Headers.parse(f[1]!)
      if (Either.isLeft(headers)) return Either.left(malformed(name, msgid, headers.left.detail ?? "headers"))
      // The published 7-frame layout has no interval and cron frames.
      const seconds = f.length === 5 ? f[2]! : "-1"
      if (!interval.test(seconds) || Number(seconds) < -1 || !Number.isSafeInteger(Number(seconds))) {
        return Either.left(malformed(name, msgid, `interval ${JSON.stringify(seconds)} is not an integer ≥ -1`))
      }
      return Either.right({
        _tag: name === "SCHEDULE" ? "Schedule" : "Unschedule",
        msgid,
        queue: f[0]!,
        headers: headers.right,
        interval: Number(seconds),
        payload: f.length === 5 ? f[3]! : f[2]!,
        cron: f.length === 5 ? f[4]! : ""
      })
    }
    case "PUBLISH": {
      const wrong = bodyCount(name, msgid, f, 6, 7)
      if (wrong) return wrong
      // The published client layout has a headers frame between topic and message; nothing uses it.
      return Either.right({ _tag: "Publish", msgid, topic: f[0]!, message: f[f.length - 1]! })
    }
    case "STATUS":
      return bodyCount(name, msgid, f, 4, 5) ?? Either.right({ _tag: "Status", msgid, subCommand: f[0] ?? "" })
    case "ROUTER_SHOW_WORKERS":
      return bodyCount(name, msgid, f, 4) ?? Either.right({ _tag: "ShowWorkers", msgid })
    case "ROUTER_SHOW_SCHEDULERS":
      return bodyCount(name, msgid, f, 4) ?? Either.right({ _tag: "ShowSchedulers", msgid })
    case "HELLO":
      return bodyCount(name, msgid, f, 4) ?? Either.right({ _tag: "Hello", msgid })
    case "NACK": {
      const wrong = bodyCount(name, msgid, f, 7)
      if (wrong) return wrong
      const code = f[1]!
      if (
        code !== "queue-full" && code !== "no-scheduler" && code !== "worker-lost" && code !== "timeout" &&
        code !== "shutdown"
      ) {
        return Either.left(malformed(name, msgid, `unknown NACK code ${JSON.stringify(code)}`))
      }
      return Either.right({ _tag: "Nack", msgid, requestId: f[0]!, code, detail: f[2]! })
    }
  }
  return Either.left(new EmqpError({ reason: "UnknownCommand", command: name }))
}

// ---------------------------------------------------------------------------------------------------------------
// schema
// ---------------------------------------------------------------------------------------------------------------

/**
 * A multipart message: its frames.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Frames = Schema.Array(Schema.Uint8ArrayFromSelf)

/**
 * Commands from and to multipart messages (DEALER view). The same code as `decode` and `encode`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandFromFrames: Schema.Schema<Command, ReadonlyArray<Uint8Array>> = Schema.transformOrFail(
  Frames,
  Command,
  {
    strict: true,
    decode: (frames, _, ast) =>
      Either.mapLeft(decode(frames), (error) => new ParseResult.Type(ast, frames, error.message)),
    encode: (command) => ParseResult.succeed(encode(command))
  }
)
