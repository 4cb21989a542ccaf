"""Real-browser end-to-end tests (Debian's Chromium driven by Playwright), loopback only."""
