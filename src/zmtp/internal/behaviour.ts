import * as Effect from "effect/Effect"
import * as Command from "../Command.js"
import type { Message } from "../Frame.js"
import { ZmtpError } from "../ZmtpError.js"
import type { Counters } from "./counters.js"
import type { Inbound, Peer } from "./peer.js"
import { keyOf, Subscriptions } from "./peer.js"
import type { FairQueue, Signal } from "./pipe.js"

export type { Inbound } from "./peer.js"

/** What every behaviour shares with the socket. */
export interface Core {
  readonly type: string
  readonly inbox: FairQueue<Inbound>
  /** Notified when a pipe gains room or peers come and go. */
  readonly signal: Signal
  readonly peers: Set<Peer>
  readonly routerMandatory: boolean
  readonly routerHandover: boolean
  readonly closed: () => ZmtpError
  readonly counters: Counters
}

/** The part of a socket that differs by type: routing out, queueing in, peer bookkeeping. */
export interface Behaviour {
  /** A `connect` endpoint's peer exists (before its first connection): load-balanced types queue to it already. */
  readonly register: (peer: Peer) => void
  /** A peer finished its handshake; false refuses the connection. */
  readonly attach: (peer: Peer) => boolean
  readonly detach: (peer: Peer) => void
  /** Sends by the type's rules; with `dontWait`, fails with `WouldBlock` where it would wait for room. */
  readonly send: (message: Message, dontWait: boolean) => Effect.Effect<void, ZmtpError>
  /** `send` with `dontWait`, synchronously, where the type has such a path: the error, or undefined when sent. */
  readonly offer?: ((message: Message) => ZmtpError | undefined) | undefined
  readonly receive: Effect.Effect<Message, ZmtpError>
  /** A whole message from a peer; false when its lane is full (the connection's reader waits for room). */
  readonly deliver: (peer: Peer, message: Message) => boolean
  /** What the connection's reader does after `deliver` or `onSubscription` said false, before it tries again. */
  readonly awaitRoom: (peer: Peer) => Effect.Effect<void>
  /** SUBSCRIBE / CANCEL from a peer; false when it cannot be taken now (the reader waits for room, then retries). */
  readonly onSubscription: (peer: Peer, subscribe: boolean, topic: Uint8Array) => boolean
  readonly subscribe: (topic: Uint8Array, subscribe: boolean) => Effect.Effect<void, ZmtpError>
}

/** Which peer types each socket type may talk to (RFC 37). */
export const compatible: Readonly<Record<string, ReadonlyArray<string>>> = {
  REQ: ["REP", "ROUTER"],
  REP: ["REQ", "DEALER"],
  DEALER: ["REP", "DEALER", "ROUTER"],
  ROUTER: ["REQ", "DEALER", "ROUTER"],
  PUB: ["SUB", "XSUB"],
  XPUB: ["SUB", "XSUB"],
  SUB: ["PUB", "XPUB"],
  XSUB: ["PUB", "XPUB"],
  PUSH: ["PULL"],
  PULL: ["PUSH"],
  PAIR: ["PAIR"]
}

const invalidState = (detail: string) => Effect.fail(new ZmtpError({ reason: "InvalidState", detail }))

const wouldBlock = (detail: string) => new ZmtpError({ reason: "WouldBlock", detail })

const notSupported = (core: Core, what: string) => invalidState(`${core.type} sockets cannot ${what}`)

const receiveAny = (core: Core): Effect.Effect<Message, ZmtpError> =>
  Effect.map(core.inbox.take(core.closed), (item) => item.message)

const deliverToInbox = (core: Core) => (peer: Peer, message: Message) => core.inbox.offer(peer.lane, { peer, message })

const ignoreSubscription = () => true

/** Waits until the peer's lane has room: the connection is not read meanwhile. */
const waitForLane = (core: Core) => (peer: Peer) => core.inbox.awaitRoom(peer.lane)

/** Round-robin over peers whose pipe has room, one whole message at a time; waits while all are full. */
class LoadBalancer {
  readonly active: Array<Peer> = []
  private next = 0

  constructor(private readonly core: Core) {}

  add(peer: Peer) {
    if (!this.active.includes(peer)) this.active.push(peer)
    this.core.signal.notify()
  }

  remove(peer: Peer) {
    const index = this.active.indexOf(peer)
    if (index < 0) return
    this.active.splice(index, 1)
    if (this.next > index) this.next--
  }

  tryOffer(message: Message): Peer | undefined {
    const n = this.active.length
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n
      const peer = this.active[index]!
      if (peer.pipe.offer(message)) {
        this.next = (index + 1) % n
        return peer
      }
    }
    return undefined
  }

  /** Why a message that no peer took cannot be sent without waiting. */
  refusal(): ZmtpError {
    return wouldBlock(this.active.length === 0 ? "no peer" : "every peer's pipe is full")
  }

  send(message: Message, dontWait: boolean): Effect.Effect<Peer, ZmtpError> {
    return Effect.suspend(() => {
      const peer = this.tryOffer(message)
      if (peer !== undefined) return Effect.succeed(peer)
      if (dontWait) return Effect.fail(this.refusal())
      return Effect.flatMap(
        this.core.signal.waitUntil(() => this.active.some((p) => !p.pipe.isFull)),
        () => this.send(message, false)
      )
    })
  }
}

/** DEALER, PUSH, PULL, PAIR: round-robin out (waiting while every pipe is full), fair-queued in. */
const balanced = (
  core: Core,
  options: { readonly sends: boolean; readonly receives: boolean; readonly maxPeers: number },
  lb: LoadBalancer = new LoadBalancer(core)
): Behaviour => {
  const attached = new Set<Peer>()
  const { maxPeers, receives } = options
  return {
    // libzmq's default (not IMMEDIATE): messages queue to a connect endpoint before it is up.
    register: (peer) => lb.add(peer),
    attach: (peer) => {
      if (attached.size >= maxPeers && !attached.has(peer)) return false
      attached.add(peer)
      lb.add(peer)
      return true
    },
    detach: (peer) => {
      attached.delete(peer)
      if (!peer.persistent) lb.remove(peer)
    },
    send: options.sends ? (message, dontWait) => Effect.asVoid(lb.send(message, dontWait)) : () => notSupported(core, "send"),
    offer: options.sends ? (message) => lb.tryOffer(message) === undefined ? lb.refusal() : undefined : undefined,
    receive: receives ? receiveAny(core) : notSupported(core, "receive"),
    deliver: receives ? deliverToInbox(core) : () => true,
    onSubscription: ignoreSubscription,
    awaitRoom: waitForLane(core),
    subscribe: () => notSupported(core, "subscribe")
  }
}

/** ROUTER: routing ids in front of every message, addressed sends, drop or `HostUnreachable` when unknown. */
const router = (core: Core): Behaviour => {
  const routes = new Map<string, Peer>()
  // libzmq: 00 + uint32 BE, from a random start per socket.
  let nextId = (Math.random() * 0x100000000) >>> 0
  const autoId = () => {
    const id = new Uint8Array(5)
    const n = nextId
    nextId = (nextId + 1) >>> 0
    id[1] = n >>> 24
    id[2] = (n >>> 16) & 0xff
    id[3] = (n >>> 8) & 0xff
    id[4] = n & 0xff
    return id
  }
  const unreachable = (routingId: Uint8Array) =>
    new ZmtpError({ reason: "HostUnreachable", routingId, detail: "no peer with this routing id" })
  const drop = Effect.sync(() => {
    core.counters.dropped++
    core.counters.flush()
  })
  const dropOrFail = (routingId: Uint8Array) => core.routerMandatory ? Effect.fail(unreachable(routingId)) : drop
  const dropped = (): undefined => {
    core.counters.dropped++
    core.counters.flush()
    return undefined
  }
  const sendTo = (peer: Peer, routingId: Uint8Array, payload: Message, dontWait: boolean): Effect.Effect<void, ZmtpError> =>
    Effect.suspend(() => {
      if (routes.get(keyOf(routingId)) !== peer) return dropOrFail(routingId)
      if (peer.pipe.offer(payload)) return Effect.void
      if (!core.routerMandatory) return drop
      if (dontWait) return Effect.fail(wouldBlock("the peer's pipe is full"))
      return Effect.flatMap(
        core.signal.waitUntil(() => !peer.pipe.isFull || routes.get(keyOf(routingId)) !== peer),
        () => sendTo(peer, routingId, payload, false)
      )
    })
  return {
    register: () => {},
    attach: (peer) => {
      const identity = peer.connection?.peerIdentity
      if (identity === undefined) {
        peer.routingId = autoId()
      } else {
        const key = keyOf(identity)
        const existing = routes.get(key)
        if (existing !== undefined && existing !== peer) {
          if (!core.routerHandover) {
            // libzmq keeps the newcomer anonymous: connected, its messages dropped.
            peer.routingId = undefined
            return true
          }
          routes.delete(key)
          existing.routingId = undefined
          existing.kick?.()
        }
        peer.routingId = identity
      }
      routes.set(keyOf(peer.routingId), peer)
      core.signal.notify()
      return true
    },
    detach: (peer) => {
      if (peer.routingId !== undefined) {
        const key = keyOf(peer.routingId)
        if (routes.get(key) === peer) routes.delete(key)
      }
      peer.routingId = undefined
      peer.pipe.clear()
      core.signal.notify()
    },
    send: (message, dontWait) =>
      Effect.suspend(() => {
        if (message.length < 2) return drop
        const routingId = message[0]!
        const peer = routes.get(keyOf(routingId))
        if (peer === undefined) return dropOrFail(routingId)
        return sendTo(peer, routingId, message.slice(1), dontWait)
      }),
    offer: (message) => {
      if (message.length < 2) return dropped()
      const routingId = message[0]!
      const peer = routes.get(keyOf(routingId))
      if (peer === undefined) return core.routerMandatory ? unreachable(routingId) : dropped()
      if (peer.pipe.offer(message.slice(1))) return undefined
      return core.routerMandatory ? wouldBlock("the peer's pipe is full") : dropped()
    },
    receive: receiveAny(core),
    deliver: (peer, message) => {
      if (peer.routingId !== undefined) return core.inbox.offer(peer.lane, { peer, message: [peer.routingId, ...message] })
      // A newcomer with an identity in use stays anonymous: its messages go nowhere, as in libzmq.
      core.counters.dropped++
      return true
    },
    onSubscription: ignoreSubscription,
    awaitRoom: waitForLane(core),
    subscribe: () => notSupported(core, "subscribe")
  }
}

const emptyFrame = new Uint8Array(0)

/** REQ: an empty delimiter in front, strict send/receive alternation, replies only from the peer asked. */
const req = (core: Core): Behaviour => {
  const lb = new LoadBalancer(core)
  const base = balanced(core, { sends: true, receives: true, maxPeers: Infinity }, lb)
  let awaiting: Peer | undefined = undefined
  const receive: Effect.Effect<Message, ZmtpError> = Effect.suspend(() => {
    if (awaiting === undefined) return invalidState("REQ must send a request before receiving")
    return Effect.flatMap(core.inbox.take(core.closed), (item): Effect.Effect<Message, ZmtpError> => {
      const message = item.message
      if (item.peer !== awaiting || message.length < 2 || message[0]!.length !== 0) return receive
      awaiting = undefined
      return Effect.succeed(message.slice(1))
    })
  })
  return {
    ...base,
    // No synchronous path: a send changes the socket's state.
    offer: undefined,
    send: (message, dontWait) =>
      Effect.suspend(() => {
        if (awaiting !== undefined) return invalidState("REQ must receive the reply before sending again")
        return Effect.map(lb.send([emptyFrame, ...message], dontWait), (peer) => {
          awaiting = peer
        })
      }),
    receive
  }
}

/** REP: fair-queued requests; the reply goes back with the request's envelope to the peer it came from. */
const rep = (core: Core): Behaviour => {
  let pending: { readonly peer: Peer; readonly envelope: Message } | undefined = undefined
  const receive: Effect.Effect<Message, ZmtpError> = Effect.suspend(() => {
    if (pending !== undefined) return invalidState("REP must send the reply before receiving again")
    return Effect.flatMap(core.inbox.take(core.closed), (item): Effect.Effect<Message, ZmtpError> => {
      const message = item.message
      const delimiter = message.findIndex((frame) => frame.length === 0)
      if (delimiter < 0) return receive
      pending = { peer: item.peer, envelope: message.slice(0, delimiter + 1) }
      return Effect.succeed(message.slice(delimiter + 1))
    })
  })
  return {
    register: () => {},
    attach: () => true,
    detach: (peer) => peer.pipe.clear(),
    send: (message) =>
      Effect.suspend(() => {
        if (pending === undefined) return invalidState("REP must receive a request before replying")
        const { envelope, peer } = pending
        pending = undefined
        // The requester may be gone; like libzmq, the reply is then dropped.
        if (peer.isConnected && peer.pipe.offer([...envelope, ...message])) return Effect.void
        core.counters.dropped++
        core.counters.flush()
        return Effect.void
      }),
    receive,
    deliver: deliverToInbox(core),
    onSubscription: ignoreSubscription,
    awaitRoom: waitForLane(core),
    subscribe: () => notSupported(core, "subscribe")
  }
}

/**
 * PUB / XPUB: fan out to the peers whose subscriptions match frame 0, dropping for each peer whose pipe is full
 * (a slow subscriber loses messages; the others do not wait for it). XPUB passes a subscription up when its prefix
 * gains its first subscriber and a cancel when it loses its last, as libzmq's XPUB does without XPUB_VERBOSE.
 */
const publisher = (core: Core, xpub: boolean): Behaviour => {
  const subscribers = new Set<Peer>()
  /** How many peers subscribe to each prefix. */
  const all = new Subscriptions()
  const notify = (peer: Peer, subscribe: boolean, topic: Uint8Array, force: boolean): boolean => {
    const message = new Uint8Array(topic.length + 1)
    message[0] = subscribe ? 1 : 0
    message.set(topic, 1)
    if (force) {
      core.inbox.force(peer.lane, { peer, message: [message] })
      return true
    }
    return core.inbox.offer(peer.lane, { peer, message: [message] })
  }
  const onSubscription = (peer: Peer, subscribe: boolean, topic: Uint8Array): boolean => {
    // The XPUB application must see the change: with a full lane the reader waits and comes back.
    if (xpub && peer.lane.isFull) return false
    if (subscribe) {
      if (peer.subscriptions.add(topic) && all.add(topic) && xpub) notify(peer, true, topic, false)
    } else if (peer.subscriptions.remove(topic) && all.remove(topic) && xpub) {
      notify(peer, false, topic, false)
    }
    return true
  }
  /** To every matching subscriber with room; dropped for the others. */
  const publish = (message: Message): undefined => {
    const topic = message[0]
    let dropped = 0
    for (const peer of subscribers) {
      if (peer.subscriptions.matches(topic) && !peer.pipe.offer(message)) dropped++
    }
    if (dropped > 0) {
      core.counters.dropped += dropped
      core.counters.flush()
    }
    return undefined
  }
  return {
    register: () => {},
    attach: (peer) => {
      subscribers.add(peer)
      return true
    },
    detach: (peer) => {
      subscribers.delete(peer)
      for (const prefix of peer.subscriptions.prefixes()) {
        while (!peer.subscriptions.remove(prefix)) { /* drop every count */ }
        // Bounded by the prefixes this peer held, which we kept anyway.
        if (all.remove(prefix) && xpub) notify(peer, false, prefix, true)
      }
      peer.pipe.clear()
    },
    send: (message) => Effect.sync(() => publish(message)),
    offer: publish,
    receive: xpub ? receiveAny(core) : notSupported(core, "receive"),
    deliver: (peer, message) => {
      // ZMTP 3.0 subscriptions: a single frame starting with 01 (subscribe) or 00 (cancel). Other messages from
      // subscribers are dropped, as libzmq's PUB does.
      const frame = message[0]!
      if (message.length === 1 && frame.length > 0 && frame[0]! <= 1) {
        return onSubscription(peer, frame[0] === 1, frame.subarray(1))
      }
      return true
    },
    onSubscription,
    awaitRoom: waitForLane(core),
    subscribe: () => notSupported(core, "subscribe")
  }
}

/** Sends a subscription change to one peer in the form its ZMTP version understands. */
const sendSubscription = (peer: Peer, subscribe: boolean, topic: Uint8Array) => {
  const minor = peer.connection?.minor ?? 1
  if (minor >= 1) {
    peer.pipe.offerControl({
      command: true,
      body: Command.encode(subscribe ? Command.subscribe(topic) : Command.cancel(topic))
    })
  } else {
    const body = new Uint8Array(topic.length + 1)
    body[0] = subscribe ? 1 : 0
    body.set(topic, 1)
    peer.pipe.offerControl({ command: false, body })
  }
}

/**
 * SUB / XSUB: subscriptions sent to every publisher (and resent on reconnect), fair-queued in. A full lane drops
 * the message instead of pausing the connection, so a slow application loses messages, not the connection's
 * liveness (PINGs and our subscriptions keep flowing).
 */
const subscriber = (core: Core, raw: boolean): Behaviour => {
  const local = new Subscriptions()
  const publishers = new Set<Peer>()
  const change = (topic: Uint8Array, subscribe: boolean) => {
    const changed = subscribe ? local.add(topic) : local.remove(topic)
    if (changed) for (const peer of publishers) sendSubscription(peer, subscribe, topic)
  }
  return {
    register: () => {},
    attach: (peer) => {
      publishers.add(peer)
      for (const prefix of local.prefixes()) sendSubscription(peer, true, prefix)
      return true
    },
    detach: (peer) => {
      publishers.delete(peer)
      peer.pipe.clear()
    },
    send: (message) =>
      Effect.suspend(() => {
        if (!raw) return notSupported(core, "send")
        const frame = message[0]
        if (message.length === 1 && frame !== undefined && frame.length > 0 && frame[0]! <= 1) {
          change(frame.slice(1), frame[0] === 1)
        } else {
          let dropped = 0
          for (const peer of publishers) if (!peer.pipe.offer(message)) dropped++
          if (dropped > 0) {
            core.counters.dropped += dropped
            core.counters.flush()
          }
        }
        return Effect.void
      }),
    receive: receiveAny(core),
    deliver: (peer, message) => {
      if (!raw && !local.matches(message[0])) return true
      const lane = peer.lane
      if (core.inbox.offer(lane, { peer, message })) {
        lane.grace = false
        return true
      }
      // Full: one read can carry more messages than the mark. The application gets one turn to make room; if it
      // has not, the message is dropped.
      if (!lane.grace) return false
      core.counters.dropped++
      return true
    },
    onSubscription: ignoreSubscription,
    awaitRoom: (peer) =>
      Effect.map(Effect.yieldNow(), () => {
        peer.lane.grace = true
      }),
    subscribe: (topic, subscribe) => Effect.sync(() => change(topic, subscribe))
  }
}

export const make = (core: Core): Behaviour => {
  switch (core.type) {
    case "DEALER":
      return balanced(core, { sends: true, receives: true, maxPeers: Infinity })
    case "ROUTER":
      return router(core)
    case "REQ":
      return req(core)
    case "REP":
      return rep(core)
    case "PUB":
      return publisher(core, false)
    case "XPUB":
      return publisher(core, true)
    case "SUB":
      return subscriber(core, false)
    case "XSUB":
      return subscriber(core, true)
    case "PUSH":
      return balanced(core, { sends: true, receives: false, maxPeers: Infinity })
    case "PULL":
      return balanced(core, { sends: false, receives: true, maxPeers: Infinity })
    default:
      return balanced(core, { sends: true, receives: true, maxPeers: 1 })
  }
}
