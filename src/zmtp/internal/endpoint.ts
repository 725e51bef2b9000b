import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Memory from "../../transport/Memory.js"
import * as Server from "../../transport/Server.js"
import * as Tcp from "../../transport/Tcp.js"
import type { Transport } from "../../transport/Transport.js"
import type { TransportError } from "../../transport/TransportError.js"
import * as Unix from "../../transport/Unix.js"
import { ZmtpError } from "../ZmtpError.js"

export type Endpoint =
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "Ipc"; readonly path: string }
  | { readonly _tag: "Memory"; readonly name: string }

const invalid = (endpoint: string, detail: string) =>
  new ZmtpError({ reason: "InvalidEndpoint", endpoint, detail })

/** `tcp://host:port` (`*` = all interfaces, `[v6]` in brackets), `ipc://path`, `memory://name` (or `inproc://`). */
export const parse = (endpoint: string): Effect.Effect<Endpoint, ZmtpError> => {
  const match = /^([a-z]+):\/\/(.+)$/.exec(endpoint)
  if (match === null) return Effect.fail(invalid(endpoint, "expected transport://address"))
  const [, scheme, address] = match as unknown as [string, string, string]
  switch (scheme) {
    case "tcp": {
      const tcp = /^(\[[^\]]+\]|[^:]+):(\d+|\*)$/.exec(address)
      if (tcp === null) return Effect.fail(invalid(endpoint, "expected tcp://host:port"))
      const host = tcp[1]!.startsWith("[") ? tcp[1]!.slice(1, -1) : tcp[1]!
      const port = tcp[2] === "*" ? 0 : Number(tcp[2])
      if (port > 65535) return Effect.fail(invalid(endpoint, "port out of range"))
      return Effect.succeed({ _tag: "Tcp", host: host === "*" ? "0.0.0.0" : host, port })
    }
    case "ipc":
      return Effect.succeed({ _tag: "Ipc", path: address })
    case "memory":
    case "inproc":
      return Effect.succeed({ _tag: "Memory", name: address })
    default:
      return Effect.fail(invalid(endpoint, `unsupported transport ${scheme}`))
  }
}

export const format = (endpoint: Endpoint): string => {
  switch (endpoint._tag) {
    case "Tcp":
      return endpoint.host.includes(":") ? `tcp://[${endpoint.host}]:${endpoint.port}` : `tcp://${endpoint.host}:${endpoint.port}`
    case "Ipc":
      return `ipc://${endpoint.path}`
    case "Memory":
      return `memory://${endpoint.name}`
  }
}

/** Process-wide in-memory endpoints, like libzmq's inproc: name → acceptor of the server's end of a pair. */
const memoryEndpoints = new Map<string, (transport: Memory.MemoryTransport) => void>()

export const bindMemory = (
  name: string,
  accept: (transport: Memory.MemoryTransport) => void
): Effect.Effect<void, ZmtpError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      if (memoryEndpoints.has(name)) {
        return Effect.fail(new ZmtpError({ reason: "InvalidEndpoint", endpoint: `memory://${name}`, detail: "address in use" }))
      }
      memoryEndpoints.set(name, accept)
      return Effect.void
    }),
    () => Effect.sync(() => memoryEndpoints.delete(name))
  )

export const connectMemory = (name: string): Effect.Effect<Transport, ZmtpError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const accept = memoryEndpoints.get(name)
      if (accept === undefined) {
        return Effect.fail(
          new ZmtpError({ reason: "Transport", endpoint: `memory://${name}`, code: "ECONNREFUSED", detail: "nothing bound" })
        )
      }
      const [client, server] = Memory.unsafeMakePair({ names: [`${name}#client`, name] })
      accept(server)
      return Effect.succeed(client)
    }),
    (client) => client.abort()
  )

const transportError = (endpoint: string) => (error: TransportError) =>
  new ZmtpError({ reason: "Transport", endpoint, code: error.code, detail: error.message, cause: error })

/** Opens a connection to an endpoint, closed with the scope. */
export const open = (endpoint: Endpoint): Effect.Effect<Transport, ZmtpError, Scope.Scope> => {
  switch (endpoint._tag) {
    case "Memory":
      return connectMemory(endpoint.name)
    case "Tcp":
      return Effect.mapError(
        Tcp.connect({ host: endpoint.host, port: endpoint.port, noDelay: true }),
        transportError(format(endpoint))
      )
    case "Ipc":
      return Effect.mapError(Unix.connect({ path: endpoint.path }), transportError(format(endpoint)))
  }
}

/**
 * Listens on an endpoint until the scope closes; returns the endpoint actually bound (port 0 resolved).
 * `serve` runs one accepted connection to its end; `fork` runs it in the socket's fibers (memory endpoints).
 */
export const listen = (
  endpoint: Endpoint,
  serve: (endpoint: string) => (transport: Transport) => Effect.Effect<void>,
  fork: (effect: Effect.Effect<void>) => void
): Effect.Effect<string, ZmtpError, Scope.Scope> => {
  switch (endpoint._tag) {
    case "Memory": {
      const name = format(endpoint)
      return Effect.as(bindMemory(endpoint.name, (transport) => fork(serve(name)(transport))), name)
    }
    case "Tcp":
    case "Ipc": {
      const requested = format(endpoint)
      let bound = requested
      return Server.make({
        listen: endpoint._tag === "Tcp"
          ? Server.tcp({ host: endpoint.host, port: endpoint.port, noDelay: true })
          : Server.unix(endpoint.path),
        handler: (transport) => serve(bound)(transport),
        // Connections are closed by the socket's linger first; what is left goes at once.
        shutdownTimeout: Duration.millis(100)
      }).pipe(
        Effect.map((server) => {
          const address = server.address
          bound = address._tag === "TcpAddress"
            ? format({ _tag: "Tcp", host: address.host, port: address.port })
            : requested
          return bound
        }),
        Effect.mapError(transportError(requested))
      )
    }
  }
}
