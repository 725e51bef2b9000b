/**
 * Helpers shared by the in-process ZMTP socket tests.
 */
import * as Effect from "effect/Effect"
import * as Memory from "../../src/transport/Memory.js"
import * as Transport from "../../src/transport/Transport.js"
import * as Frame from "../../src/zmtp/Frame.js"
import * as Socket from "../../src/zmtp/Socket.js"

export const text = (bytes: Uint8Array | undefined) => bytes === undefined ? "<none>" : new TextDecoder().decode(bytes)
export const texts = (message: ReadonlyArray<Uint8Array>) => message.map(text)
export const msg = (...parts: Array<string>) => parts.map(Socket.frame)

let n = 0
export const endpoint = (prefix = "socket-test") => `memory://${prefix}-${n++}`

/** One turn of the event loop: writers send what a turn queued at its end. */
export const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Lets forked fibers run and queued writes leave (handshakes over memory pairs need no clock). */
export const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.zipRight(Effect.yieldNow(), turn), {
  discard: true
})

/** `a` binds, `b` connects, over a fresh memory endpoint. */
export const pair = (a: Socket.Options, b: Socket.Options) =>
  Effect.gen(function*() {
    const address = endpoint()
    const server = yield* Socket.make(a)
    yield* server.bind(address)
    const client = yield* Socket.make(b)
    yield* client.connect(address)
    return [server, client] as const
  })

/** A raw peer on the other end of a memory pair: reads and writes bytes. */
export const rawPeer = (socket: Socket.Socket) =>
  Effect.gen(function*() {
    const [ours, theirs] = yield* Memory.pair()
    yield* socket.attach(ours, "memory://raw")
    let buffer: Uint8Array = new Uint8Array(0)
    const readExactly = (size: number): Effect.Effect<Uint8Array, unknown> =>
      Effect.gen(function*() {
        while (buffer.length < size) {
          const result = yield* theirs.read
          if (Transport.isEof(result)) return yield* Effect.fail("eof")
          buffer = Transport.concat([buffer, ...result])
        }
        const out = buffer.subarray(0, size)
        buffer = buffer.subarray(size)
        return out
      })
    const readFrame = Effect.gen(function*() {
      const head = yield* readExactly(2)
      const size = (head[0]! & Frame.LONG) !== 0
        ? Number(Buffer.from(Transport.concat([head.subarray(1), yield* readExactly(7)])).readBigUInt64BE())
        : head[1]!
      const body = yield* readExactly(size)
      return { flags: head[0]!, body }
    })
    return { transport: theirs, readExactly, readFrame }
  })
