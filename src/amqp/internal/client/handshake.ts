/**
 * The opening handshake on channel 0: protocol header, start / start-ok (SASL), secure rounds, tune / tune-ok,
 * open / open-ok. Runs before the reader and writer fibers exist, directly on the transport.
 */
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import { isEof, type Transport } from "../../../transport/Transport.js"
import type { ClientProperties } from "../../ClientProperties.js"
import { type ClientError, ClientRefused, ConnectionFailed, ConnectionLost } from "../../ClientError.js"
import * as Constants from "../../Constants.js"
import * as Frame from "../../Frame.js"
import * as Methods from "../../Methods.js"
import * as Sasl from "../../Sasl.js"
import * as Table from "../../Table.js"
import * as Tune from "./tune.js"

export interface HandshakeOptions {
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly vhost: string
  readonly mechanisms: ReadonlyArray<Sasl.Mechanism>
  readonly clientProperties: ClientProperties
  readonly locale: string
  readonly wanted: Tune.Wanted
}

export interface Opened {
  readonly serverProperties: Table.FieldTable
  readonly mechanism: Sasl.Mechanism
  readonly tuned: Tune.Tuned
  /** Frames that arrived after `open-ok` in the same read: the reader dispatches them first. */
  readonly leftover: ReadonlyArray<Frame.Frame>
}

const utf8 = new TextDecoder()

export const run = (
  transport: Transport,
  parser: Frame.Parser,
  options: HandshakeOptions
): Effect.Effect<Opened, ClientError> =>
  Effect.gen(function*() {
    const inbox: Array<Frame.Frame> = []
    let stage: "start" | "auth" | "open" = "start"

    const write = (method: Methods.Method): Effect.Effect<void, ClientError> => {
      const bytes = Frame.encode(Frame.method(0, method), { frameMax: Tune.frameMinSize })
      return bytes._tag === "Left"
        ? Effect.fail(new ClientRefused({ reason: "InvalidArgument", detail: bytes.left.message }))
        : Effect.mapError(
          transport.write(bytes.right),
          (cause) => new ConnectionLost({ reason: "Transport", detail: cause.message, cause })
        )
    }

    const next: Effect.Effect<Methods.Method, ClientError> = Effect.gen(function*() {
      while (inbox.length === 0) {
        const read = yield* Effect.mapError(
          transport.read,
          (cause) => new ConnectionLost({ reason: "Transport", detail: cause.message, cause })
        )
        if (isEof(read)) {
          return yield* new ConnectionLost({
            reason: "HandshakeClosed",
            detail: stage === "auth"
              ? "the broker closed the socket during the handshake (possibly authentication)"
              : "the broker closed the socket during the handshake"
          })
        }
        for (const chunk of read) {
          const error = parser.feed(chunk, (frame) => inbox.push(frame))
          if (error !== undefined) {
            return yield* error.reason === "ProtocolVersionMismatch"
              ? new ConnectionFailed({ reason: "ProtocolVersionMismatch", detail: error.message, cause: error })
              : new ClientRefused({ reason: "Protocol", detail: error.message })
          }
        }
      }
      const frame = inbox.shift()!
      if (frame._tag !== "Method" || frame.channel !== 0) {
        return yield* new ClientRefused({ reason: "Protocol", detail: `unexpected ${frame._tag} frame during the handshake` })
      }
      const method = frame.method
      if (method._tag === "ConnectionClose") {
        // Acknowledge, then report why: 403 during auth is a refused login, 530 at open a refused vhost.
        yield* Effect.ignore(write(Methods.make("ConnectionCloseOk", {})))
        const text = `${method.replyCode} ${method.replyText}`
        return yield* method.replyCode === 403 && stage !== "open"
          ? new ConnectionFailed({ reason: "AuthenticationFailed", detail: text, replyCode: method.replyCode })
          : method.replyCode === 530 || method.replyCode === 403 || method.replyCode === 402
          ? new ConnectionFailed({ reason: "AccessRefused", detail: text, replyCode: method.replyCode })
          : new ConnectionFailed({ reason: "Negotiation", detail: text, replyCode: method.replyCode })
      }
      return method
    })

    const expect = <T extends Methods.Tag>(...tags: ReadonlyArray<T>) =>
      Effect.flatMap(next, (method): Effect.Effect<Methods.ByTag<T>, ClientError> =>
        (tags as ReadonlyArray<string>).includes(method._tag)
          ? Effect.succeed(method as Methods.ByTag<T>)
          : Effect.fail(
            new ClientRefused({ reason: "Protocol", detail: `expected ${tags.join(" or ")}, got ${method._tag}` })
          ))

    yield* Effect.mapError(
      transport.write(Constants.PROTOCOL_HEADER),
      (cause) => new ConnectionLost({ reason: "Transport", detail: cause.message, cause })
    )
    const start = yield* expect("ConnectionStart")
    if (start.versionMajor !== 0 || start.versionMinor !== 9) {
      return yield* new ConnectionFailed({
        reason: "ProtocolVersionMismatch",
        detail: `the broker speaks AMQP ${start.versionMajor}-${start.versionMinor}`
      })
    }
    const mechanism = yield* Sasl.choose(options.mechanisms, utf8.decode(start.mechanisms))
    const clientProperties = Table.fromRecord(options.clientProperties)
    if (clientProperties._tag === "Left") {
      return yield* new ClientRefused({ reason: "InvalidArgument", detail: clientProperties.left.message })
    }
    const credentials = { username: options.username, password: options.password }
    const response = Sasl.response(mechanism, credentials)
    stage = "auth"
    yield* write(Methods.make("ConnectionStartOk", {
      clientProperties: clientProperties.right,
      mechanism,
      response,
      locale: options.locale
    }))
    let tune: Methods.ByTag<"ConnectionTune">
    while (true) {
      const method = yield* expect("ConnectionSecure", "ConnectionTune")
      if (method._tag === "ConnectionTune") {
        tune = method
        break
      }
      // None of our mechanisms has a challenge: answer with the response again (never with `open`).
      yield* write(Methods.make("ConnectionSecureOk", { response }))
    }
    const tuned = yield* Tune.negotiate(tune, options.wanted)
    yield* write(Methods.make("ConnectionTuneOk", tuned))
    stage = "open"
    yield* write(Methods.make("ConnectionOpen", { virtualHost: options.vhost }))
    yield* expect("ConnectionOpenOk")
    return { serverProperties: start.serverProperties, mechanism, tuned, leftover: inbox.splice(0) }
  })
