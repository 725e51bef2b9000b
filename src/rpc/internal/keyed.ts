/**
 * The server side for message transports without connections (a ZMTP ROUTER, an AMQP request queue): a client
 * is whatever address its messages come from. It is gone when a send to it fails, or when nothing came from it
 * for `clientTimeout` (clients ping every heartbeat interval).
 */
import type * as RpcMessage from "@effect/rpc/RpcMessage"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import type { WireCodec } from "./codec.js"
import * as internalServer from "./server.js"

export interface KeyedOptions<Address> {
  readonly core: internalServer.ServerCore
  readonly codec: () => WireCodec
  /** Sends one encoded message to a client's address; a failure means the client is gone. */
  readonly send: (address: Address, chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void, unknown>
  readonly clientTimeout: Duration.DurationInput | false
}

interface Peer<Address> {
  id: number
  readonly address: Address
  codec: WireCodec
  lastSeen: number
}

export const defaultClientTimeout = Duration.seconds(30)

/** Returns the function that takes one inbound message of a client; runs the expiry sweep in the scope. */
export const make = <Address>(
  options: KeyedOptions<Address>
): Effect.Effect<(key: string, address: Address, message: ReadonlyArray<Uint8Array>) => Effect.Effect<void>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { core } = options
    const peers = new Map<string, Peer<Address>>()

    const forget = (key: string, peer: Peer<Address>) =>
      Effect.suspend(() => {
        if (peers.get(key) !== peer) return Effect.void
        peers.delete(key)
        return core.unregister(peer.id)
      })

    const add = (key: string, address: Address): Peer<Address> => {
      const peer: Peer<Address> = { id: -1, address, codec: options.codec(), lastSeen: 0 }
      const send = (response: RpcMessage.FromServerEncoded): Effect.Effect<void> => {
        const chunks = internalServer.encodeResponse(peer.codec, response)
        if (chunks.length === 0) return Effect.void
        return options.send(peer.address, chunks).pipe(Effect.catchAll(() => forget(key, peer)))
      }
      peer.id = core.register({ send, end: forget(key, peer) })
      peers.set(key, peer)
      return peer
    }

    const receive = (key: string, address: Address, message: ReadonlyArray<Uint8Array>): Effect.Effect<void> =>
      Effect.gen(function*() {
        const peer = peers.get(key) ?? add(key, address)
        peer.lastSeen = yield* Clock.currentTimeMillis
        const decoded = peer.codec.decode(message)
        if (Either.isLeft(decoded)) {
          // Messages are delimited, so one bad message spoils nothing else: answer it and start a fresh parser.
          peer.codec = options.codec()
          yield* Effect.logWarning("rpc: undecodable message").pipe(
            Effect.annotateLogs({ clientId: peer.id, reason: decoded.left.message })
          )
          return yield* core.protocol.send(peer.id, { _tag: "Defect", defect: decoded.left.message })
        }
        yield* core.deliver(peer.id, decoded.right)
      })

    if (options.clientTimeout !== false) {
      const timeout = Duration.toMillis(options.clientTimeout)
      yield* Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        for (const [key, peer] of peers) {
          if (now - peer.lastSeen >= timeout) yield* forget(key, peer)
        }
      }).pipe(
        Effect.delay(Duration.millis(Math.max(1, timeout / 2))),
        Effect.forever,
        Effect.forkScoped
      )
    }
    return receive
  })
