#!/usr/bin/env bash
# Install Debian's Chromium for tests/test_html_report.py (headless rendering of the HTML report). Idempotent:
# does nothing when chromium is already on PATH. Needs root (apt-get), as in CI.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
chromium --version
