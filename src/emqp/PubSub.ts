/**
 * eMQP publish/subscribe, as the reference's `emq-pubsub` relay does it: publishers send
 * `PUBLISH [topic, message_json]` to the relay's ROUTER (default `:47298`), the relay republishes
 * `[topic, message_json]` on its PUB socket (default `:47299`), subscribers are SUB sockets matching topic
 * prefixes. No ACK, no heartbeats: delivery is at most once, as with any ZeroMQ PUB/SUB.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Command from "./Command.js"
import { EmqpError } from "./EmqpError.js"
import { loop } from "../internal/loop.js"
import * as Utf8 from "./internal/utf8.js"
import * as Socket from "./Socket.js"

/**
 * The reference's relay addresses.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultAddresses = {
  incoming: "tcp://127.0.0.1:47298",
  outgoing: "tcp://127.0.0.1:47299"
} as const

/**
 * A message as subscribers receive it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Published {
  readonly topic: string
  /** The message, parsed from JSON. */
  readonly message: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RelayService {
  /** Messages republished since start. */
  readonly published: Effect.Effect<number>
}

const relayed = Metric.counter("emqp_relay_messages", { description: "PUBLISH messages republished" })

/**
 * Runs a relay on the given sockets until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRelayWith = (incoming: Socket.Bind, outgoing: Socket.Bind): Effect.Effect<RelayService, EmqpError, Scope.Scope> =>
  Effect.gen(function*() {
    const input = yield* incoming
    const output = yield* outgoing
    let published = 0
    yield* input.receive.pipe(
      Effect.flatMap((message) => {
        const decoded = Command.decode(message, 1)
        if (Either.isLeft(decoded)) return Effect.logWarning(`ignored a message: ${decoded.left.message}`)
        const command = decoded.right
        if (command._tag !== "Publish") return Effect.logDebug(`ignored ${command._tag} on the relay`)
        published++
        return Effect.zipRight(
          output.send([Utf8.encode(command.topic), Utf8.encode(command.message)]),
          Metric.increment(relayed)
        )
      }),
      loop,
      Effect.catchAll((error) => Effect.logError(`the relay failed: ${error.message}`)),
      Effect.annotateLogs({ "emqp.role": "relay" }),
      Effect.forkScoped
    )
    return { published: Effect.sync(() => published) }
  })

/**
 * A relay on ZMTP sockets (the reference's ports unless given).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRelay = (
  options: { readonly incoming?: string | undefined; readonly outgoing?: string | undefined } & Socket.SocketOptions = {}
): Effect.Effect<RelayService, EmqpError, Scope.Scope> =>
  makeRelayWith(
    Socket.router(options.incoming ?? defaultAddresses.incoming, options),
    Socket.publisher(options.outgoing ?? defaultAddresses.outgoing, options)
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface PublisherService {
  /** Publishes `message` (JSON-serialisable) on `topic`; completes when handed to the socket. */
  readonly publish: (topic: string, message: unknown) => Effect.Effect<void, EmqpError>
}

/**
 * A publisher on a DEALER connected to a relay's incoming socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePublisherWith = (
  connect: Socket.Connect,
  options: { readonly profile?: Command.Profile | undefined } = {}
): Effect.Effect<PublisherService, EmqpError, Scope.Scope> =>
  Effect.map(connect(Command.unsafeMessageId()), (socket) => ({
    publish: (topic, message) =>
      Effect.suspend(() => {
        const json = Either.try(() => JSON.stringify(message) as string | undefined)
        if (Either.isLeft(json) || json.right === undefined) {
          return Effect.fail(new EmqpError({ reason: "Malformed", command: "PUBLISH", detail: "the message is not JSON-serialisable" }))
        }
        return socket.send(
          Command.encode(
            Command.Publish.make({ msgid: Command.unsafeMessageId(), topic, message: json.right }, true),
            options.profile
          )
        )
      })
  }))

/**
 * A publisher connected over ZMTP to a relay (default `tcp://127.0.0.1:47298`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePublisher = (
  options: { readonly address?: string | undefined; readonly profile?: Command.Profile | undefined } & Socket.SocketOptions = {}
): Effect.Effect<PublisherService, EmqpError, Scope.Scope> =>
  makePublisherWith(Socket.dealer(options.address ?? defaultAddresses.incoming, options), options)

/**
 * The messages of the topics (prefixes) from a subscriber socket; messages that are not `[topic, json]` are
 * skipped with a log line.
 *
 * @since 0.1.0
 * @category constructors
 */
export const subscribeWith = (subscriber: Socket.Bind): Stream.Stream<Published, EmqpError> =>
  Stream.unwrapScoped(Effect.map(subscriber, (socket) =>
    Stream.repeatEffect(socket.receive).pipe(
      Stream.mapEffect((frames) => {
        const topic = frames.length === 2 ? Utf8.decode(frames[0]!) : undefined
        const text = frames.length === 2 ? Utf8.decode(frames[1]!) : undefined
        const message = text === undefined ? undefined : Either.try(() => JSON.parse(text) as unknown)
        if (topic === undefined || message === undefined || Either.isLeft(message)) {
          return Effect.as(Effect.logWarning("skipped a published message that is not [topic, json]"), Option.none())
        }
        return Effect.succeed(Option.some<Published>({ topic, message: message.right }))
      }),
      Stream.filterMap((published) => published)
    )))

/**
 * The messages of the topics (prefixes) published by a relay (default `tcp://127.0.0.1:47299`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const subscribe = (
  topics: ReadonlyArray<string>,
  options: { readonly address?: string | undefined } & Socket.SocketOptions = {}
): Stream.Stream<Published, EmqpError> =>
  subscribeWith(Socket.subscriber(options.address ?? defaultAddresses.outgoing, topics, options))
