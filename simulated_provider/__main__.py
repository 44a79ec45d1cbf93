"""Run the simulated AI provider: ``python -m simulated_provider --port 8765``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import SimulatorConfig, start_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every one has a working default."""
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m simulated_provider",
        description="Simulated OpenAI- and Anthropic-compatible AI provider for NeonPro.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--token-delay-ms", type=float, default=defaults.token_delay_ms)
    parser.add_argument(
        "--answer-tokens",
        type=int,
        default=defaults.answer_tokens,
        help="filler words after the echo of the question",
    )
    parser.add_argument("--bad-key", default=defaults.bad_key, help="API key answered with 401")
    parser.add_argument("--flagged-term", default=defaults.flagged_term)
    parser.add_argument("--record-limit", type=int, default=defaults.record_limit)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT, then close connections and return."""
    config = SimulatorConfig(
        token_delay_ms=args.token_delay_ms,
        answer_tokens=args.answer_tokens,
        bad_key=args.bad_key,
        flagged_term=args.flagged_term,
        record_limit=args.record_limit,
    )
    runner, port = await start_server(host=args.host, port=args.port, config=config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}"
    print(
        f"Simulated AI provider listening on {url} "
        f"(OpenAI base_url {url}/v1, Anthropic base_url {url}, control {url}/_sim/)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m simulated_provider``."""
    try:
        asyncio.run(serve(parse_args(argv)))
    except OSError as exc:
        print(f"simulated provider could not start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
