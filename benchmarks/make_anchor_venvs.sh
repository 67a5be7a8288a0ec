#!/usr/bin/env bash
# Build the anchor venvs that benchmarks/bench_overhead.py expects, from PyPI, with uv.
#
#   bash benchmarks/make_anchor_venvs.sh            # all of them
#   bash benchmarks/make_anchor_venvs.sh google-genai genai-anthropic   # only these
#
# Every venv gets the same pinned base (OpenTelemetry, the three SDKs, httpx2, pydantic,
# wrapt) and this project installed non-editable (a wheel built from the working tree; the
# benchmark puts its own frozen copy of the package first on PYTHONPATH anyway), plus one
# anchor. Pins can be overridden from the environment (PYTHON, OTEL_API, OTEL_CONTRIB,
# OPENAI, ANTHROPIC, GOOGLE_GENAI, HTTPX2, PYDANTIC, WRAPT, OPENLLMETRY, OTEL_GENAI):
# match them to the venv that runs none/floor/cmdrdata, so every mode calls the same SDK.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-3.11}"
OTEL_API="${OTEL_API:-1.45.2}"
OTEL_CONTRIB="${OTEL_CONTRIB:-0.66b2}"
OPENAI="${OPENAI:-3.63.0}"
ANTHROPIC="${ANTHROPIC:-2.17.0}"
GOOGLE_GENAI="${GOOGLE_GENAI:-3.6.1}"
HTTPX2="${HTTPX2:-2.17.0}"
PYDANTIC="${PYDANTIC:-2.14.4}"
WRAPT="${WRAPT:-2.5.2}"
OPENLLMETRY="${OPENLLMETRY:-0.62.4}"
OTEL_GENAI="${OTEL_GENAI:-1.3b0}"

BASE=(
    "opentelemetry-api==$OTEL_API" "opentelemetry-sdk==$OTEL_API"
    "opentelemetry-instrumentation==$OTEL_CONTRIB"
    "openai==$OPENAI" "anthropic==$ANTHROPIC" "google-genai==$GOOGLE_GENAI"
    "httpx2==$HTTPX2" "pydantic==$PYDANTIC" "wrapt==$WRAPT"
)

# name -> "venv directory|anchor requirements (space separated)"
declare -A ANCHORS=(
    # OpenLLMetry: its OpenAI, Anthropic and Google GenAI (google-genai SDK) instrumentors
    # side by side, as an OpenLLMetry user has them.
    [openllmetry]="/tmp/venv-anchors|opentelemetry-instrumentation-openai==$OPENLLMETRY opentelemetry-instrumentation-anthropic==$OPENLLMETRY opentelemetry-instrumentation-google-generativeai==$OPENLLMETRY"
    # openai-v2 2.4b0 imports opentelemetry.util.genai.instruments, gone since util-genai
    # 1.2b0, and declares no upper bound: pin the last release that has it.
    [openai-v2]="/tmp/venv-openai-v2|opentelemetry-instrumentation-openai-v2==2.4b0 opentelemetry-util-genai==1.1b0"
    [genai-openai]="/tmp/venv-genai-openai|opentelemetry-instrumentation-genai-openai==$OTEL_GENAI"
    [genai-anthropic]="/tmp/venv-genai-anthropic|opentelemetry-instrumentation-genai-anthropic==$OTEL_GENAI"
    [google-genai]="/tmp/venv-google-genai|opentelemetry-instrumentation-google-genai==$OTEL_GENAI"
)
ORDER=(openllmetry openai-v2 genai-openai genai-anthropic google-genai)

if [ "$#" -gt 0 ]; then
    ORDER=("$@")
fi

# One wheel of this project for all venvs (non-editable: no path back into the work tree).
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
uv build --wheel --quiet --out-dir "$WHEELS" "$ROOT"
WHEEL="$(ls "$WHEELS"/*.whl)"

for name in "${ORDER[@]}"; do
    spec="${ANCHORS[$name]:-}"
    if [ -z "$spec" ]; then
        echo "unknown anchor: $name (known: ${!ANCHORS[*]})" >&2
        exit 2
    fi
    venv="${spec%%|*}"
    read -r -a reqs <<<"${spec#*|}"
    echo "== $name -> $venv: ${reqs[*]}"
    rm -rf "$venv"
    uv venv --quiet --python "$PYTHON" "$venv"
    VIRTUAL_ENV="$venv" uv pip install --quiet "$WHEEL" "${BASE[@]}" "${reqs[@]}"
    VIRTUAL_ENV="$venv" uv pip list 2>/dev/null \
        | grep -iE '^(openai|anthropic|google-genai|httpx2?|opentelemetry-(instrumentation|util|semantic)[-a-z0-9]*) ' \
        | sed 's/^/    /'
done
