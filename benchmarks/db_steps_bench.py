"""CPU and wall time per message of the chat's database steps, without the rest.

Runs, in one thread and without an event loop, what every chat message does in
the database: the accept step (locked session read, checks, redaction,
storing the question and its empty answer, the history read) and the answer
step (storing the answer and its provider attempt, then the audit append),
through the project's own service functions, on the benchmark database
(`neonpro_bench` on loopback PostgreSQL, created and migrated if missing).

End-to-end runs (`chat_bench.py`) depend on how busy the machine is; CPU per
message here moves much less, so it shows what a change to these steps does.
Compare two versions of the code by running this on each, one after the other.

    python benchmarks/db_steps_bench.py [--messages 1000] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from argparse import Namespace
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import chat_bench  # noqa: E402

QUESTION = chat_bench.DEFAULT_CONTENT
ANSWER = " ".join(["Resposta"] + ["orientação"] * 60)
_CLINICIANS = 10
_ROUNDS = 5


def parse_args(argv: list[str] | None = None) -> Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per round")
    parser.add_argument("--database-url", default=chat_bench.DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=chat_bench.DEFAULT_REDIS_URL)
    parser.add_argument("--output", help="JSON results file")
    return parser.parse_args(argv)


def setup(args: Namespace) -> list[tuple[object, object]]:
    """Production settings on the benchmark database; clinicians with a session each."""
    env = chat_bench.app_env(Namespace(database_url=args.database_url,
                                       redis_url=args.redis_url, sessions=_CLINICIANS),
                             "http://127.0.0.1:9", ROOT / "var")
    env["DATABASE_CONN_MAX_AGE"] = "600"  # one kept connection, as on the pool threads
    os.environ.update(env)
    chat_bench.prepare_database(args.database_url, env)
    chat_bench.flush_redis(args.redis_url)
    import django

    django.setup()
    from chat.models import ChatSession

    seats = chat_bench.create_population(_CLINICIANS, tag=uuid.uuid4().hex[:8])
    sessions = ChatSession.objects.select_related("user").filter(
        id__in=[seat.session_id for seat in seats])
    return [(session.user, session.id) for session in sessions]


def one_message(clinician: object, session_id: object) -> None:
    from django.utils import timezone

    from chat.pipeline import accept, answer
    from chat.providers.base import AttemptRecord, DoneEvent

    accepted = accept._accept_user_message(user=clinician, session_id=session_id,
                                           content=QUESTION, client_id=uuid.uuid4(),
                                           screened=None)
    attempt = AttemptRecord(
        provider="openai", model="gpt-4o-mini", outcome="success", error_code=None,
        latency_ms=900, first_token_ms=5, input_tokens=120, output_tokens=74,
        tokens_estimated=False, cost_usd=Decimal("0.000062"), started_at=timezone.now())
    done = DoneEvent(provider="openai", model="gpt-4o-mini", input_tokens=120,
                     output_tokens=74, tokens_estimated=False, first_token_ms=5,
                     latency_ms=900)
    answer._finish_answer(accepted=accepted, display_text=ANSWER, provider_text=ANSWER,
                          status="complete", attempts=[attempt], done=done,
                          first_token_ms=5, latency_ms=900)


def measure(seats: list[tuple[object, object]], messages: int) -> dict[str, float]:
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for index in range(messages):
        one_message(*seats[index % len(seats)])
    return {"cpu_ms": (time.process_time() - cpu_started) / messages * 1000,
            "wall_ms": (time.perf_counter() - wall_started) / messages * 1000}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seats = setup(args)
    measure(seats, 50)  # warm-up: connection, caches, first decryptions
    rounds = [measure(seats, args.messages) for _ in range(_ROUNDS)]
    result = {
        "benchmark": "db_steps", "code_version": chat_bench.code_version(),
        "messages_per_round": args.messages, "rounds": rounds,
        "cpu_ms_per_message_median": statistics.median(r["cpu_ms"] for r in rounds),
        "wall_ms_per_message_median": statistics.median(r["wall_ms"] for r in rounds),
    }
    print(f"database steps per message ({_ROUNDS} rounds of {args.messages}): "
          f"CPU {result['cpu_ms_per_message_median']:.2f} ms, "
          f"wall {result['wall_ms_per_message_median']:.2f} ms (medians)")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
