/**
 * The server side shared by every connection-oriented RPC protocol: each connection is a client with its own id
 * and codec; its messages go to the engine as they are decoded; its id goes to `disconnects` when it ends.
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

interface Client {
  readonly connection: Connection<unknown>
  readonly codec: WireCodec
  readonly lock: Effect.Semaphore
}

export interface ServerProtocol {
  readonly protocol: RpcServer.Protocol["Type"]
  /** Serves one connection until the peer closes it or it fails; the connection is the caller's to close. */
  readonly serve: <E>(connection: Connection<E>, codec: WireCodec) => Effect.Effect<void, never, Scope.Scope>
}

const write = (client: Client, response: RpcMessage.FromServerEncoded): Effect.Effect<void> => {
  let encoded = client.codec.encode(response)
  // A value the serialization cannot encode fails that client's requests, as `@effect/rpc`'s own servers do.
  if (Either.isLeft(encoded)) encoded = client.codec.encode(ResponseDefectEncoded(encoded.left))
  if (Either.isLeft(encoded) || encoded.right.length === 0) return Effect.void
  const chunks = encoded.right
  return client.lock.withPermits(1)(client.connection.write(chunks)).pipe(
    // `send` cannot fail: a connection that cannot be written is dropped, and its reader reports the disconnect.
    Effect.catchAll(() => client.connection.abort)
  )
}

export const make: Effect.Effect<ServerProtocol, never, Scope.Scope> = Effect.gen(function*() {
  const disconnects = yield* Mailbox.make<number>()
  yield* Effect.addFinalizer(() => disconnects.shutdown)
  const clients = new Map<number, Client>()
  const clientIds = new Set<number>()
  let nextId = 0
  let writeRequest: (clientId: number, message: RpcMessage.FromClientEncoded) => Effect.Effect<void> = () =>
    Effect.void

  const protocol = yield* RpcServer.Protocol.make((write_) => {
    writeRequest = write_
    return Effect.succeed({
      disconnects,
      send: (clientId, response) => {
        const client = clients.get(clientId)
        return client === undefined ? Effect.void : write(client, response)
      },
      // The client said `Eof` and its requests are done: nothing more will be sent either way.
      end: (clientId) => {
        const client = clients.get(clientId)
        return client === undefined ? Effect.void : client.connection.close
      },
      clientIds: Effect.sync(() => clientIds as ReadonlySet<number>),
      initialMessage: Effect.succeedNone,
      supportsAck: true,
      supportsTransferables: false,
      supportsSpanPropagation: true
    })
  })

  const serve = <E>(connection: Connection<E>, codec: WireCodec): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function*() {
      const id = nextId++
      const client: Client = { connection: connection as Connection<unknown>, codec, lock: yield* Effect.makeSemaphore(1) }
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          clients.delete(id)
          clientIds.delete(id)
          return disconnects.offer(id)
        })
      )
      clients.set(id, client)
      clientIds.add(id)
      while (true) {
        const chunks = yield* connection.read
        if (Transport.isEof(chunks)) return
        const decoded = codec.decode(chunks)
        if (Either.isLeft(decoded)) {
          // Tell the client why before hanging up; its codec cannot be trusted past this point.
          yield* Effect.logWarning("rpc: undecodable input, closing the connection").pipe(
            Effect.annotateLogs({ clientId: id, reason: decoded.left.message })
          )
          return yield* write(client, ResponseDefectEncoded(decoded.left.message))
        }
        const messages = decoded.right as ReadonlyArray<RpcMessage.FromClientEncoded>
        for (let i = 0; i < messages.length; i++) yield* writeRequest(id, messages[i]!)
      }
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.logDebug("rpc: connection ended", cause).pipe(Effect.annotateLogs("address", connection.address ?? ""))
      ),
      Effect.annotateLogs("module", "effect-wire/rpc")
    )

  return { protocol, serve }
})
