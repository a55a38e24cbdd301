"""CPU per webhook POST for each HTTP client the delivery worker could use.

    python -m bench.http_clients [--posts N] [--concurrency C] [--rounds R]

A receiver in another process (so its CPU is not counted) answers 204 on kept-alive
loopback connections; this process sends N signed-size POSTs (a 600-byte body, the
five headers a webhook carries) through each client, C at a time, and reads its own
CPU time (user + system) around them. Prints microseconds of CPU per POST for each
client, per round and the median: `aiohttp` (the service's own sender,
`notifications.senders.WebhookSender`), `httpx` (an AsyncClient used the same way:
the checked address in the URL, the host in the Host header and as `sni_hostname`,
the body streamed and bounded) and `httpcore` (httpx's transport alone). The
hand-written HTTP/1.1 client the service had before issue 22 measured 19-27 us here
(docs/benchmarks.md).
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpcore
import httpx

from appointments.notifications.senders import MAX_DRAINED_BODY, Target, WebhookSender, target_of

BODY = b'{"type":"reservation.held","data":{' + b'"x":"' + b"y" * 560 + b'"}}'
HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_2hK9",
    "webhook-timestamp": "1796000000",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}


def _receive(port_out: Any) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


Post = Callable[[], Awaitable[int]]


class HttpxSender:
    """The webhook sender written with httpx, for comparison."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=None,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )

    async def post(self, target: Target, headers: dict[str, str], body: bytes, address: str) -> int:
        request = self._client.build_request(
            "POST",
            f"{target.scheme}://{address}:{target.port}{target.path}",
            headers={**headers, "host": target.host_header},
            content=body,
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        response = await self._client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > MAX_DRAINED_BODY:
                    break
            return response.status_code
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self._client.aclose()


async def _clients(url: str) -> dict[str, tuple[Post, Callable[[], Awaitable[None]]]]:
    target = target_of(url)
    aio = WebhookSender()
    sender = HttpxSender()
    core = httpcore.AsyncConnectionPool(max_keepalive_connections=64)

    async def core_post() -> int:
        response = await core.request("POST", url, headers=[*HEADERS.items()], content=BODY)
        return response.status

    clients: dict[str, tuple[Post, Callable[[], Awaitable[None]]]] = {
        "aiohttp": (lambda: aio.post(target, HEADERS, BODY, "127.0.0.1"), aio.close),
        "httpx": (
            lambda: sender.post(target, HEADERS, BODY, "127.0.0.1"),
            sender.close,
        ),
        "httpcore": (core_post, core.aclose),
    }
    return clients


async def _round(post: Post, posts: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            status = await post()
            assert status == 204, status

    share = posts // concurrency
    await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm: connections open
    before = time.process_time()
    await asyncio.gather(*(worker(share) for _ in range(concurrency)))
    return (time.process_time() - before) / (share * concurrency) * 1e6


async def run(port: int, posts: int, concurrency: int, rounds: int) -> dict[str, Any]:
    clients = await _clients(f"http://127.0.0.1:{port}/hooks")
    results: dict[str, Any] = {}
    try:
        for name, (post, _) in clients.items():
            figures = [await _round(post, posts, concurrency) for _ in range(rounds)]
            median = statistics.median(figures)
            results[name] = {"rounds_us": [round(f, 1) for f in figures], "median_us": median}
            print(f"{name:<9} {median:7.1f} us CPU per POST   rounds: {results[name]['rounds_us']}")
    finally:
        for _, close in clients.values():
            await close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    receive, port_in = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=_receive, args=(receive,), daemon=True)
    receiver.start()
    try:
        port = port_in.recv()
        print(f"{args.posts} POSTs per round, {args.concurrency} at a time, pid {os.getpid()}")
        results = asyncio.run(run(port, args.posts, args.concurrency, args.rounds))
        print(json.dumps({"posts": args.posts, "concurrency": args.concurrency, **results}))
    finally:
        receiver.terminate()


if __name__ == "__main__":
    main()
