"""Local stand-ins for every service the examples talk to, so they run with no key or network.

Starts, on 127.0.0.1 and free ports: a server that speaks OpenAI's API, one that speaks
Anthropic's, one that speaks Gemini's, one that speaks cmdrdata's events API, and an OTLP/HTTP
receiver (a stand-in for your collector). It prints the variables to export, then prints each
usage event and each span as it arrives, until Ctrl-C::

    python examples/local_servers.py            # shell 1
    eval "$(...the export lines it printed...)"  # shell 2, then run any example, e.g.
    python examples/manual_setup.py

The stand-ins live in ``tests/`` (they are what the test suite uses), so run this from a
checkout of the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the local fake servers live in tests/

from tests.collector.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.servers.anthropic_server import AnthropicFakeServer  # noqa: E402
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer  # noqa: E402
from tests.servers.gemini_server import GeminiFakeServer  # noqa: E402
from tests.servers.openai_server import OpenAIFakeServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print the exports only")
    args = parser.parse_args()

    with (
        OpenAIFakeServer() as openai_fake,
        AnthropicFakeServer() as anthropic_fake,
        GeminiFakeServer() as gemini_fake,
        CmdrDataServer() as cmdrdata,
        OtlpReceiver() as collector,
    ):
        exports = {
            "OPENAI_BASE_URL": openai_fake.url + "/v1",
            "OPENAI_API_KEY": "sk-local",
            "ANTHROPIC_BASE_URL": anthropic_fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-local",
            "GOOGLE_GEMINI_BASE_URL": gemini_fake.url,
            "GOOGLE_API_KEY": "local",
            "CMDRDATA_ENDPOINT": cmdrdata.url,
            "CMDRDATA_API_KEY": TEST_API_KEY,
            "CMDRDATA_SPOOL_DIR": tempfile.mkdtemp(prefix="cmdrdata-local-"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
        for name, value in exports.items():
            print(f"export {name}={value}")
        print("# serving; Ctrl-C to stop", flush=True)

        seen_events = seen_spans = 0
        try:
            while True:
                time.sleep(0.2)
                if args.quiet:
                    continue
                for event in cmdrdata.events[seen_events:]:
                    print("cmdrdata event:", json.dumps(event, ensure_ascii=False), flush=True)
                    seen_events += 1
                for span in collector.spans[seen_spans:]:
                    print(f"collector span: {span.name!r} scope={span.scope}", flush=True)
                    seen_spans += 1
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
