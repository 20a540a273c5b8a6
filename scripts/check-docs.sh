#!/usr/bin/env bash
# Check docs/ against the code and configuration it describes (scripts/check-docs.py says what).
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 scripts/check-docs.py
