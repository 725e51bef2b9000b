import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Socket from "../../src/zmtp/Socket.js"

const text = (bytes: Uint8Array | undefined) => bytes === undefined ? "<none>" : new TextDecoder().decode(bytes)
const texts = (message: ReadonlyArray<Uint8Array>) => message.map(text)
let n = 0
const endpoint = () => `memory://socket-test-${n++}`

describe("Socket", () => {
  it.scoped("DEALER to ROUTER with an identity, and the reply back", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER" })
      yield* router.bind(address)
      const dealer = yield* Socket.make({ type: "DEALER", identity: "worker-1" })
      yield* dealer.connect(address)
      yield* dealer.send([Socket.frame(""), Socket.frame("hello")])
      const request = yield* router.receive
      assert.deepStrictEqual(texts(request), ["worker-1", "", "hello"])
      yield* router.send([request[0]!, Socket.frame(""), Socket.frame("world")])
      assert.deepStrictEqual(texts(yield* dealer.receive), ["", "world"])
    }))
})
