"""One session of the interop matrix with Python's websockets (Debian's
python3-websockets): the session is argv[1] as JSON (see caseJSON in
matrix_test.go); prints one JSON event per line. The Go test judges the
events; this script only does what it is told and reports what it saw.

websockets sends a fragmented text message as a sequence of str, so its
fragments can only end between characters: a split inside a character is
moved to that character's end.
"""

import asyncio
import hashlib
import json
import ssl
import sys

import websockets


def out(ev):
    print(json.dumps(ev), flush=True)


def fragments(data, splits, text):
    at = [0]
    for s in splits:
        if text:
            while s < len(data) and (data[s] & 0xC0) == 0x80:
                s += 1
        at.append(max(s, at[-1]))
    at.append(len(data))
    parts = [data[a:b] for a, b in zip(at, at[1:])]
    return [p.decode() for p in parts] if text else parts


def closed(ws):
    # close_rcvd is the close frame the server sent (None: there was none).
    rcvd = ws.close_rcvd
    if rcvd is None:
        return {"ev": "closed", "code": 1006, "reason": None}
    return {"ev": "closed", "code": rcvd.code, "reason": rcvd.reason}


async def step(ws, st):
    op = st["op"]
    if op == "info":
        await ws.send('{"action":"info"}')
        return {"ev": "info", "text": await ws.recv()}
    if op == "echo":
        with open(st["file"], "rb") as f:
            data = f.read()
        text = st["type"] == "text"
        if st.get("splits"):
            await ws.send(fragments(data, st["splits"], text))
        else:
            await ws.send(data.decode() if text else data)
        m = await ws.recv()
        b = m.encode() if isinstance(m, str) else m
        return {"ev": "echo", "type": "text" if isinstance(m, str) else "binary",
                "len": len(b), "sha256": hashlib.sha256(b).hexdigest()}
    if op == "send":
        if st.get("file"):
            with open(st["file"], "rb") as f:
                msg = f.read()
            if st["type"] == "text":
                msg = msg.decode()
        else:
            msg = st["text"]
        try:
            await ws.send(msg)
        except websockets.ConnectionClosed:
            pass  # a refused message may end the link; the close is the verdict
        return {"ev": "sent"}
    if op == "ping":
        # The waiter resolves only on a pong with this payload.
        data = st.get("data", "")
        waiter = await ws.ping(data.encode())
        await asyncio.wait_for(waiter, 10)
        return {"ev": "pong", "sent": data, "data": data}
    if op == "idle":
        # websockets answers the server's pings itself and does not tell.
        await asyncio.sleep(st["ms"] / 1000)
        return {"ev": "idle", "pings": -1}
    if op == "close":
        await ws.close(st["code"], st.get("reason", ""))
        return closed(ws)
    if op == "await_close":
        out({"ev": "waiting"})
        await ws.wait_closed()
        return closed(ws)
    raise ValueError("unknown step " + op)


async def main(c):
    ctx = None
    if c["url"].startswith("wss:"):
        ctx = ssl.create_default_context(cafile=c["ca"])
    ws = await websockets.connect(
        c["url"], ssl=ctx, subprotocols=c["subprotocols"],
        compression="deflate" if c["compress"] else None,
        max_size=None, ping_interval=None, open_timeout=10, close_timeout=10)
    exts = ", ".join(e.name for e in ws.extensions)
    out({"ev": "open", "protocol": ws.subprotocol or "", "extensions": exts})
    for st in c["steps"]:
        out(await step(ws, st))


if __name__ == "__main__":
    try:
        asyncio.run(main(json.loads(sys.argv[1])))
    except Exception as e:  # noqa: BLE001 - reported to the Go test
        out({"ev": "error", "msg": "%s: %s" % (type(e).__name__, e)})
        sys.exit(1)
