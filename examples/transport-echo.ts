/**
 * A line-echo server with a connection limit, an idle timeout and graceful shutdown, and a client that finds it
 * through a connection strategy (the first address refuses; the second answers).
 *
 *   npm run example examples/transport-echo.ts
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Connect, Server, Transport } from "../src/transport/index.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

// Echoes every byte back until the client half-closes, then half-closes too.
const echo = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* transport.read
      if (Transport.isEof(chunks)) return yield* transport.shutdownWrite
      yield* transport.writeAll(chunks)
    }
  })

const program = Effect.gen(function*() {
  const server = yield* Server.make({
    listen: Server.tcp({ host: "127.0.0.1", port: 0 }),
    handler: echo,
    maxConnections: 100,
    idleTimeout: "30 seconds",
    shutdownTimeout: "2 seconds"
  })
  // `subscribe` subscribes now, so that no event is missed by the fiber that prints them.
  yield* Stream.fromQueue(yield* server.subscribe).pipe(
    Stream.runForEach((event) => Console.log(`server: ${event._tag}${"reason" in event ? ` (${event.reason})` : ""}`)),
    Effect.forkScoped
  )
  if (server.address._tag !== "TcpAddress") return
  yield* Console.log(`listening on port ${server.address.port}`)

  const connector = yield* Connect.make({
    endpoints: [
      Connect.tcp({ host: "127.0.0.1", port: 1 }), // nothing listens there
      Connect.tcp({ host: "127.0.0.1", port: server.address.port })
    ],
    connectTimeout: "2 seconds",
    schedule: Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(5)))
  })
  yield* Stream.fromQueue(yield* connector.subscribe).pipe(
    Stream.runForEach((event) => Console.log(`client: ${event._tag}`)),
    Effect.forkScoped
  )

  const reply = yield* Effect.scoped(Effect.gen(function*() {
    const transport = yield* connector.connect
    yield* transport.writeAll([encoder.encode("hello, "), encoder.encode("wire\n")])
    yield* transport.shutdownWrite
    const received = yield* Transport.toStream(transport).pipe(Stream.runCollect)
    return decoder.decode(Transport.concat([...received]))
  }))
  yield* Console.log(`echoed: ${reply.trim()}`)
  yield* server.shutdown()
})

Effect.runPromise(Effect.scoped(program))
