import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"
import * as Frame from "../../src/mux/Frame.js"
import * as Heartbeat from "../../src/mux/Heartbeat.js"
import * as Session from "../../src/mux/Session.js"
import * as TypedSession from "../../src/mux/TypedSession.js"
import * as Memory from "../../src/transport/Memory.js"
import { ascii, data, rawPeer, text } from "./support.js"

const withRaw = (role: Session.Role, typed?: TypedSession.Options) =>
  Effect.gen(function*() {
    const [a, b] = yield* Memory.pair({ highWaterMark: 1 << 20 })
    const session = yield* Session.make(a, { role, closeTimeout: "200 millis" })
    const typedSession = yield* TypedSession.make(session, typed)
    return { session, typed: typedSession, raw: rawPeer(b) }
  })

const pairOfTyped = (server?: TypedSession.Options) =>
  Effect.gen(function*() {
    const [a, b] = yield* Memory.pair()
    const client = yield* TypedSession.make(yield* Session.make(a, { role: "client" }))
    const serverTyped = yield* TypedSession.make(yield* Session.make(b, { role: "server" }), server)
    return { client, server: serverTyped }
  })

describe("TypedSession", () => {
  it.scopedLive("§9.2: the four type bytes are the SYN frame; later writes are separate frames", () =>
    Effect.gen(function*() {
      const { raw, typed } = yield* withRaw("client")
      const stream = yield* typed.openTyped(0x01020304)
      yield* stream.write(ascii("x"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 12 00 00 00 03 01 02 03 04")
      assert.strictEqual(yield* raw.nextHex, "00 00 01 10 00 00 00 03 78")
    }))

  it.scopedLive("accept reads exactly four bytes across frames; a stream that ends early fails alone", () =>
    Effect.gen(function*() {
      const { raw, typed } = yield* withRaw("server")
      yield* raw.send(
        data(3, "", { syn: true, fin: true }), // Go's B4 case: an empty SYN|FIN typed stream
        data(5, new Uint8Array([0, 0]), { syn: true }),
        data(5, new Uint8Array([0, 7, 0x68, 0x69]))
      )
      const stream = yield* typed.acceptTyped
      assert.strictEqual(stream.id, 5)
      assert.strictEqual(stream.streamType, 7)
      assert.strictEqual(text((yield* stream.read) as ReadonlyArray<Uint8Array>), "hi")
    }))

  it.scoped("a stream that never sends its type is cancelled after typeTimeout; accept goes on", () =>
    Effect.gen(function*() {
      const { client, server } = yield* pairOfTyped({ typeTimeout: "2 seconds" })
      const silent = yield* client.session.open({ eager: true })
      const accepting = yield* Effect.fork(server.acceptTyped)
      yield* TestClock.adjust("3 seconds")
      const error = yield* Effect.flip(silent.read)
      assert.strictEqual(error.reason, "StreamReset")
      assert.strictEqual(error.code, 6)
      const good = yield* client.openTyped(42, ascii("payload"))
      const accepted = yield* Fiber.join(accepting)
      assert.strictEqual(accepted.id, good.id)
      assert.strictEqual(accepted.streamType, 42)
      assert.strictEqual(text((yield* accepted.read) as ReadonlyArray<Uint8Array>), "payload")
    }))
})

describe("Heartbeat", () => {
  it.scoped("beats report a latency every interval, against our own responder", () =>
    Effect.gen(function*() {
      const { client } = yield* pairOfTyped()
      const heartbeat = yield* Heartbeat.make(client, { interval: "1 second", tolerance: "1 second" })
      const events = yield* heartbeat.subscribe
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("1 second")
        const event = yield* Queue.take(events)
        assert.strictEqual(event._tag, "Beat", JSON.stringify(event))
        if (event._tag === "Beat") assert.isTrue(Duration.lessThan(event.latency, Duration.millis(10)))
      }
    }))

  it.scoped("a peer that does not echo gives Timeout events (never a zero latency), and the requester keeps going", () =>
    Effect.gen(function*() {
      const { client, server } = yield* pairOfTyped({ respondToHeartbeats: false })
      const heartbeat = yield* Heartbeat.make(client, { interval: "1 second", tolerance: "2 seconds" })
      const events = yield* heartbeat.subscribe
      const hbStream = yield* server.acceptTyped
      assert.strictEqual(hbStream.streamType, TypedSession.HeartbeatType)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("3 seconds")
      const first = yield* Queue.take(events)
      assert.strictEqual(first._tag, "Timeout")
      // The timed-out stream was cancelled; the next beat opens a fresh heartbeat stream.
      const next = yield* Effect.fork(server.acceptTyped)
      yield* TestClock.adjust("1 second")
      const fresh = yield* Fiber.join(next)
      assert.strictEqual(fresh.streamType, TypedSession.HeartbeatType)
      assert.notStrictEqual(fresh.id, hbStream.id)
    }))

  it.scoped("closeAfterTimeouts closes the session after that many timeouts in a row", () =>
    Effect.gen(function*() {
      const { client, server } = yield* pairOfTyped({ respondToHeartbeats: false })
      yield* Effect.forkScoped(Effect.forever(server.acceptTyped))
      yield* Heartbeat.make(client, { interval: "1 second", tolerance: "1 second", closeAfterTimeouts: 2 })
      for (let i = 0; i < 8; i++) yield* TestClock.adjust("1 second")
      const end = yield* client.session.await
      assert.strictEqual(end.local.reason, "SessionClosed")
      const remote = yield* server.session.await
      assert.strictEqual(remote.remote?.code, 0)
      assert.strictEqual(remote.remote && Frame.debugText(remote.remote), "heartbeat timeout")
    }))

  it.scopedLive("§9.3 on the wire: SYN ffffffff at start, a u32 ID with the top bit clear, WNDINC 4 after the echo", () =>
    Effect.gen(function*() {
      const { raw, typed } = yield* withRaw("client")
      const heartbeat = yield* Heartbeat.make(typed, { interval: "50 millis", tolerance: "1 second" })
      const events = yield* heartbeat.subscribe
      assert.strictEqual(yield* raw.nextHex, "00 00 04 12 00 00 00 03 ff ff ff ff")
      const beat = yield* raw.next
      assert.isTrue(beat !== "eof" && beat._tag === "Data" && beat.payload.length === 4 && !beat.syn)
      if (beat !== "eof" && beat._tag === "Data") {
        assert.strictEqual(beat.payload[0]! & 0x80, 0)
        yield* raw.send(data(3, beat.payload))
      }
      const event = yield* Queue.take(events)
      assert.strictEqual(event._tag, "Beat")
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 04")
    }))
})

describe("Resources", () => {
  it.scopedLive("closing the scope mid-flight (heartbeat, typed accept, blocked writer, pending accept) leaves no fiber running", () =>
    Effect.gen(function*() {
      const supervisor = yield* Supervisor.track
      yield* Effect.scoped(Effect.gen(function*() {
        const { client, server } = yield* pairOfTyped({ respondToHeartbeats: true })
        yield* Heartbeat.make(client, { interval: "10 millis", tolerance: "1 second" })
        yield* Effect.forkScoped(server.acceptTyped)
        yield* Effect.forkScoped(client.acceptTyped)
        const stream = yield* client.openTyped(9)
        yield* Effect.forkScoped(stream.write(new Uint8Array(1024 * 1024)))
        yield* Effect.sleep("50 millis")
        // Sessions, typed dispatchers, heartbeat, accepts and the writer: all alive now.
        assert.isAbove((yield* supervisor.value).length, 8)
      })).pipe(Effect.supervised(supervisor))
      const fibers = yield* supervisor.value
      const running = yield* Effect.filter(fibers, (fiber) => Effect.map(fiber.status, (status) => status._tag !== "Done"))
      assert.strictEqual(running.length, 0)
    }))
})
