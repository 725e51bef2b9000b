/**
 * The NULL mechanism: no security, each side sends `READY` with its metadata.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Command from "./Command.js"
import type { Mechanism } from "./Mechanism.js"
import { ZmtpError } from "./ZmtpError.js"

/**
 * Sends our READY immediately, then reads the peer's (deadlock-free against both readings of RFC 23 and 37).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Mechanism => ({
  name: "NULL",
  asServer: false,
  handshake: (io, context) =>
    Effect.gen(function*() {
      yield* io.send(Command.encode(Command.ready(context.metadata)))
      const command = yield* Effect.flatMap(io.receive, Command.decode)
      switch (command._tag) {
        case "Ready":
          return { metadata: command.metadata, cipher: undefined, userId: undefined }
        case "Error":
          return yield* new ZmtpError({ reason: "PeerError", code: command.reason, detail: "peer refused the handshake" })
        default:
          return yield* new ZmtpError({
            reason: "HandshakeFailed",
            detail: `expected READY, got ${command._tag === "Unknown" ? command.name : command._tag.toUpperCase()}`
          })
      }
    })
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const mechanism: Mechanism = make()
