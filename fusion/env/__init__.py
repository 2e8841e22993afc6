"""Gymnasium environments of the simulator; importing this registers ``fusion/EONRouting-v0``.

>>> import gymnasium
>>> import fusion.env
>>> env = gymnasium.make("fusion/EONRouting-v0", overrides={"general_settings": {"num_requests": 50}})
>>> obs, info = env.reset(seed=1)
>>> info["action_mask"].tolist()  # K = 4 paths and block
[True, True, True, False, False]
>>> obs.shape == (len(env.unwrapped.observation_names),)  # 5 + 4 x the extended set's features
True
"""

from __future__ import annotations

from fusion.optional import require

require("gymnasium", "rl", "fusion.env")

import gymnasium  # noqa: E402

from fusion.env.routing_env import ENV_ID, EONRoutingEnv, config_of  # noqa: E402

__all__ = ["ENV_ID", "EONRoutingEnv", "config_of"]

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="fusion.env.routing_env:EONRoutingEnv")
