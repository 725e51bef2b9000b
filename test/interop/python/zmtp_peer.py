"""A pyzmq peer driven over stdin/stdout, one JSON command per line, one JSON reply per line.

Commands (frames and topics are hex strings):
  {"op": "socket", "id": "s1", "type": "REP", "identity": "peer-1",
   "mechanism": {"kind": "NULL"} | {"kind": "PLAIN", "server": true} | {"kind": "PLAIN", "username": "u", "password": "p"}
              | {"kind": "CURVE", "server": true, "secret": z85} | {"kind": "CURVE", "serverKey": z85, "public": z85, "secret": z85}}
  {"op": "bind", "id": "s1", "endpoint": "tcp://127.0.0.1:*"}  -> {"ok": true, "endpoint": "tcp://127.0.0.1:41234"}
  {"op": "connect", "id": "s1", "endpoint": "tcp://127.0.0.1:41234"}
  {"op": "send", "id": "s1", "frames": ["6869"]}
  {"op": "recv", "id": "s1", "timeout": 2000}                  -> {"ok": true, "frames": [...]} | {"ok": false, "error": "timeout"}
  {"op": "subscribe", "id": "s1", "topic": "74"}
  {"op": "curve_allow", "key": z85}                            a client key CURVE servers let in
  {"op": "close", "id": "s1"}
A PLAIN server accepts the passwords given at start-up in argv[1] (JSON {"user": "password"}) through pyzmq's ZAP
handler; CURVE servers accept the keys allowed so far through it.
"""
import json
import select
import sys

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

ctx = zmq.Context()
auth = ThreadAuthenticator(ctx)
auth.start()
auth.configure_plain(domain="*", passwords=json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
# CURVE servers let in the client keys named by "curve_allow" commands.
allowed_keys = set()


class AllowList:
    def callback(self, domain, key):
        return key in allowed_keys


auth.configure_curve_callback(domain="*", credentials_provider=AllowList())

sockets = {}


def make(command):
    s = ctx.socket(getattr(zmq, command["type"]))
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 5000)
    if command.get("identity"):
        s.setsockopt(zmq.IDENTITY, command["identity"].encode())
    mechanism = command.get("mechanism", {"kind": "NULL"})
    if mechanism["kind"] == "PLAIN":
        if mechanism.get("server"):
            s.plain_server = True
        else:
            s.plain_username = mechanism["username"].encode()
            s.plain_password = mechanism["password"].encode()
    elif mechanism["kind"] == "CURVE":
        if mechanism.get("server"):
            s.curve_server = True
            s.curve_secretkey = mechanism["secret"].encode()
        else:
            s.curve_serverkey = mechanism["serverKey"].encode()
            s.curve_publickey = mechanism["public"].encode()
            s.curve_secretkey = mechanism["secret"].encode()
    sockets[command["id"]] = s
    return {}


def handle(command):
    op = command["op"]
    if op == "socket":
        return make(command)
    if op == "curve_allow":
        allowed_keys.add(command["key"].encode())
        return {}
    s = sockets[command["id"]]
    if op == "bind":
        s.bind(command["endpoint"])
        return {"endpoint": s.getsockopt(zmq.LAST_ENDPOINT).decode()}
    if op == "connect":
        s.connect(command["endpoint"])
        return {}
    if op == "send":
        s.send_multipart([bytes.fromhex(f) for f in command["frames"]])
        return {}
    if op == "recv":
        if not s.poll(command.get("timeout", 2000)):
            return {"ok": False, "error": "timeout"}
        return {"frames": [f.hex() for f in s.recv_multipart()]}
    if op == "subscribe":
        s.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(command["topic"]))
        return {}
    if op == "close":
        sockets.pop(command["id"]).close(0)
        return {}
    return {"ok": False, "error": "unknown op " + op}


print(json.dumps({"ok": True, "ready": True, "zmq": zmq.zmq_version()}), flush=True)
while True:
    # libzmq acts on connection events (a pipe attached, cached subscriptions sent to it) only inside calls on the
    # socket: while waiting for the next command, touch every socket now and then, as a poller would.
    readable, _, _ = select.select([sys.stdin], [], [], 0.01)
    if not readable:
        for s in sockets.values():
            s.getsockopt(zmq.EVENTS)
        continue
    line = sys.stdin.readline()
    if not line:
        break
    if not line.strip():
        continue
    try:
        reply = handle(json.loads(line))
    except Exception as error:  # reported to the test, which fails with it
        reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    reply.setdefault("ok", True)
    print(json.dumps(reply), flush=True)
auth.stop()
ctx.destroy(0)
