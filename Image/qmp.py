#!/usr/bin/env python3
"""A minimal QMP client for the image test (QEMU Machine Protocol, JSON over a Unix socket).

  qmp.py SOCKET COMMAND [JSON-ARGUMENTS]     one command; prints its "return" as JSON
  qmp.py SOCKET keys TEXT                    types TEXT on the guest's keyboard (send-key)
  qmp.py SOCKET screendump FILE              the display as a PPM file
  qmp.py SOCKET check-screen FILE            screendump, then fails unless the screen shows text

Asynchronous events (DEVICE_DELETED, ...) that arrive before a reply are skipped.
"""
import json
import socket
import sys
import time

# QEMU's qcodes for the characters the test types; upper case is shift + the letter.
SPECIAL = {"-": "minus", " ": "spc", "\n": "ret", ".": "dot", "/": "slash", "_": ("shift", "minus")}


class QMP:
    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.read()  # the greeting
        self.execute("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self.read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error'].get('desc')}")
            return reply.get("return")

    def type_text(self, text):
        for character in text:
            if character in SPECIAL:
                keys = SPECIAL[character]
                keys = list(keys) if isinstance(keys, tuple) else [keys]
            elif character.isupper():
                keys = ["shift", character.lower()]
            else:
                keys = [character]
            self.execute("send-key", {"keys": [{"type": "qcode", "data": k} for k in keys]})
            # The guest under software emulation needs a moment per key.
            time.sleep(0.15)


def screen_has_text(path):
    """A PPM (P6) that is not one flat colour: enough pixels differ from the most common one
    (the background) to be lines of text, and not so many that it is noise."""
    with open(path, "rb") as f:
        data = f.read()
    fields = []
    position = 0
    while len(fields) < 4:
        while data[position:position + 1].isspace():
            position += 1
        if data[position:position + 1] == b"#":
            position = data.index(b"\n", position)
            continue
        end = position
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    width, height = int(fields[1]), int(fields[2])
    pixels = data[position + 1:]
    counts = {}
    for i in range(0, len(pixels), 3 * 7):  # every 7th pixel is plenty
        key = pixels[i:i + 3]
        counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values())
    background = max(counts.values())
    share = 1 - background / total
    return width, height, share, len(counts)


def main():
    path, command = sys.argv[1], sys.argv[2]
    qmp = QMP(path)
    if command == "keys":
        qmp.type_text(sys.argv[3])
    elif command in ("screendump", "check-screen"):
        qmp.execute("screendump", {"filename": sys.argv[3]})
        time.sleep(0.5)
        if command == "check-screen":
            width, height, share, colours = screen_has_text(sys.argv[3])
            print(f"screen {width}x{height}: {share:.1%} of pixels are not the background, {colours} colours")
            if not (0.005 < share < 0.6 and colours >= 2):
                sys.exit("the screen shows no text")
    else:
        arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
        print(json.dumps(qmp.execute(command, arguments)))


if __name__ == "__main__":
    main()
