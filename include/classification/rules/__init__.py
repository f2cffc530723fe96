"""The classifier's rule families that a catalogue row cannot express (product.md §3), one module each.

A rule takes the reader and one call (node, method, receiver, its text, arguments, block, line), records
what the call does and walks what it runs, and returns True when it judged the call (dispatch stops there).
SPECIAL_RULES is their precedence, tried by dispatch.py after the catalogue's helpers and helper classes.
"""

from __future__ import annotations

from include.classification.rules.background_migrations import nested_model_scope, perform_inline, steal
from include.classification.rules.helper_blocks import helper_handle
from include.classification.rules.rails_cache import rails_cache
from include.classification.rules.redis import redis_handle, redis_with
from include.classification.rules.reversible import reversible_block, reversible_direction
from include.classification.rules.sidekiq import sidekiq_api, sidekiq_handle
from include.classification.rules.target_blocks import target_block

SPECIAL_RULES = (
    rails_cache,
    sidekiq_api,
    steal,
    perform_inline,
    nested_model_scope,
    target_block,
    redis_with,
    helper_handle,
    sidekiq_handle,
    redis_handle,
    reversible_block,
    reversible_direction,
)
