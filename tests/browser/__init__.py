"""End-to-end tests: the course's viewers in JupyterLab, driven in headless Chromium (Playwright)."""
