"""Jobs the EventMQ 0.3.13 job manager runs in the interop suites (imported through PYTHONPATH)."""
import time


def add(a, b):
    return a + b


def record(path, value):
    """Appends `value` to the file at `path`, one line per run: the suites count the lines."""
    with open(path, "a") as f:
        f.write("%s\n" % value)
    return value


def fail(message):
    raise ValueError(message)


def sleep(seconds):
    time.sleep(seconds)
    return seconds
