#!/usr/bin/env python3
"""Opens N MySQL client connections (mysql_native_password handshake over raw asyncio
sockets) and holds them idle until SIGTERM/SIGINT.

    idle_clients.py --port P --user U --password PW --db D --count 10000 --status FILE

When all connections are logged in (or failed), writes one line to FILE:
`opened=N failed=M seconds=T` (and prints it). Much faster than a driver: 10,000
logins take a few seconds, bounded by the proxy.
"""
import argparse
import asyncio
import hashlib
import resource
import signal
import struct
import sys
import time

# Capability flags: the session-relevant ones are what libmariadb (sysbench) sends, so
# the idle clients land in the same shoal pool (backend x user x capabilities x collation)
# as the sysbench clients.
LONG_PASSWORD = 0x1
LONG_FLAG = 0x4
CONNECT_WITH_DB = 0x8
LOCAL_FILES = 0x80
PROTOCOL_41 = 0x200
TRANSACTIONS = 0x2000
SECURE_CONNECTION = 0x8000
MULTI_STATEMENTS = 0x10000
MULTI_RESULTS = 0x20000
PS_MULTI_RESULTS = 0x40000
PLUGIN_AUTH = 0x80000
PLUGIN_AUTH_LENENC = 0x200000
SESSION_TRACK = 0x800000


def scramble(password: bytes, nonce: bytes) -> bytes:
    if not password:
        return b""
    s1 = hashlib.sha1(password).digest()
    s2 = hashlib.sha1(s1).digest()
    s3 = hashlib.sha1(nonce + s2).digest()
    return bytes(a ^ b for a, b in zip(s1, s3))


async def read_packet(reader):
    head = await reader.readexactly(4)
    n = head[0] | head[1] << 8 | head[2] << 16
    return head[3], await reader.readexactly(n)


def packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def parse_greeting(p: bytes) -> bytes:
    i = p.index(b"\0", 1) + 1  # protocol version, server version
    i += 4  # connection id
    part1 = p[i : i + 8]
    i += 8 + 1 + 2 + 1 + 2 + 2  # filler, caps low, charset, status, caps high
    auth_len = p[i]
    i += 1 + 10
    n2 = max(13, auth_len - 8)
    part2 = p[i : i + n2].rstrip(b"\0")
    return part1 + part2[:12]


async def login(host, port, user, password, db, caps, collation):
    reader, writer = await asyncio.open_connection(host, port)
    seq, greeting = await read_packet(reader)
    if greeting[:1] == b"\xff":
        raise RuntimeError(f"refused: {greeting[3:]!r}")
    nonce = parse_greeting(greeting)
    token = scramble(password, nonce)
    body = struct.pack("<IIB", caps, 1 << 24, collation) + b"\0" * 23
    body += user + b"\0" + bytes([len(token)]) + token
    if caps & CONNECT_WITH_DB:
        body += db + b"\0"
    body += b"mysql_native_password\0"
    writer.write(packet(seq + 1, body))
    seq, resp = await read_packet(reader)
    if resp[:1] == b"\xfe":  # auth switch
        name_end = resp.index(b"\0", 1)
        nonce2 = resp[name_end + 1 :].rstrip(b"\0")[:20]
        writer.write(packet(seq + 1, scramble(password, nonce2)))
        seq, resp = await read_packet(reader)
    if resp[:1] != b"\x00":
        writer.close()
        raise RuntimeError(f"login failed: {resp[3:]!r}")
    return reader, writer


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="sb")
    ap.add_argument("--password", default="sbpass")
    ap.add_argument("--db", default="sbtest")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=256, help="logins in flight at once")
    ap.add_argument("--collation", type=int, default=45)
    ap.add_argument("--status", help="file to write the result line to")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.count + 1000), hard))

    caps = (LONG_PASSWORD | LONG_FLAG | CONNECT_WITH_DB | LOCAL_FILES | PROTOCOL_41 | TRANSACTIONS
            | SECURE_CONNECTION | MULTI_STATEMENTS | MULTI_RESULTS | PS_MULTI_RESULTS | PLUGIN_AUTH
            | SESSION_TRACK)
    sem = asyncio.Semaphore(a.concurrency)
    conns, errors = [], []

    async def one():
        async with sem:
            try:
                conns.append(await login(a.host, a.port, a.user.encode(), a.password.encode(),
                                         a.db.encode(), caps, a.collation))
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(repr(e))

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(a.count)))
    line = f"opened={len(conns)} failed={len(errors)} seconds={time.monotonic() - t0:.2f}"
    if errors:
        print(f"idle_clients: first error: {errors[0]}", file=sys.stderr)
    print(line, flush=True)
    if a.status:
        with open(a.status + ".tmp", "w") as f:
            f.write(line + "\n")
        import os
        os.replace(a.status + ".tmp", a.status)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
