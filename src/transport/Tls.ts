/**
 * TLS client connections as `Transport`s, on `node:tls`, and STARTTLS upgrades of live TCP transports.
 *
 * Certificates are verified by default (`rejectUnauthorized: true`) against `ca` or Node's bundled roots, and
 * the server name is checked against the certificate. A failed handshake or verification fails with reason
 * `Tls` and the OpenSSL/Node code (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_TLS_CERT_ALTNAME_INVALID`, …).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as NodeTls from "node:tls"
import * as Address from "./Address.js"
import { awaitReady, defaultConnectTimeout, destroy, netOptions, openError, openTransport } from "./internal/open.js"
import * as Metrics from "./internal/metrics.js"
import { adapterOf, SocketTransport } from "./internal/socket.js"
import { type Pem, secureContextOptions } from "./internal/tlsOptions.js"
import * as Tcp from "./Tcp.js"
import * as Transport from "./Transport.js"
import { fromNodeError, TransportError } from "./TransportError.js"

/**
 * PEM text or DER/PEM bytes.
 *
 * @since 0.1.0
 * @category models
 */
export type { Pem }

/**
 * What a TLS client presents and trusts.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** The name sent by SNI and checked against the certificate. Default: `host`, unless it is an IP address. */
  readonly servername?: string | undefined
  /** Trusted CAs. Default: Node's bundled root certificates. */
  readonly ca?: Pem | ReadonlyArray<Pem> | undefined
  /** A client certificate chain, for servers that ask for one. */
  readonly cert?: Pem | ReadonlyArray<Pem> | undefined
  readonly key?: Redacted.Redacted<Pem> | undefined
  readonly passphrase?: Redacted.Redacted<string> | undefined
  /** Protocols offered by ALPN, in order of preference; the chosen one is in `info.tls.alpnProtocol`. */
  readonly alpnProtocols?: ReadonlyArray<string> | undefined
  /** Verify the server's certificate and name. Default: `true`. Turn off only for tests against throwaway peers. */
  readonly rejectUnauthorized?: boolean | undefined
  readonly minVersion?: NodeTls.SecureVersion | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends Tcp.ConnectOptions, ClientOptions {}

/** Node honours `allowHalfOpen` for TLS client sockets; its typings do not list it. */
type HalfOpenConnectionOptions = NodeTls.ConnectionOptions & { readonly allowHalfOpen: boolean }

const clientTlsOptions = (host: string, options: ClientOptions): HalfOpenConnectionOptions => {
  const servername = options.servername ?? (Net.isIP(host) === 0 ? host : undefined)
  return {
    ...secureContextOptions(options),
    allowHalfOpen: true,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(servername !== undefined ? { servername } : {}),
    ...(options.alpnProtocols !== undefined ? { ALPNProtocols: [...options.alpnProtocols] } : {}),
    ...(options.minVersion !== undefined ? { minVersion: options.minVersion } : {})
  }
}

/** Runs the client handshake over a connected socket. */
const handshake = (
  raw: Net.Socket,
  host: string,
  options: ClientOptions,
  address: string,
  track: (socket: Net.Socket) => void
) =>
  Effect.suspend(() => {
    const socket = NodeTls.connect({ ...clientTlsOptions(host, options), socket: raw })
    track(socket)
    return awaitReady(socket, "secureConnect", (error) => fromNodeError("Tls", error, address)).pipe(Effect.as(socket))
  })

/**
 * Opens a TLS connection: TCP connect, then the handshake, both within `connectTimeout`. The transport belongs to
 * the current scope; `abort` resets the TCP connection.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { Tls } from "effect-wire/transport"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const transport = yield* Tls.connect({ host: "broker.example", port: 5671, alpnProtocols: ["amqp"] })
 *   const info = yield* transport.info
 *   return info.tls?.protocol
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectOptions): Effect.Effect<Transport.Transport, TransportError, Scope.Scope> => {
  const address = Address.format(Address.tcp(options.host, options.port))
  return openTransport({
    address,
    timeout: options.connectTimeout,
    open: () => Net.connect(netOptions(options)),
    handshake: (raw, track) =>
      awaitReady(raw, "connect", openError(address, raw)).pipe(
        Effect.zipRight(handshake(raw, options.host, options, address, track))
      ),
    adapter: { readHighWaterMark: options.readHighWaterMark, idleTimeout: options.idleTimeout },
    resettable: true,
    kind: "tls"
  }).pipe(
    Effect.withSpan("Tls.connect", {
      kind: "client",
      attributes: { "network.transport": "tcp", "tls": true, "server.address": options.host, "server.port": options.port }
    })
  )
}

/**
 * A connection as the `CurrentTransport` of a program, open for the layer's lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ConnectOptions): Layer.Layer<Transport.CurrentTransport, TransportError> =>
  Layer.scoped(Transport.CurrentTransport, connect(options))

/**
 * `layer` with its options read from `Config` (keys and certificates as `Config.redacted`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConnectOptions>
): Layer.Layer<Transport.CurrentTransport, TransportError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * @since 0.1.0
 * @category models
 */
export type UpgradeOptions =
  | ({ readonly role: "client"; readonly host: string } & ClientOptions)
  | {
    readonly role: "server"
    readonly cert: Pem | ReadonlyArray<Pem>
    readonly key: Redacted.Redacted<Pem>
    readonly passphrase?: Redacted.Redacted<string> | undefined
    readonly ca?: Pem | ReadonlyArray<Pem> | undefined
    readonly requestCert?: boolean | undefined
    readonly rejectUnauthorized?: boolean | undefined
    readonly alpnProtocols?: ReadonlyArray<string> | undefined
  }

/**
 * The server side of a handshake over an accepted socket. The socket is handed to a (never listening)
 * `tls.Server`, which is what verifies client certificates, exactly as for sockets it accepts itself.
 */
const acceptTls = (
  raw: Net.Socket,
  options: Extract<UpgradeOptions, { readonly role: "server" }>,
  address: string,
  timeout: Duration.DurationInput,
  onSocket: (socket: NodeTls.TLSSocket) => void
): Effect.Effect<void, TransportError> =>
  Effect.async<void, TransportError>((resume) => {
    const requestCert = options.requestCert ?? false
    const server = NodeTls.createServer({
      ...secureContextOptions(options),
      allowHalfOpen: true,
      requestCert,
      rejectUnauthorized: requestCert && (options.rejectUnauthorized ?? true),
      handshakeTimeout: Duration.toMillis(timeout),
      ...(options.alpnProtocols !== undefined ? { ALPNProtocols: [...options.alpnProtocols] } : {})
    })
    const cleanup = () => {
      server.off("secureConnection", onSecure)
      server.off("tlsClientError", onError)
    }
    const onSecure = (socket: NodeTls.TLSSocket) => {
      cleanup()
      socket.on("error", () => {})
      onSocket(socket)
      resume(Effect.void)
    }
    const onError = (error: Error, socket: NodeTls.TLSSocket) => {
      cleanup()
      onSocket(socket)
      resume(Effect.fail(fromNodeError("Tls", error, address)))
    }
    server.on("secureConnection", onSecure)
    server.on("tlsClientError", onError)
    server.emit("connection", raw)
    return Effect.sync(cleanup)
  })

/**
 * STARTTLS: runs a TLS handshake over a live TCP or Unix transport made by this library (`Tcp.connect`,
 * `Unix.connect` or a `Server` connection) and returns the secured transport. The plain transport must have no
 * unread bytes; it is consumed (its operations fail with `Closed` afterwards). The new transport belongs to the
 * current scope.
 *
 * As a server, client certificates are verified when `requestCert` is set (unless `rejectUnauthorized: false`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const upgrade = (
  transport: Transport.Transport,
  options: UpgradeOptions & { readonly handshakeTimeout?: Duration.DurationInput | undefined }
): Effect.Effect<Transport.Transport, TransportError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const adapter = adapterOf(transport)
      if (adapter === undefined) {
        return yield* new TransportError({ reason: "Unsupported", detail: "upgrade needs a socket transport" })
      }
      const info = yield* transport.info
      const address = Address.format(info.remote)
      const raw = yield* adapter.detach()
      const timeout = options.handshakeTimeout ?? defaultConnectTimeout
      let socket: Net.Socket = raw
      const onTimeout = () =>
        new TransportError({ reason: "ConnectTimeout", address, detail: `no TLS handshake within ${Duration.format(timeout)}` })
      const ready = yield* Effect.exit(restore(
        (options.role === "client"
          ? Effect.suspend(() => {
            const client = NodeTls.connect({ ...clientTlsOptions(options.host, options), socket: raw })
            socket = client
            client.on("error", () => {})
            return awaitReady(client, "secureConnect", (error) => fromNodeError("Tls", error, address))
          })
          : acceptTls(raw, options, address, timeout, (s) => {
            socket = s
          })).pipe(Effect.timeoutFail({ duration: timeout, onTimeout }))
      ))
      if (ready._tag === "Failure") {
        const error = Cause.failureOption(ready.cause)
        if (error._tag === "Some") Metrics.failed("tls", error.value)
        yield* Effect.zipRight(destroy(socket), destroy(raw))
        return yield* Effect.failCause(ready.cause)
      }
      const secured = new SocketTransport(socket, { raw, resettable: info.remote._tag === "TcpAddress", local: info.local, remote: info.remote })
      yield* Effect.addFinalizer(() =>
        secured.transport.abort().pipe(Effect.zipRight(destroy(socket)), Effect.zipRight(destroy(raw)))
      )
      return secured.transport
    })
  )
