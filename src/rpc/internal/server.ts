/**
 * The server side shared by the RPC protocols: a registry of clients (a connection, a stream, a ZMTP peer), each
 * with a numeric id; their messages go to the engine as they are decoded; their ids go to `disconnects` when
 * they leave.
 */
import type * as RpcMessage from "@effect/rpc/RpcMessage"
import { ResponseDefectEncoded } from "@effect/rpc/RpcMessage"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Mailbox from "effect/Mailbox"
import type * as Scope from "effect/Scope"
import * as Transport from "../../transport/Transport.js"
import type { WireCodec } from "./codec.js"
import type { Connection } from "./connection.js"
import * as Writer from "./writer.js"

/** How the engine reaches one client. */
export interface Peer {
  /** Sends an encoded response; never fails (a peer that cannot be written is dropped by its owner). */
  readonly send: (response: RpcMessage.FromServerEncoded) => Effect.Effect<void>
  /** The client is done (`Eof` and no requests left). */
  readonly end: Effect.Effect<void>
}

export interface ServerCore {
  readonly protocol: RpcServer.Protocol["Type"]
  /** Adds a client; its id is new. */
  readonly register: (peer: Peer) => number
  /** Removes a client and reports it to `disconnects`; a no-op for unknown ids. */
  readonly unregister: (id: number) => Effect.Effect<void>
  /** Hands decoded messages of a client to the engine, in order. */
  readonly deliver: (id: number, messages: ReadonlyArray<unknown>) => Effect.Effect<void>
  /** Serves one byte-stream connection as one client until the peer closes it or it fails. */
  readonly serve: <E>(connection: Connection<E>, codec: WireCodec) => Effect.Effect<void, never, Scope.Scope>
}

/** Encodes a response, or a Defect when the serialization cannot encode it (as `@effect/rpc`'s servers do). */
export const encodeResponse = (
  codec: WireCodec,
  response: RpcMessage.FromServerEncoded
): ReadonlyArray<Uint8Array> => {
  let encoded = codec.encode(response)
  if (Either.isLeft(encoded)) encoded = codec.encode(ResponseDefectEncoded(encoded.left.message))
  return Either.isLeft(encoded) ? [] : encoded.right
}

export const make: Effect.Effect<ServerCore, never, Scope.Scope> = Effect.gen(function*() {
  const disconnects = yield* Mailbox.make<number>()
  yield* Effect.addFinalizer(() => disconnects.shutdown)
  const peers = new Map<number, Peer>()
  const clientIds = new Set<number>()
  let nextId = 0
  let writeRequest: (clientId: number, message: RpcMessage.FromClientEncoded) => Effect.Effect<void> = () =>
    Effect.void

  const protocol = yield* RpcServer.Protocol.make((write) => {
    writeRequest = write
    return Effect.succeed({
      disconnects,
      send: (clientId, response) => {
        const peer = peers.get(clientId)
        return peer === undefined ? Effect.void : peer.send(response)
      },
      end: (clientId) => {
        const peer = peers.get(clientId)
        return peer === undefined ? Effect.void : peer.end
      },
      clientIds: Effect.sync(() => clientIds as ReadonlySet<number>),
      initialMessage: Effect.succeedNone,
      supportsAck: true,
      supportsTransferables: false,
      supportsSpanPropagation: true
    })
  })

  const register = (peer: Peer) => {
    const id = nextId++
    peers.set(id, peer)
    clientIds.add(id)
    return id
  }

  const unregister = (id: number) =>
    Effect.suspend(() => {
      if (!peers.delete(id)) return Effect.void
      clientIds.delete(id)
      return disconnects.offer(id)
    })

  const deliver = (id: number, messages: ReadonlyArray<unknown>) =>
    Effect.forEach(messages as ReadonlyArray<RpcMessage.FromClientEncoded>, (message) => writeRequest(id, message), {
      discard: true
    })

  const serve = <E>(connection: Connection<E>, codec: WireCodec): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function*() {
      const { run: writing, writer } = yield* Writer.make(connection)
      const send = (response: RpcMessage.FromServerEncoded): Effect.Effect<void> => {
        const chunks = encodeResponse(codec, response)
        return chunks.length === 0 ? Effect.void : writer.offer(chunks)
      }
      const id = register({ send, end: connection.close })
      yield* Effect.addFinalizer(() => unregister(id))
      const reading = Effect.gen(function*() {
        while (true) {
          const chunks = yield* connection.read
          if (Transport.isEof(chunks)) return undefined
          const decoded = codec.decode(chunks)
          if (Either.isLeft(decoded)) return decoded.left.message
          yield* deliver(id, decoded.right)
        }
      })
      // A connection that cannot be written is dropped, and the reader with it.
      const undecodable = yield* Effect.raceFirst(reading, writing)
      if (undecodable !== undefined) {
        // Tell the client why before hanging up: past bad input the byte stream cannot be trusted.
        yield* Effect.logWarning("rpc: undecodable input, closing the connection").pipe(
          Effect.annotateLogs({ clientId: id, reason: undecodable })
        )
        yield* Effect.ignore(connection.write(encodeResponse(codec, ResponseDefectEncoded(undecodable))))
      }
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.logDebug("rpc: connection ended", cause).pipe(Effect.annotateLogs("address", connection.address ?? ""))
      ),
      Effect.annotateLogs("module", "effect-wire/rpc")
    )

  return { protocol, register, unregister, deliver, serve }
})
