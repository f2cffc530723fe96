"""The policy simulator: replay weeks of production life and score PDM scheduling policies side by side.

It reuses the product's own policy (`include.policy`), gate (`include.gates`), decision (`include.decision`)
and classification code; see docs/evaluation.md. Entry point: `python -m include.simulation`.
"""
