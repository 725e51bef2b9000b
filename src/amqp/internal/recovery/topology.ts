import * as Effect from "effect/Effect"
import type { AmqpChannel, ExchangeDeclareOptions, QueueDeclareOptions } from "../../Channel.js"
import type { ClientError } from "../../ClientError.js"
import type { AmqpConnection } from "../../Connection.js"
import type { FieldTable } from "../../Table.js"

/** @internal */
export interface ExchangeRecord {
  readonly name: string
  readonly type: string
  readonly options: ExchangeDeclareOptions | undefined
}

/** @internal */
export interface QueueRecord {
  /** The name the program knows the queue by: the one it declared, or the first one the broker generated. */
  readonly key: string
  /** Declared with an empty name: the broker picks a new name on every redeclare. */
  readonly serverNamed: boolean
  readonly options: QueueDeclareOptions | undefined
}

/** @internal */
export interface BindingRecord {
  readonly kind: "queue" | "exchange"
  readonly destination: string
  readonly source: string
  readonly routingKey: string
  readonly args: FieldTable | undefined
}

const bindingId = (b: BindingRecord) => `${b.kind}\u0000${b.destination}\u0000${b.source}\u0000${b.routingKey}`

/**
 * The topology declared through recovering channels, in declaration order, so that it can be declared again on a
 * new connection. Passive declares are checks, not declarations, and are not recorded.
 *
 * @internal
 */
export class Topology {
  readonly exchanges = new Map<string, ExchangeRecord>()
  readonly queues = new Map<string, QueueRecord>()
  readonly bindings = new Map<string, BindingRecord>()
  /** A server-named queue's name → its name on the current connection. */
  private readonly renamed = new Map<string, string>()
  private readonly current = new Map<string, string>()

  /** The queue's name on the current connection, for any name the program may hold. */
  resolve(name: string): string {
    return this.renamed.get(name) ?? name
  }

  /** The record key of a name (the first name of a renamed server-named queue). */
  private keyOf(name: string): string {
    for (const [key, now] of this.current) if (now === name) return key
    return name
  }

  exchangeDeclared(name: string, type: string, options: ExchangeDeclareOptions | undefined): void {
    if (options?.passive === true) return
    this.exchanges.delete(name)
    this.exchanges.set(name, { name, type, options })
  }

  exchangeDeleted(name: string): void {
    this.exchanges.delete(name)
    for (const [id, b] of this.bindings) {
      if (b.source === name || (b.kind === "exchange" && b.destination === name)) this.bindings.delete(id)
    }
  }

  queueDeclared(requested: string, actual: string, options: QueueDeclareOptions | undefined): void {
    if (options?.passive === true) return
    const key = requested === "" ? actual : this.keyOf(requested)
    if (this.queues.has(key)) return
    this.queues.set(key, { key, serverNamed: requested === "", options })
    this.current.set(key, actual)
  }

  queueDeleted(name: string): void {
    const key = this.keyOf(this.resolve(name))
    const now = this.current.get(key) ?? key
    this.queues.delete(key)
    this.current.delete(key)
    this.renamed.delete(key)
    for (const [id, b] of this.bindings) {
      if (b.kind === "queue" && (b.destination === key || b.destination === now)) this.bindings.delete(id)
    }
  }

  bound(binding: BindingRecord): void {
    const normal = binding.kind === "queue" ? { ...binding, destination: this.keyOf(this.resolve(binding.destination)) } : binding
    this.bindings.set(bindingId(normal), normal)
  }

  unbound(binding: BindingRecord): void {
    const normal = binding.kind === "queue" ? { ...binding, destination: this.keyOf(this.resolve(binding.destination)) } : binding
    this.bindings.delete(bindingId(normal))
  }

  /**
   * Declares everything again on `connection`: exchanges, then queues (a server-named queue gets a new name, and
   * its bindings and consumers follow it), then bindings. A declaration the broker refuses (a channel error) is
   * reported through `onRefused` and the replay goes on with a fresh channel; a connection error fails it.
   */
  replay(
    connection: AmqpConnection,
    onRefused: (what: string, error: ClientError) => Effect.Effect<void>
  ): Effect.Effect<void, ClientError> {
    const self = this
    return Effect.gen(function*() {
      let channel: AmqpChannel | undefined
      const step = (what: string, run: (channel: AmqpChannel) => Effect.Effect<void, ClientError>) =>
        Effect.gen(function*() {
          channel ??= yield* connection.channel()
          const result = yield* Effect.either(run(channel))
          if (result._tag === "Left") {
            if (result.left._tag !== "ChannelClosed") return yield* Effect.fail(result.left)
            channel = undefined
            yield* onRefused(what, result.left)
          }
        })
      for (const e of self.exchanges.values()) {
        yield* step(`exchange ${e.name}`, (ch) => ch.exchangeDeclare(e.name, e.type, e.options))
      }
      for (const q of self.queues.values()) {
        yield* step(`queue ${q.key}`, (ch) =>
          Effect.map(ch.queueDeclare(q.serverNamed ? "" : q.key, q.options), (declared) => {
            self.current.set(q.key, declared.queue)
            if (declared.queue !== q.key) self.renamed.set(q.key, declared.queue)
            else self.renamed.delete(q.key)
          }))
      }
      for (const b of self.bindings.values()) {
        yield* step(`binding ${b.source} -> ${b.destination}`, (ch) =>
          b.kind === "queue"
            ? ch.queueBind(self.resolve(b.destination), b.source, b.routingKey, b.args)
            : ch.exchangeBind(b.destination, b.source, b.routingKey, b.args))
      }
    }).pipe(Effect.scoped)
  }
}
