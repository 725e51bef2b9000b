import { assert, describe, it } from "@effect/vitest"
import * as ClientProperties from "../../../src/amqp/ClientProperties.js"

describe("ClientProperties", () => {
  it("advertises the capabilities RabbitMQ gates features on, all true, and the connection name", () => {
    const props = ClientProperties.make({ connectionName: "orders", extra: { product: "spoof", team: "x" } })
    for (
      const name of [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos"
      ]
    ) assert.strictEqual(props.capabilities[name], true, name)
    assert.strictEqual(props.connection_name, "orders")
    assert.strictEqual(props.product, "effect-wire")
    assert.strictEqual(props.team, "x")
    assert.match(props.platform, /^Node\.js v\d+/)
  })
})
