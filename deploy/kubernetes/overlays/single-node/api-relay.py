"""Serve the API server (127.0.0.1:6443 on the node) on the pod bridge's address, TCP as it is.

The single-node cluster's API server listens on loopback only, so pods can't reach it; this relay
runs in the node's network and forwards every connection (TLS goes through untouched). When the port
is already served (another installation's relay on the same node), it waits and tries again.
"""

import asyncio
import os

LISTEN = (os.environ.get("RELAY_HOST", "10.244.0.1"), int(os.environ.get("RELAY_PORT", "6443")))
TARGET = (os.environ.get("API_HOST", "127.0.0.1"), int(os.environ.get("API_PORT", "6443")))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        api_reader, api_writer = await asyncio.open_connection(*TARGET)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, api_writer), pipe(api_reader, client_writer))


async def main() -> None:
    while True:
        try:
            server = await asyncio.start_server(relay, *LISTEN)
        except OSError as exc:
            print(f"{LISTEN[0]}:{LISTEN[1]} not free ({exc}); trying again in 5 s", flush=True)
            await asyncio.sleep(5)
            continue
        print(f"relaying {LISTEN[0]}:{LISTEN[1]} to {TARGET[0]}:{TARGET[1]}", flush=True)
        async with server:
            await server.serve_forever()


asyncio.run(main())
