"""The EventMQ 0.3.13 client library driven from the command line:

    emqp_client.py defer ADDR COUNT QUEUE CALLABLE ARGS_JSON [reply]
    emqp_client.py schedule ADDR INTERVAL CALLABLE ARGS_JSON [HEADER,...]
    emqp_client.py unschedule ADDR CALLABLE ARGS_JSON
    emqp_client.py publish ADDR TOPIC MESSAGE_JSON COUNT

ARGS_JSON is the job's positional arguments; `{i}` in a string argument becomes the job's index. Prints one
"sent N" line when every message is handed to ZeroMQ, then lingers so the messages leave before exit.
"""
import json
import sys
import time

from eventmq.client.messages import defer_job, schedule, send_publish_request
from eventmq.sender import Sender


def expand(args, i):
    return [a.replace("{i}", str(i)) if isinstance(a, str) else a for a in args]


def main(argv):
    command, addr = argv[0], argv[1]
    sender = Sender()
    sender.connect(addr)
    time.sleep(0.3)  # ZeroMQ connects in the background
    if command == "defer":
        count, queue, func, args = int(argv[2]), argv[3], argv[4], json.loads(argv[5])
        reply = len(argv) > 6 and argv[6] == "reply"
        for i in range(count):
            defer_job(sender, func, args=expand(args, i), queue=queue, reply_requested=reply)
        print("sent %d" % count)
    elif command == "schedule":
        interval, func, args = int(argv[2]), argv[3], json.loads(argv[4])
        headers = argv[5].split(",") if len(argv) > 5 and argv[5] else ["guarantee"]
        schedule(sender, func, interval_secs=interval, args=args, headers=headers)
        print("sent 1")
    elif command == "unschedule":
        func, args = argv[2], json.loads(argv[3])
        schedule(sender, func, interval_secs=1, args=args, unschedule=True)
        print("sent 1")
    elif command == "publish":
        topic, message, count = argv[2], json.loads(argv[3]), int(argv[4])
        for _ in range(count):
            send_publish_request(sender, topic, message)
        print("sent %d" % count)
    sys.stdout.flush()
    time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1:])
