#!/usr/bin/env python3
"""A minimal QMP client for the image test (QEMU Machine Protocol, JSON over a Unix socket).

  qmp.py SOCKET COMMAND [JSON-ARGUMENTS]     one command; prints its "return" as JSON
  qmp.py SOCKET keys TEXT                    types TEXT on the guest's keyboard (send-key)
  qmp.py SOCKET screendump FILE              the display as a PPM file
  qmp.py SOCKET check-screen FILE            screendump, then fails unless the screen shows text
  (a screendump FILE.ppm is also written as FILE.png, for people to look at)

Asynchronous events (DEVICE_DELETED, ...) that arrive before a reply are skipped.
"""
import json
import socket
import struct
import sys
import time
import zlib

# QEMU's qcodes for the characters the test types; upper case is shift + the letter.
SPECIAL = {
    "-": "minus", " ": "spc", "\n": "ret", ".": "dot", "/": "slash", ",": "comma", ";": "semicolon",
    "=": "equal", "'": "apostrophe", "_": ("shift", "minus"), ":": ("shift", "semicolon"),
    "|": ("shift", "backslash"), "@": ("shift", "2"),
}


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


def read_ppm(path):
    """Width, height and RGB bytes of a binary PPM (P6, maxval 255) as QEMU writes it."""
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
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"{path}: not an 8-bit P6 PPM")
    return int(fields[1]), int(fields[2]), data[position + 1:]


def write_png(path, width, height, rgb):
    """RGB bytes as a PNG (filter 0 on every row; zlib)."""
    rows = b"".join(b"\0" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 6)))
        f.write(chunk(b"IEND", b""))


def screen_has_text(path):
    """A screen that is not one flat colour: the share of pixels that differ from the most
    common one (the background) is that of lines of text, not of an empty or noisy screen."""
    width, height, pixels = read_ppm(path)
    counts = {}
    for i in range(0, len(pixels), 3 * 7):  # every 7th pixel is plenty
        key = pixels[i:i + 3]
        counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values())
    share = 1 - max(counts.values()) / total
    return width, height, share, len(counts)


def main():
    path, command = sys.argv[1], sys.argv[2]
    qmp = QMP(path)
    if command == "keys":
        qmp.type_text(sys.argv[3])
    elif command in ("screendump", "check-screen"):
        qmp.execute("screendump", {"filename": sys.argv[3]})
        time.sleep(0.5)
        if sys.argv[3].endswith(".ppm"):
            write_png(sys.argv[3][:-4] + ".png", *read_ppm(sys.argv[3]))
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
