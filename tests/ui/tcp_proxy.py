"""A loopback TCP proxy that can cut every open connection on demand.

Put between the browser and the web server, it lets a test drop a WebSocket
mid-answer the way a flaky clinic network would, while the server keeps
running.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class SeverableProxy:
    """Forwards 127.0.0.1:<port> to an upstream address, in a background thread."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.severed = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, name="severable-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SeverableProxy:
        self._thread.start()
        self._ready.wait(10)
        if not self.port:
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()  # no new connections while the open ones are cut
        await self._sever()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def sever(self) -> int:
        """Close every connection open right now (both sides); returns how many were cut."""
        future = asyncio.run_coroutine_threadsafe(self._sever(), self._loop)
        return future.result(10)

    async def _sever(self) -> int:
        writers = list(self._writers)
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.severed += len(writers)
        return len(writers)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, host="127.0.0.1", port=0)
        )
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._loop.close()

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
        finally:
            self._writers -= pair
            for writer in pair:
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: end the other so neither half stays open.
            writer.transport.abort()
