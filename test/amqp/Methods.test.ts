import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { createRequire } from "node:module"
import * as Path from "node:path"
import * as Frame from "../../src/amqp/Frame.js"
import * as Methods from "../../src/amqp/Methods.js"
import * as Spec from "../../src/amqp/Spec.js"
import * as Table from "../../src/amqp/Table.js"
import { repoRoot } from "../support/peers.js"

const require = createRequire(import.meta.url)

interface AmqplibArg {
  readonly name: string
  readonly type: string
  readonly default?: unknown
}
interface AmqplibMethodInfo {
  readonly id: number
  readonly classId: number
  readonly methodId: number
  readonly name: string
  readonly args: ReadonlyArray<AmqplibArg>
}
// amqplib's defs.js is generated from RabbitMQ's codegen JSON (amqp-rabbitmq-0.9.1.json): an independent copy of
// the method table, argument types and defaults.
const defs: Record<string, unknown> & {
  encodeMethod: (id: number, channel: number, fields: Record<string, unknown>) => Buffer
  decode: (id: number, payload: Buffer) => Record<string, unknown>
  encodeProperties: (id: number, channel: number, size: number, fields: Record<string, unknown>) => Buffer
} = require(Path.join(repoRoot, "node_modules/amqplib/lib/defs.js"))

const codegen = Object.entries(defs)
  .filter(([key]) => key.startsWith("methodInfo"))
  .map(([, info]) => info as AmqplibMethodInfo)

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const frameHex = (channel: number, method: Methods.Method) =>
  hex(Either.getOrThrow(Frame.encode(Frame.method(channel, method))))

describe("Spec", () => {
  it("has exactly the methods of RabbitMQ's codegen spec, with the same ids, arguments, types and defaults", () => {
    assert.strictEqual(Spec.methods.length, codegen.length)
    for (const info of codegen) {
      const ours = Methods.definitionById(info.classId, info.methodId)
      assert.isDefined(ours, info.name)
      assert.strictEqual(ours!.tag, info.name)
      assert.deepStrictEqual(
        ours!.args.map((a) => [a[0], a[1]]),
        info.args.map((a) => [a.name, a.type]),
        info.name
      )
      for (const [i, arg] of info.args.entries()) {
        const ourDefault = ours!.args[i]![2]
        if (arg.default === undefined || arg.default === null) {
          assert.strictEqual(ourDefault, undefined, `${info.name}.${arg.name} has no default`)
        } else if (arg.type === "table") {
          assert.strictEqual(ourDefault, "{}", `${info.name}.${arg.name}`)
        } else {
          assert.strictEqual(ourDefault, arg.default, `${info.name}.${arg.name}`)
        }
      }
    }
  })

  it("records the spec's facts that trip clients", () => {
    assert.strictEqual(Methods.definition("ExchangeUnbindOk").methodId, 51)
    assert.strictEqual(Methods.definition("BasicRecover").synchronous, true)
    assert.deepStrictEqual(Methods.definition("BasicGet").replies, ["BasicGetOk", "BasicGetEmpty"])
    for (const tag of ["QueueUnbind", "BasicQos", "BasicRecover", "TxSelect", "TxCommit", "TxRollback"] as const) {
      const args: ReadonlyArray<Spec.ArgDefinition> = Methods.definition(tag).args
      assert.isFalse(args.some((a) => a[0] === "nowait"), tag)
    }
    const content = Spec.methods.filter((m) => m.content).map((m) => m.tag)
    assert.deepStrictEqual(content, ["BasicPublish", "BasicReturn", "BasicDeliver", "BasicGetOk"])
    const extensions = Spec.methods.filter((m) => m.extension).map((m) => m.tag)
    assert.deepStrictEqual(extensions, [
      "ConnectionBlocked", "ConnectionUnblocked", "ConnectionUpdateSecret", "ConnectionUpdateSecretOk",
      "ExchangeBind", "ExchangeBindOk", "ExchangeUnbind", "ExchangeUnbindOk", "BasicNack", "ConfirmSelect",
      "ConfirmSelectOk"
    ])
    // every reply named by a synchronous method exists
    for (const m of Spec.methods) for (const reply of m.replies) assert.isDefined(Methods.definition(reply as Methods.Tag), reply)
  })

  it("lists the basic properties in flag order", () => {
    const info = defs.propertiesInfoBasicProperties as { readonly args: ReadonlyArray<AmqplibArg> }
    assert.deepStrictEqual(Spec.basicProperties.map((p) => [p[0], p[1]]), info.args.map((a) => [a.name, a.type]))
  })
})

describe("Methods", () => {
  it("make fills spec defaults", () => {
    assert.deepStrictEqual(Methods.make("QueueDeclare", { queue: "jobs", durable: true }), {
      _tag: "QueueDeclare",
      ticket: 0,
      queue: "jobs",
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: false,
      nowait: false,
      arguments: []
    })
    const reject = Methods.make("BasicReject", { deliveryTag: 7n })
    assert.isTrue(reject.requeue)
    assert.strictEqual(new TextDecoder().decode(Methods.make("ConnectionStart", { serverProperties: [] }).mechanisms), "PLAIN")
  })

  describe("golden bytes (built by hand from the spec)", () => {
    const cases: ReadonlyArray<readonly [string, number, Methods.Method, string]> = [
      ["connection.tune-ok (spec §2.3)", 0, Methods.make("ConnectionTuneOk", { channelMax: 2047, frameMax: 131072, heartbeat: 60 }),
        "01 0000 0000000c 000a 001f 07ff 00020000 003c ce"],
      ["basic.publish (spec §2.3)", 1, Methods.make("BasicPublish", { routingKey: "q" }),
        "01 0001 0000000a 003c 0028 0000 00 01 71 00 ce"],
      ["connection.start-ok PLAIN guest/guest", 0, Methods.make("ConnectionStartOk", {
        clientProperties: [],
        response: unhex("00 67 75 65 73 74 00 67 75 65 73 74")
      }), "01 0000 00000024 000a 000b 00000000 05 504c41494e 0000000c 00 6775657374 00 6775657374 05 656e5f5553 ce"],
      ["connection.open", 0, Methods.make("ConnectionOpen", {}), "01 0000 00000008 000a 0028 01 2f 00 00 ce"],
      ["connection.close 320", 0, Methods.make("ConnectionClose", { replyCode: 320, replyText: "bye", classId: 0, methodId: 0 }),
        "01 0000 0000000e 000a 0032 0140 03 627965 0000 0000 ce"],
      ["connection.blocked", 0, Methods.make("ConnectionBlocked", { reason: "low on memory" }),
        "01 0000 00000012 000a 003c 0d 6c6f77206f6e206d656d6f7279 ce"],
      ["channel.open", 1, Methods.make("ChannelOpen", {}), "01 0001 00000005 0014 000a 00 ce"],
      ["channel.flow active", 1, Methods.make("ChannelFlow", { active: true }), "01 0001 00000005 0014 0014 01 ce"],
      ["access.request defaults (passive, active, write, read = 0x1e)", 1, Methods.make("AccessRequest", {}),
        "01 0001 0000000b 001e 000a 05 2f64617461 1e ce"],
      ["exchange.declare durable auto-delete (0x02 | 0x04)", 1,
        Methods.make("ExchangeDeclare", { exchange: "x", type: "topic", durable: true, autoDelete: true }),
        "01 0001 00000013 0028 000a 0000 01 78 05 746f706963 06 00000000 ce"],
      ["exchange.declare internal nowait (0x08 | 0x10)", 1,
        Methods.make("ExchangeDeclare", { exchange: "x", internal: true, nowait: true }),
        "01 0001 00000014 0028 000a 0000 01 78 06 646972656374 18 00000000 ce"],
      ["exchange.bind destination before source", 1,
        Methods.make("ExchangeBind", { destination: "d", source: "s", routingKey: "k" }),
        "01 0001 00000011 0028 001e 0000 01 64 01 73 01 6b 00 00000000 ce"],
      ["exchange.unbind-ok is method 51", 1, Methods.make("ExchangeUnbindOk", {}), "01 0001 00000004 0028 0033 ce"],
      ["queue.declare durable exclusive auto-delete nowait (0x1e)", 1,
        Methods.make("QueueDeclare", { queue: "q", durable: true, exclusive: true, autoDelete: true, nowait: true }),
        "01 0001 0000000d 0032 000a 0000 01 71 1e 00000000 ce"],
      ["queue.declare-ok", 1, Methods.make("QueueDeclareOk", { queue: "q", messageCount: 3, consumerCount: 1 }),
        "01 0001 0000000e 0032 000b 01 71 00000003 00000001 ce"],
      ["queue.delete if-unused if-empty nowait (0x07)", 1,
        Methods.make("QueueDelete", { queue: "q", ifUnused: true, ifEmpty: true, nowait: true }),
        "01 0001 00000009 0032 0028 0000 01 71 07 ce"],
      ["basic.qos prefetch 10 global", 1, Methods.make("BasicQos", { prefetchCount: 10, global: true }),
        "01 0001 0000000b 003c 000a 00000000 000a 01 ce"],
      ["basic.consume no-ack exclusive (0x02 | 0x04)", 1,
        Methods.make("BasicConsume", { queue: "q", consumerTag: "c", noAck: true, exclusive: true }),
        "01 0001 0000000f 003c 0014 0000 01 71 01 63 06 00000000 ce"],
      ["basic.deliver redelivered", 1, Methods.make("BasicDeliver", {
        consumerTag: "c", deliveryTag: 1n, redelivered: true, exchange: "", routingKey: "q"
      }), "01 0001 00000012 003c 003c 01 63 0000000000000001 01 00 01 71 ce"],
      ["basic.ack multiple", 1, Methods.make("BasicAck", { deliveryTag: 2n ** 63n - 1n, multiple: true }),
        "01 0001 0000000d 003c 0050 7fffffffffffffff 01 ce"],
      ["basic.nack multiple requeue (0x01 | 0x02)", 1, Methods.make("BasicNack", { deliveryTag: 5n, multiple: true }),
        "01 0001 0000000d 003c 0078 0000000000000005 03 ce"],
      ["basic.reject requeue by default", 1, Methods.make("BasicReject", { deliveryTag: 5n }),
        "01 0001 0000000d 003c 005a 0000000000000005 01 ce"],
      ["basic.recover requeue", 1, Methods.make("BasicRecover", { requeue: true }), "01 0001 00000005 003c 006e 01 ce"],
      ["confirm.select nowait", 1, Methods.make("ConfirmSelect", { nowait: true }), "01 0001 00000005 0055 000a 01 ce"],
      ["tx.commit", 1, Methods.make("TxCommit", {}), "01 0001 00000004 005a 0014 ce"]
    ]
    for (const [name, channel, method, expected] of cases) {
      it(name, () => {
        assert.strictEqual(frameHex(channel, method), hex(unhex(expected)))
        const decoded = Either.getOrThrow(Frame.decode(unhex(expected)))
        assert.deepStrictEqual(decoded, Frame.method(channel, method))
      })
    }
  })

  describe("every method against amqplib's generated codec", () => {
    // Distinctive sample values per argument, so a misplaced argument shows.
    const sample = (info: AmqplibMethodInfo) => {
      const ours: Record<string, unknown> = { _tag: info.name }
      const theirs: Record<string, unknown> = {}
      info.args.forEach((arg, i) => {
        switch (arg.type) {
          case "octet":
            ours[arg.name] = theirs[arg.name] = 0x10 + i
            break
          case "short":
            ours[arg.name] = theirs[arg.name] = 0x1200 + i
            break
          case "long":
            ours[arg.name] = theirs[arg.name] = 0x12345600 + i
            break
          case "longlong":
            ours[arg.name] = BigInt(0x123456789 + i)
            theirs[arg.name] = 0x123456789 + i
            break
          case "shortstr":
            ours[arg.name] = theirs[arg.name] = `${arg.name}-é-${i}`
            break
          case "longstr":
            ours[arg.name] = new TextEncoder().encode(`long ${arg.name}`)
            theirs[arg.name] = Buffer.from(`long ${arg.name}`)
            break
          case "bit":
            ours[arg.name] = theirs[arg.name] = i % 2 === 0
            break
          case "table":
            ours[arg.name] = [["x-arg", Table.string(arg.name)], ["flag", Table.bool(true)]]
            theirs[arg.name] = { "x-arg": arg.name, flag: true }
            break
        }
      })
      return { ours: ours as Methods.Method, theirs }
    }

    for (const info of codegen) {
      it(info.name, () => {
        const { ours, theirs } = sample(info)
        const ourBytes = Either.getOrThrow(Frame.encode(Frame.method(5, ours)))
        const theirBytes = defs.encodeMethod(info.id, 5, theirs)
        assert.strictEqual(hex(ourBytes), hex(theirBytes))
        // and each side decodes the other
        assert.deepStrictEqual(Either.getOrThrow(Frame.decode(new Uint8Array(theirBytes))), Frame.method(5, ours))
        const decoded = defs.decode(info.id, Buffer.from(ourBytes.subarray(11, ourBytes.length - 1)))
        assert.deepStrictEqual(JSON.parse(JSON.stringify(decoded)), JSON.parse(JSON.stringify(theirs)))
      })
    }
  })

  it("refuses a short string over 255 bytes with a typed error naming the argument", () => {
    const error = Either.getLeft(Frame.encode(Frame.method(1, Methods.make("BasicPublish", { routingKey: "é".repeat(128) }))))
    assert.isTrue(error._tag === "Some")
    if (error._tag === "Some") {
      assert.strictEqual(error.value.reason, "ShortStringTooLong")
      assert.strictEqual(error.value.field, "basic.publish.routingKey")
      assert.strictEqual(error.value.size, 256)
    }
  })

  it("refuses values out of range for their wire type", () => {
    const bad: ReadonlyArray<Methods.Method> = [
      { ...Methods.make("ConnectionTuneOk", {}), channelMax: 65536 },
      { ...Methods.make("ConnectionTuneOk", {}), frameMax: -1 },
      { ...Methods.make("BasicAck", {}), deliveryTag: -1n },
      { ...Methods.make("BasicAck", {}), deliveryTag: 2n ** 64n },
      { ...Methods.make("ConnectionStart", { serverProperties: [] }), versionMajor: 256 }
    ]
    for (const method of bad) {
      const result = Methods.encode(method)
      assert.isTrue(Either.isLeft(result) && result.left.reason === "InvalidValue", method._tag)
    }
  })

  it.prop("any generated method round-trips through its payload bytes", { method: Methods.Method }, ({ method }) => {
    const bytes = Schema.encodeSync(Methods.MethodFromBytes)(method)
    const back = Schema.decodeSync(Methods.MethodFromBytes)(bytes)
    assert.deepStrictEqual(back, method)
    assert.strictEqual(hex(Either.getOrThrow(Methods.encode(back))), hex(bytes))
  }, { fastCheck: { numRuns: 500 } })

  it.prop("amqplib re-encodes any generated method without tables to our exact bytes", { method: Methods.Method }, ({ method }) => {
    const definition = Methods.definition(method._tag)
    const args: ReadonlyArray<Spec.ArgDefinition> = definition.args
    if (args.some(([, type]) => type === "table")) return
    // amqplib carries longlong as a JS number
    if (Object.values(method).some((v) => typeof v === "bigint" && v > BigInt(Number.MAX_SAFE_INTEGER))) return
    const ours = Either.getOrThrow(Frame.encode(Frame.method(1, method)))
    const id = definition.classId * 65536 + definition.methodId
    const fields = defs.decode(id, Buffer.from(ours.subarray(11, ours.length - 1)))
    assert.strictEqual(hex(defs.encodeMethod(id, 1, fields)), hex(ours))
  }, { fastCheck: { numRuns: 500 } })

  it("rejects unknown class and method ids with their ids", () => {
    const result = Methods.decode(unhex("003c 00ff"))
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) {
      assert.strictEqual(result.left.reason, "UnknownMethod")
      assert.strictEqual(result.left.classId, 60)
      assert.strictEqual(result.left.methodId, 255)
    }
  })

  it("rejects trailing bytes after the last argument", () => {
    const result = Methods.decode(unhex("005a 0014 00"))
    assert.isTrue(Either.isLeft(result) && result.left.reason === "Malformed")
  })
})
