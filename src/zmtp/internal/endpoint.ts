import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Memory from "../../transport/Memory.js"
import type { Transport } from "../../transport/Transport.js"
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

/** Opens a connection to an endpoint, closed with the scope. */
export const open = (endpoint: Endpoint): Effect.Effect<Transport, ZmtpError, Scope.Scope> => {
  switch (endpoint._tag) {
    case "Memory":
      return connectMemory(endpoint.name)
    default:
      return Effect.fail(invalid(format(endpoint), "this transport is not available"))
  }
}

/** Listens on an endpoint until the scope closes; returns the endpoint actually bound (port 0 resolved). */
export const listen = (
  endpoint: Endpoint,
  accept: (endpoint: string) => (transport: Transport) => void
): Effect.Effect<string, ZmtpError, Scope.Scope> => {
  switch (endpoint._tag) {
    case "Memory": {
      const name = format(endpoint)
      return Effect.as(bindMemory(endpoint.name, accept(name)), name)
    }
    default:
      return Effect.fail(invalid(format(endpoint), "this transport is not available"))
  }
}
