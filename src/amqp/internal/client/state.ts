/**
 * The state the engine keeps per connection and per channel, apart from the code that drives it: the outbound side
 * (`engine.ts`), the reader (`inbound.ts`) and the channel operations (`channel.ts`) all read and write it.
 */
import type * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Mailbox from "effect/Mailbox"
import type { ClientError } from "../../ClientError.js"
import type { Acker, Delivery } from "../../Consumer.js"
import * as Methods from "../../Methods.js"
import type { BasicProperties } from "../../Properties.js"
import type { ReturnedMessage } from "../../Publisher.js"
import type { Completion } from "./completion.js"
import type { ConfirmTracker, Entry } from "./confirms.js"
import type { Engine } from "./engine.js"

/** What a synchronous request resolves with: the reply method, and the content of `basic.get-ok`. */
export interface Reply {
  readonly method: Methods.Method
  readonly properties?: BasicProperties | undefined
  readonly body?: Uint8Array | undefined
}

/** A synchronous request waiting for its reply, in request order. */
export interface PendingRpc {
  readonly expect: ReadonlyArray<Methods.Tag>
  readonly deferred: Deferred.Deferred<Reply, ClientError>
}

/** A consumer of a channel: its deliveries go to a bounded mailbox. */
export interface ConsumerState {
  readonly tag: string
  readonly noAck: boolean
  readonly mailbox: Mailbox.Mailbox<Delivery, ClientError>
  cancelling: boolean
}

/** A message being assembled from its method, header and body frames. */
export interface Content {
  readonly method: Methods.ByTag<"BasicDeliver"> | Methods.ByTag<"BasicReturn"> | Methods.ByTag<"BasicGetOk">
  properties: BasicProperties | undefined
  body: Uint8Array | undefined
  size: number
  received: number
}

/** A publish on a confirm channel, completed when the broker settles it. */
export interface ConfirmEntry extends Entry {
  readonly done: Completion
}

/** One open channel: what waits on it, and what it is in the middle of receiving. */
export class ChannelState {
  status: "open" | "closing" | "closed" = "open"
  error: ClientError | undefined = undefined
  /** The broker closed the channel: nothing but `close-ok` may be written on it. */
  brokerClosed = false
  readonly rpc: Array<PendingRpc> = []
  readonly consumers = new Map<string, ConsumerState>()
  confirms: ConfirmTracker<ConfirmEntry> | undefined = undefined
  readonly returnSubscribers = new Set<Mailbox.Mailbox<ReturnedMessage, ClientError>>()
  content: Content | undefined = undefined
  closeOk: Deferred.Deferred<void> | undefined = undefined
  /** Set while the broker has stopped the channel's publishes (`channel.flow{active=false}`). */
  flowPaused: Completion | undefined = undefined
  readonly acker: Acker
  constructor(
    readonly id: number,
    readonly lock: Effect.Semaphore,
    engine: Engine
  ) {
    this.acker = {
      ack: (deliveryTag, multiple) => engine.post(this, Methods.make("BasicAck", { deliveryTag, multiple })),
      nack: (deliveryTag, multiple, requeue) =>
        engine.post(this, Methods.make("BasicNack", { deliveryTag, multiple, requeue })),
      reject: (deliveryTag, requeue) => engine.post(this, Methods.make("BasicReject", { deliveryTag, requeue }))
    }
  }
}

/** The limits the engine enforces, from the tuning and the connection's options. */
export interface EngineConfig {
  readonly frameMax: number
  readonly channelMax: number
  readonly closeTimeout: Duration.Duration
  readonly maxMessageSize: number
}
