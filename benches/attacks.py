#!/usr/bin/env python3
"""Hand-made connection-level attacks on the demo server, for benches/attacks.sh.

    python3 benches/attacks.py ATTACK HOST:PORT [options]

Each attack prints one JSON object on stdout: what it did and what the server did (how many
connections it closed, and how long after the attack began). HTTP/2 frames are made with the
`h2` package (pip install h2); everything else is plain sockets. Attacks:

  silent N              N connections that never send a byte
  idle-h2 N             N HTTP/2 connections that answer pings and open no stream
  zero-window C S       C HTTP/2 connections x S POSTs of 64 KB of `kys `, window 0, never read
  big-headers N KB      N connections each sending KB of a request head that never ends
  amplify RATE SECS     64 KB of `kys ` at RATE requests/s on one keep-alive connection
  hygiene [HOST:PORT]   Host missing/duplicate/garbage, Content-Length 1 GB, an oversized gRPC
                        message, 8 pipelined connections behind a 429 (to the second server,
                        rate limited to 1 request/s, when given)
"""

import asyncio
import json
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

KYS = json.dumps({"content": "kys " * (64 * 1024 // 4 - 8)}).encode()


def stats(times):
    times = sorted(times)
    if not times:
        return {"closed": 0}
    return {
        "closed": len(times),
        "close_s_min": round(times[0], 2),
        "close_s_p50": round(times[len(times) // 2], 2),
        "close_s_max": round(times[-1], 2),
    }


async def wait_closed(reader, started, limit):
    """Seconds until the server closed the connection (EOF or reset), or None."""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), limit - (time.monotonic() - started))
            if not data:
                return time.monotonic() - started
    except (ConnectionError, OSError):
        return time.monotonic() - started
    except asyncio.TimeoutError:
        return None


async def silent(addr, n, limit=120):
    host, port = addr
    started = time.monotonic()
    conns = []
    for _ in range(n):
        try:
            conns.append(await asyncio.open_connection(host, port))
        except OSError:
            break
    times = await asyncio.gather(*(wait_closed(r, started, limit) for r, _ in conns))
    for _, w in conns:
        w.close()
    closed = [t for t in times if t is not None]
    return {"attack": "silent", "opened": len(conns), "open_after_limit": len(conns) - len(closed), **stats(closed)}


async def h2_open(addr, settings=None):
    reader, writer = await asyncio.open_connection(*addr)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)
    writer.write(conn.data_to_send())
    await writer.drain()
    return reader, writer, conn


async def idle_h2(addr, n, limit=180):
    started = time.monotonic()

    async def one():
        reader, writer, conn = await h2_open(addr)
        goaway_at = None
        try:
            while time.monotonic() - started < limit:
                data = await asyncio.wait_for(reader.read(65536), limit)
                if not data:
                    return time.monotonic() - started, goaway_at
                if goaway_at is not None:
                    continue  # the h2 package takes no frame after a GOAWAY: read to the close
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    # A GOAWAY and a frame after it in one read: the package refuses the frame.
                    goaway_at = time.monotonic() - started
                    continue
                if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                    goaway_at = time.monotonic() - started
                # Pings and settings are acknowledged: a live client.
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, OSError, asyncio.TimeoutError):
            return time.monotonic() - started, goaway_at
        finally:
            writer.close()
        return None, goaway_at

    results = await asyncio.gather(*(one() for _ in range(n)))
    closed = [t for t, _ in results if t is not None]
    goaways = sorted(g for _, g in results if g is not None)
    return {"attack": "idle-h2", "opened": n, "goaway_seen": len(goaways),
            "goaway_s_p50": round(goaways[len(goaways) // 2], 2) if goaways else None, **stats(closed)}


async def zero_window(addr, connections, streams, hold):
    """Streams whose answers the client never takes: window 0, no WINDOW_UPDATE, ever."""
    started = time.monotonic()

    async def one():
        reader, writer, conn = await h2_open(addr, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        seen = {"headers": 0, "resets": 0, "reset_times": [], "settings": False}

        def feed(data):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamReset):
                    seen["resets"] += 1
                    seen["reset_times"].append(time.monotonic() - started)
                elif isinstance(event, h2.events.ResponseReceived):
                    seen["headers"] += 1
                elif isinstance(event, h2.events.RemoteSettingsChanged):
                    seen["settings"] = True
            # Acknowledge pings and settings, never open a window.
            writer.write(conn.data_to_send())

        # Learn the server's stream limit first.
        while not seen["settings"]:
            feed(await reader.read(65536))
        limit = conn.remote_settings.max_concurrent_streams
        opened = refused = 0
        for _ in range(streams):
            if conn.open_outbound_streams >= limit:
                refused += 1
                continue
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "POST"), (":path", "/v1/filter"), (":scheme", "http"),
                                    (":authority", "%s:%d" % addr), ("content-type", "application/json"),
                                    ("content-length", str(len(KYS)))])
            # The request body within the server's window.
            pos = 0
            while pos < len(KYS):
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    writer.write(conn.data_to_send())
                    await writer.drain()
                    data = await reader.read(65536)
                    if not data:
                        break
                    feed(data)
                    continue
                chunk = KYS[pos:pos + window]
                conn.send_data(sid, chunk, end_stream=pos + len(chunk) >= len(KYS))
                pos += len(chunk)
            opened += 1
            writer.write(conn.data_to_send())
            await writer.drain()
        try:
            while time.monotonic() - started < hold and seen["resets"] < opened:
                data = await asyncio.wait_for(reader.read(65536), hold)
                if not data:
                    break
                feed(data)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
        return opened, refused, seen["headers"], seen["resets"], seen["reset_times"]

    results = await asyncio.gather(*(one() for _ in range(connections)))
    times = [t for r in results for t in r[4]]
    return {"attack": "zero-window", "streams_opened": sum(r[0] for r in results),
            "not_opened_over_limit": sum(r[1] for r in results), "answers_started": sum(r[2] for r in results),
            "streams_reset": sum(r[3] for r in results),
            "reset_s_p50": round(sorted(times)[len(times) // 2], 2) if times else None,
            "reset_s_max": round(max(times), 2) if times else None}


async def big_headers(addr, n, kb, limit=60):
    started = time.monotonic()

    async def one():
        try:
            reader, writer = await asyncio.open_connection(*addr)
        except OSError:
            return None, ""
        head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: " + b"j" * (kb * 1024)
        status = ""
        try:
            writer.write(head)  # never ends: no CRLF CRLF
            await asyncio.wait_for(writer.drain(), limit)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        try:
            data = await asyncio.wait_for(reader.read(4096), limit)
            status = data[:12].decode(errors="replace")
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        closed = await wait_closed(reader, started, limit)
        writer.close()
        return closed, status

    results = await asyncio.gather(*(one() for _ in range(n)))
    closed = [t for t, _ in results if t is not None]
    statuses = {}
    for _, s in results:
        statuses[s] = statuses.get(s, 0) + 1
    return {"attack": "big-headers", "opened": n, "kb_each": kb, "answers": statuses, **stats(closed)}


def amplify(addr, rate, seconds):
    sock = socket.create_connection(addr)
    request = (b"POST /v1/filter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               b"content-length: %d\r\n\r\n" % len(KYS)) + KYS
    sent = received = 0
    sizes = []
    started = time.monotonic()
    buf = b""
    while time.monotonic() - started < seconds:
        due = started + sent / rate
        if time.monotonic() < due:
            time.sleep(due - time.monotonic())
        sock.sendall(request)
        sent += 1
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(buf) < length:
            buf += sock.recv(1 << 20)
        sizes.append(length)
        received += length
        buf = buf[length:]
    took = time.monotonic() - started
    sock.close()
    return {"attack": "amplify", "request_bytes": len(request), "answer_bytes": max(sizes),
            "ratio": round(max(sizes) / len(request), 2), "requests": sent,
            "answer_mb_per_s": round(received / took / 1e6, 2)}


def raw(addr, data, read_for=3.0):
    """What the server answers to `data`, the seconds to its first byte, and whether the
    connection ended in a reset."""
    sock = socket.create_connection(addr)
    sock.settimeout(read_for)
    started = time.monotonic()
    first = None
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out, reset = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            if first is None:
                first = time.monotonic() - started
            out += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        reset = True
    sock.close()
    return out, first, reset


def hygiene(addr, limited=None):
    result = {"attack": "hygiene"}
    for name, head in [("host_missing", b"GET /v1/filter HTTP/1.1\r\n"),
                       ("host_duplicate", b"GET /v1/filter HTTP/1.1\r\nhost: a\r\nhost: b\r\n"),
                       ("host_garbage", b"GET /v1/filter HTTP/1.1\r\nhost: a b@c\r\n")]:
        out, _, _ = raw(addr, head + b"connection: close\r\n\r\n")
        result[name] = out[:12].decode(errors="replace")
    out, took, reset = raw(addr, b"POST /v1/filter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                                 b"content-length: 1000000000\r\n\r\n{\"content\": \"x\"}")
    result["content_length_1gb"] = out[:12].decode(errors="replace")
    result["content_length_1gb_answer_s"] = round(took, 3) if took is not None else None
    result["content_length_1gb_reset"] = reset
    # gRPC: a message whose length prefix says 1 MB.
    reader_conn = socket.create_connection(addr)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/espresso.filter.v1.Filter/Check"),
                            (":scheme", "http"), (":authority", "x"), ("content-type", "application/grpc"),
                            ("te", "trailers")])
    conn.send_data(sid, b"\x00" + struct.pack(">I", 1 << 20) + b"\x0a" * 1000, end_stream=True)
    reader_conn.sendall(conn.data_to_send())
    reader_conn.settimeout(3)
    status = None
    try:
        while status is None:
            data = reader_conn.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    status = dict(event.headers).get("grpc-status", status)
            reader_conn.sendall(conn.data_to_send())
    except socket.timeout:
        pass
    reader_conn.close()
    result["grpc_over_limit_status"] = status
    # Pipelined requests behind a refusal, bodies larger than the server's read buffer.
    body = json.dumps({"content": "x" * 48 * 1024}).encode()
    one = (b"POST /v1/filter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
           b"content-length: %d\r\n\r\n" % len(body)) + body
    # On a server whose rate limit is one request a second, so that they meet a 429.
    addr = limited or addr
    resets = refused = answered = 0
    for _ in range(8):
        out, _, reset = raw(addr, one * 3)
        resets += reset
        answered += out.count(b"HTTP/1.1 ")
        refused += out.count(b"HTTP/1.1 429")
    result["pipelined_connections_reset"] = resets
    result["pipelined_answers"] = answered
    result["pipelined_429s"] = refused
    return result


def main():
    attack, target = sys.argv[1], sys.argv[2]
    host, port = target.rsplit(":", 1)
    addr = (host, int(port))
    args = [int(a) for a in sys.argv[3:]] if attack != "hygiene" else []
    if attack == "silent":
        out = asyncio.run(silent(addr, *args))
    elif attack == "idle-h2":
        out = asyncio.run(idle_h2(addr, *args))
    elif attack == "zero-window":
        out = asyncio.run(zero_window(addr, *args))
    elif attack == "big-headers":
        out = asyncio.run(big_headers(addr, *args))
    elif attack == "amplify":
        out = amplify(addr, *args)
    elif attack == "hygiene":
        limited = None
        if len(sys.argv) > 3:
            lhost, lport = sys.argv[3].rsplit(":", 1)
            limited = (lhost, int(lport))
        out = hygiene(addr, limited)
    else:
        sys.exit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
