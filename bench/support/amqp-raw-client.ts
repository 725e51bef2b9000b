/**
 * A minimal AMQP client on effect-wire's codec over a plain `net.Socket`, for the codec benchmarks: it does the
 * handshake, opens channel 1, then either publishes through `Frame.Encoder` (one coalesced write per batch, as
 * the client's writer fiber does) or consumes deliveries through `Frame.Parser`, assembling each message from
 * its method, header and body frames.
 */
import * as Net from "node:net"
import * as Frame from "../../src/amqp/Frame.js"
import * as Methods from "../../src/amqp/Methods.js"
import type * as Properties from "../../src/amqp/Properties.js"
import { PROTOCOL_HEADER } from "../../src/amqp/Constants.js"

export interface Delivery {
  readonly deliver: Methods.ByTag<"BasicDeliver">
  readonly properties: Properties.BasicProperties
  readonly body: Uint8Array
}

export interface RawClient {
  readonly publish: (count: number, publish: Frame.Publish) => Promise<void>
  readonly consume: (count: number) => Promise<void>
  readonly close: () => void
}

const BATCH = 1024

export const connect = (port: number): Promise<RawClient> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    const parser = new Frame.Parser({ maxFrameSize: 131072 })
    const encoder = new Frame.Encoder({ frameMax: 131072 })
    const send = (channel: number, method: Methods.Method) => {
      encoder.frame(Frame.method(channel, method))
      socket.write(encoder.take())
    }

    // consume state: one channel, so one message in assembly at a time
    let wanted = 0
    let received = 0
    let onDone: (() => void) | undefined
    let deliver: Methods.ByTag<"BasicDeliver"> | undefined
    let properties: Properties.BasicProperties = {}
    let remaining = 0
    let parts: Array<Uint8Array> = []
    const complete = (body: Uint8Array) => {
      const message: Delivery = { deliver: deliver!, properties, body }
      deliver = undefined
      if (message.body.length >= 0 && ++received === wanted) onDone?.()
    }

    const client: RawClient = {
      publish: async (count, publish) => {
        let i = 0
        while (i < count) {
          const end = Math.min(count, i + BATCH)
          for (; i < end; i++) encoder.publish(publish)
          if (!socket.write(encoder.take())) await new Promise((r) => socket.once("drain", r))
        }
      },
      consume: (count) =>
        new Promise<void>((done) => {
          wanted = count
          received = 0
          onDone = done
          send(1, Methods.make("BasicConsume", { queue: "bench", noAck: true }))
        }),
      close: () => socket.destroy()
    }

    const onFrame = (frame: Frame.Frame) => {
      switch (frame._tag) {
        case "Method": {
          const m = frame.method
          switch (m._tag) {
            case "BasicDeliver":
              deliver = m
              return
            case "ConnectionStart":
              send(0, Methods.make("ConnectionStartOk", {
                clientProperties: [],
                response: new TextEncoder().encode("\u0000guest\u0000guest")
              }))
              return
            case "ConnectionTune":
              send(0, Methods.make("ConnectionTuneOk", { channelMax: m.channelMax, frameMax: m.frameMax, heartbeat: 0 }))
              send(0, Methods.make("ConnectionOpen", {}))
              return
            case "ConnectionOpenOk":
              send(1, Methods.make("ChannelOpen", {}))
              return
            case "ChannelOpenOk":
              resolve(client)
              return
          }
          return
        }
        case "Header":
          properties = frame.properties
          remaining = Number(frame.bodySize)
          parts = []
          if (remaining === 0) complete(new Uint8Array(0))
          return
        case "Body":
          remaining -= frame.payload.length
          if (remaining === 0) {
            complete(parts.length === 0 ? frame.payload : Buffer.concat([...parts, frame.payload]))
          } else parts.push(frame.payload)
          return
      }
    }

    socket.on("data", (chunk: Buffer) => {
      const error = parser.feed(chunk, onFrame)
      if (error !== undefined) {
        socket.destroy()
        reject(error)
      }
    })
    socket.once("error", reject)
    socket.once("connect", () => socket.write(PROTOCOL_HEADER))
  })
