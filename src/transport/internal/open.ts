import * as Duration from "effect/Duration"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import type { ConnectOptions as TcpConnectOptions } from "../Tcp.js"
import type * as Transport from "../Transport.js"
import { fromNodeError, TransportError, type TransportErrorReason } from "../TransportError.js"
import * as Metrics from "./metrics.js"
import { SocketTransport, type SocketOptions } from "./socket.js"

/** Default time allowed to open a connection (TCP connect plus any TLS handshake). */
export const defaultConnectTimeout = Duration.seconds(10)

const noop = () => {}

/**
 * Waits for `event` (`connect`, `secureConnect`, `secure`) on a socket being opened. Fails with the socket's
 * error, or if it closes first.
 */
export const awaitReady = (
  socket: Net.Socket,
  event: string,
  onError: (error: unknown) => TransportError
): Effect.Effect<void, TransportError> =>
  Effect.async<void, TransportError>((resume) => {
    const cleanup = () => {
      socket.off(event, onReady)
      socket.off("error", onFailure)
      socket.off("close", onClose)
    }
    const onReady = () => {
      cleanup()
      resume(Effect.void)
    }
    const onFailure = (error: unknown) => {
      cleanup()
      resume(Effect.fail(onError(error)))
    }
    const onClose = () => onFailure(new Error("socket closed while opening"))
    socket.on(event, onReady)
    socket.on("error", onFailure)
    socket.on("close", onClose)
    return Effect.sync(cleanup)
  })

/** Destroys a socket and waits until its handle is released. */
export const destroy = (socket: Net.Socket): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.closed) return resume(Effect.void)
    const onClose = () => resume(Effect.void)
    socket.once("close", onClose)
    socket.destroy()
    return Effect.sync(() => socket.off("close", onClose))
  })

/** How a failure while opening maps to a reason: before the TCP connection it is `Connect`, after it `Tls`. */
export const openError = (address: string, raw: Net.Socket) => (error: unknown): TransportError => {
  const reason: TransportErrorReason = raw.connecting || raw.pending ? "Connect" : "Tls"
  return fromNodeError(reason, error, address)
}

/**
 * Opens a socket with `open`, runs `handshake` on it within `timeout`, and turns the result into a transport
 * owned by the current scope (aborted when the scope closes). Whatever fails or is interrupted on the way
 * destroys the sockets before returning.
 */
export const openTransport = (options: {
  readonly address: string
  readonly timeout: Duration.DurationInput | undefined
  readonly open: () => Net.Socket
  /** Makes the socket ready; a socket it layers on `raw` (TLS) is passed to `track` at once, for cleanup. */
  readonly handshake: (raw: Net.Socket, track: (socket: Net.Socket) => void) => Effect.Effect<Net.Socket, TransportError>
  readonly adapter: Omit<SocketOptions, "raw">
  readonly resettable: boolean
  /** The `transport` tag of the metrics, for a connect that fails (the adapter tags its own). */
  readonly kind: Metrics.Kind
}): Effect.Effect<Transport.Transport, TransportError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const raw = options.open()
      // Errors are taken by `awaitReady` and then by the adapter; this one only keeps a stray one from crashing.
      raw.on("error", noop)
      let socket: Net.Socket = raw
      const track = (s: Net.Socket) => {
        socket = s
        s.on("error", noop)
      }
      const opened = yield* Effect.exit(restore(
        options.handshake(raw, track).pipe(
          Effect.timeoutFail({
            duration: options.timeout ?? defaultConnectTimeout,
            onTimeout: () =>
              new TransportError({
                reason: "ConnectTimeout",
                address: options.address,
                detail: `not connected within ${Duration.format(options.timeout ?? defaultConnectTimeout)}`
              })
          })
        )
      ))
      if (opened._tag === "Failure") {
        const error = Cause.failureOption(opened.cause)
        if (error._tag === "Some") Metrics.failed(options.kind, error.value)
        yield* Effect.zipRight(destroy(socket), destroy(raw))
        return yield* Effect.failCause(opened.cause)
      }
      const adapter = new SocketTransport(socket, { ...options.adapter, raw, resettable: options.resettable })
      yield* Effect.addFinalizer(() =>
        adapter.transport.abort().pipe(Effect.zipRight(destroy(socket)), Effect.zipRight(destroy(raw)))
      )
      return adapter.transport
    })
  )

/** Node options for a TCP connection: half-open allowed, Nagle off unless asked. */
export const netOptions = (options: TcpConnectOptions): Net.NetConnectOpts => ({
  host: options.host,
  port: options.port,
  allowHalfOpen: true,
  noDelay: options.noDelay ?? true,
  keepAlive: options.keepAlive ?? false,
  ...(options.keepAliveInitialDelay !== undefined
    ? { keepAliveInitialDelay: Duration.toMillis(options.keepAliveInitialDelay) }
    : {}),
  ...(options.family !== undefined ? { family: options.family } : {}),
  ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
  ...(options.highWaterMark !== undefined ? { highWaterMark: options.highWaterMark } : {})
})
